"""OME-Zarr 0.5 metadata of our stores, built and validated with ``ome-zarr-models``.

The display pyramid ``0, 1, …`` has axes ``c, y, x`` (y/x in micrometres); level *k* has the scale
``pixel_size_um × 2**k`` and the translation of the centre of its 2^k × 2^k block of level-0 pixels.
The ``omero`` block gives each channel a label, a colour and a display window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from ome_zarr_models.common.omero import Channel, Omero, Window
from ome_zarr_models.v05.axes import Axis
from ome_zarr_models.v05.image import Image, ImageAttrs
from ome_zarr_models.v05.multiscales import Dataset, Multiscale
from pydantic import ValidationError

from .errors import FieldFormatError, UnitError
from .images import ATTRS_KEY, CHANNELS, STACK_AXES

_COLORS = {"amplitude": "FFFFFF", "phase": "00FFFF", "intensity": "FFFFFF"}


def _window(values: np.ndarray, label: str, kind: str) -> Window:
    if kind == "field" and label == "phase":
        lo, hi = -math.pi, math.pi
    else:
        lo, hi = float(values.min()), float(values.max())
        if label == "amplitude":
            lo = min(lo, 0.0)
        if hi <= lo:
            hi = lo + 1.0
    return Window(min=lo, max=hi, start=lo, end=hi)



def ome_metadata(name: str, kind: str, pixel_size_um: float, n_levels: int, coarsest: np.ndarray,
                 stack_axis: str | None = None) -> dict:
    """The ``ome`` attribute (a JSON dict) of a store with ``n_levels`` display levels (axes ``c, y, x``, or
    ``t|p, c, y, x`` for a stack; ``coarsest`` is the coarsest level, channels first after the stack axis)."""
    lead = [] if stack_axis is None else [Axis(name=stack_axis, type=STACK_AXES[stack_axis])]
    one = [1.0] * len(lead)
    datasets = []
    for k in range(n_levels):
        s = pixel_size_um * 2**k
        t = (2**k - 1) / 2 * pixel_size_um  # centre of the 2^k × 2^k block of level-0 pixels
        datasets.append(Dataset.build(path=str(k), scale=[*one, 1.0, s, s],
                                      translation=[*[0.0] * len(lead), 0.0, t, t] if k else None))
    if stack_axis is not None:
        coarsest = np.moveaxis(coarsest, 1, 0)  # channels first: each channel's window over all planes
    multiscale = Multiscale(
        name=name,
        axes=[*lead, Axis(name="c", type="channel"), Axis(name="y", type="space", unit="micrometer"),
              Axis(name="x", type="space", unit="micrometer")],
        datasets=tuple(datasets),
        type="mean (2x2; circular mean for field phase)",
        metadata={"description": f"napari-dmicro {kind}: real display channels {list(CHANNELS[kind])}; "
                                 f"exact data in the '{kind}' array"
                                 + (f"; a stack along '{stack_axis}' ({STACK_AXES[stack_axis]})"
                                    if stack_axis else "")},
    )
    channels = [
        Channel(label=label, color=_COLORS.get(label, "FFFFFF"), active=True, coefficient=1, family="linear",
                inverted=False, window=_window(coarsest[i], label, kind))
        for i, label in enumerate(CHANNELS[kind])
    ]
    omero = Omero(name=name, channels=channels,
                  rdefs={"model": "greyscale" if len(channels) == 1 else "color", "defaultZ": 0, "defaultT": 0})
    attrs = ImageAttrs(version="0.5", multiscales=[multiscale], omero=omero.model_dump(mode="json"))
    return attrs.model_dump(mode="json", exclude_none=True)


def validate_ome(group, where: str) -> None:
    """Raise :class:`FieldFormatError` unless ``group`` is a valid OME-Zarr 0.5 image (metadata and arrays)."""
    try:
        Image.from_zarr(group)
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        raise FieldFormatError(f"{where}: the OME-Zarr 0.5 metadata is invalid: {exc}") from exc


def check_ome_consistency(group, pixel_size_um: float, where: str) -> None:
    """The OME scale and axis units of our store must agree with ``napari_dmicro.pixel_size_um``."""
    ome = group.attrs.get("ome")
    if not isinstance(ome, Mapping):
        return
    try:
        ms = ome["multiscales"][0]
        axes = ms["axes"]
        transforms = ms["datasets"][0]["coordinateTransformations"]
        scale = next(t["scale"] for t in transforms if t["type"] == "scale")
    except (KeyError, IndexError, TypeError, StopIteration) as exc:
        raise FieldFormatError(f"{where}: malformed OME-Zarr 'multiscales' metadata ({exc!r})") from exc
    for ax in axes[-2:]:
        unit = ax.get("unit")
        if unit is not None and unit != "micrometer":
            raise UnitError(
                f"{where}: OME axis {ax.get('name')!r} has unit {unit!r} but napari-dmicro stores are in "
                "'micrometer'; the metadata is inconsistent"
            )
    for s in scale[-2:]:
        if not math.isclose(float(s), pixel_size_um, rel_tol=1e-6):
            raise UnitError(
                f"{where}: inconsistent pixel size: {ATTRS_KEY}.pixel_size_um={pixel_size_um:g} but the "
                f"OME-Zarr scale is {scale[-2:]} µm"
            )


__all__ = ["check_ome_consistency", "ome_metadata", "validate_ome"]
