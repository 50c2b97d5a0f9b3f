"""napari writers: image layers to napari-dmicro zarr stores (see :mod:`napari_dmicro.io.store`).

* :func:`write_single_image` — one image layer → a ``phase``, ``measurement`` or ``amplitude``
  store. The kind comes from ``metadata["napari_dmicro"]`` (for a layer of a field: its
  ``component``); without it a floating-point layer is a phase map (radians) and an integer layer a
  measurement.
* :func:`write_field_layers` — an amplitude and a phase layer of the same shape → a complex field
  store. The roles come from ``metadata["napari_dmicro"]["component"]`` or from layer names ending
  in "amplitude" / "phase".

Pixel size: the layer's y/x ``scale`` (µm; anisotropic scales are refused). A scale of exactly 1
is napari's "uncalibrated" default: the metadata's ``pixel_size_um`` is used then, or
:data:`~napari_dmicro.config.DEFAULT_PIXEL_SIZE_UM` (recorded in ``defaults_used``). Wavelength:
metadata ``wavelength_um`` or the default (also recorded). Multiscale layers are written from
their full-resolution level, blockwise when it is a dask array.

napari confirms overwriting in its save dialog, so these writers replace an existing napari-dmicro
store at the target (atomically, see :mod:`napari_dmicro.io.atomic`); a foreign zarr store, a regular
file or a directory that is not a zarr store is never replaced (a clear error says so).
"""

from __future__ import annotations

import math
from typing import Any

import dask.array as da
import numpy as np

from .config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from .io.errors import FieldFormatError
from .io.fields import ATTRS_KEY, write_field, write_image

_DROP = ("units", "software", "software_version", "format_version")


def _dmicro_meta(meta: dict) -> dict:
    md = (meta.get("metadata") or {}).get(ATTRS_KEY) or {}
    return md if isinstance(md, dict) else {}


def _base(data, meta: dict, name: str):
    if isinstance(data, (list, tuple)):
        if not data:
            raise FieldFormatError(f"layer {name!r} has no data")
        data = data[0]  # multiscale: full resolution
    if meta.get("rgb"):
        raise FieldFormatError(f"layer {name!r} is RGB; only single-channel 2-D images can be written")
    return data


def _sampling(meta: dict, name: str, defaults: list[str]) -> tuple[float, float]:
    md = _dmicro_meta(meta)
    scale = meta.get("scale")
    ps = None
    if scale is not None and len(scale) >= 2:
        sy, sx = float(scale[-2]), float(scale[-1])
        if not math.isclose(sy, sx, rel_tol=1e-6):
            raise FieldFormatError(
                f"layer {name!r} has anisotropic pixels (scale y={sy:g}, x={sx:g} µm); napari-dmicro "
                "stores square pixels only"
            )
        if not (sy == 1.0 and sx == 1.0):
            ps = sy
    if ps is None:
        ps = md.get("pixel_size_um")
    if ps is None:
        ps = DEFAULT_PIXEL_SIZE_UM
        defaults.append("pixel_size_um")
    wl = md.get("wavelength_um")
    if wl is None:
        wl = DEFAULT_WAVELENGTH_UM
        defaults.append("wavelength_um")
    return float(ps), float(wl)


def _provenance(meta: dict, defaults: list[str]) -> dict:
    md = _dmicro_meta(meta)
    attrs = {k: v for k, v in (md.get("attrs") or {}).items() if k not in _DROP}
    if md.get("source"):
        attrs.setdefault("source", md["source"])
    if meta.get("name"):
        attrs["napari_layer"] = meta["name"]
    if defaults:
        attrs["defaults_used"] = sorted(set(attrs.get("defaults_used", [])) | set(defaults))
    return attrs


def _single_kind(data, meta: dict) -> str:
    md = _dmicro_meta(meta)
    kind = md.get("kind")
    if kind == "field":
        component = md.get("component")
        if component in ("amplitude", "phase"):
            return component
    elif kind in ("measurement", "phase", "amplitude"):
        return kind
    return "measurement" if np.dtype(data.dtype).kind in "iu" else "phase"


def write_single_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write one image layer as a napari-dmicro store; returns the written path."""
    name = meta.get("name", "layer")
    data = _base(data, meta, name)
    defaults: list[str] = []
    ps, wl = _sampling(meta, name, defaults)
    kind = _single_kind(data, meta)
    out = write_image(
        path, data, kind=kind, pixel_size_um=ps, wavelength_um=wl,
        attrs=_provenance(meta, defaults), overwrite=True,
    )
    return [str(out)]


def _role(meta: dict) -> str | None:
    component = _dmicro_meta(meta).get("component")
    if component in ("amplitude", "phase"):
        return component
    name = str(meta.get("name", "")).strip().lower()
    for role in ("amplitude", "phase"):
        if name.endswith(role):
            return role
    return None


def write_field_layers(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write an amplitude layer and a phase layer (radians) as one complex field store."""
    if len(layer_data) != 2:
        raise FieldFormatError(
            f"a field needs exactly two layers (amplitude and phase), got {len(layer_data)}"
        )
    roles = {}
    for data, meta, ltype in layer_data:
        if ltype != "image":
            raise FieldFormatError(
                f"layer {meta.get('name')!r} is a {ltype} layer; amplitude and phase must be image layers"
            )
        role = _role(meta)
        if role is None or role in roles:
            names = [m.get("name") for _, m, _ in layer_data]
            raise FieldFormatError(
                f"cannot tell which of the layers {names} is the amplitude and which the phase; name them "
                "'<name> amplitude' and '<name> phase' (or open the field with napari-dmicro)"
            )
        roles[role] = (data, meta)
    (amp, amp_meta), (phase, ph_meta) = roles["amplitude"], roles["phase"]
    amp = _base(amp, amp_meta, amp_meta.get("name"))
    phase = _base(phase, ph_meta, ph_meta.get("name"))
    if tuple(amp.shape) != tuple(phase.shape):
        raise FieldFormatError(
            f"amplitude layer has shape {tuple(amp.shape)} but phase layer has shape "
            f"{tuple(phase.shape)}; they must match"
        )
    for arr, m in ((amp, amp_meta), (phase, ph_meta)):
        if np.dtype(arr.dtype).kind not in "iuf":
            raise FieldFormatError(f"layer {m.get('name')!r} must be real-valued, got dtype {arr.dtype}")
    defaults: list[str] = []
    ps, wl = _sampling(amp_meta, amp_meta.get("name"), defaults)
    ps2, wl2 = _sampling(ph_meta, ph_meta.get("name"), [])
    if not math.isclose(ps, ps2, rel_tol=1e-6):
        raise FieldFormatError(
            f"amplitude and phase layers have different pixel sizes ({ps:g} vs {ps2:g} µm)"
        )
    if not math.isclose(wl, wl2, rel_tol=1e-6):
        raise FieldFormatError(
            f"amplitude and phase layers have different wavelengths ({wl:g} vs {wl2:g} µm)"
        )
    # the reader shows phase relative to the field's background: add it back (the field is written as read)
    phase = phase + float(_dmicro_meta(ph_meta).get("phase_background_rad") or 0.0)
    if isinstance(amp, da.Array) or isinstance(phase, da.Array):
        amp, phase = da.asarray(amp), da.asarray(phase)
        field = amp.astype(np.complex64) * da.exp(1j * phase.astype(np.complex64))
    else:
        field = np.asarray(amp, np.float32) * np.exp(1j * np.asarray(phase, np.float32)).astype(np.complex64)
    attrs = _provenance(amp_meta, defaults)
    attrs["napari_layer"] = [amp_meta.get("name"), ph_meta.get("name")]
    out = write_field(path, field, pixel_size_um=ps, wavelength_um=wl, attrs=attrs, overwrite=True)
    return [str(out)]
