"""napari reader: complex fields, measurements and phase maps as real image layers.

napari cannot display complex data, so a field becomes two layers: ``"<stem> amplitude"`` (gray)
and ``"<stem> phase"`` (angle in (−π, π], cyclic ``twilight`` colormap, contrast −π..π). A
measurement is one gray layer, a phase map one ``viridis`` layer with contrast 0..2π (widened if the
data go beyond). Every layer has ``scale = (pixel_size_um, pixel_size_um)``, µm units and
``metadata["napari_dmicro"]`` with ``kind`` (the kind of the *source*, e.g. ``"field"``),
``component`` (what this layer shows), ``pixel_size_um``, ``wavelength_um``, ``source`` and
``attrs`` (provenance).

Large images are returned as lazy multiscale layers: the OME-Zarr display pyramid of our stores,
otherwise strided views ``data[::2**k, ::2**k]`` of the lazy array; contrast limits are always
given explicitly (from the coarsest level) so napari never scans the full-resolution data.

This module imports neither Qt nor napari.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from .io.fields import ATTRS_KEY, PYRAMID_MIN_SIZE, ImageData, detect_format, display_levels, read_image

LayerData = tuple[Any, dict, str]

#: Images with at most this many pixels are handed to napari as one numpy array.
EAGER_DISPLAY_PIXELS = 4096 * 4096
PHASE_COLORMAP = "twilight"
PHASE_MAP_COLORMAP = "viridis"


def napari_get_reader(path) -> Callable | None:
    """Return :func:`read_layers` if ``path`` (or every path of a list) is something we read."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths:
        return None
    for p in paths:
        if detect_format(_clean(p)) is None:
            return None
    return read_layers


def _clean(path) -> Path:
    return Path(os.fspath(path).rstrip("/\\"))


def read_layers(path) -> list[LayerData]:
    """Read one path or a list of paths into napari layer data."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    layers: list[LayerData] = []
    for p in paths:
        p = _clean(p)
        img = read_image(p)
        pyramid = display_levels(p)
        name = p.name[: -len(p.suffix)] if p.suffix else p.name
        layers.extend(image_layers(img, name=name, source=str(p), pyramid=pyramid))
    return layers


def _levels(base, n_min: int = PYRAMID_MIN_SIZE) -> list:
    """``base`` and its strided views ``[..., ::2**k, ::2**k]`` (a stack keeps every plane)."""
    levels = [base]
    k = 1
    while max(levels[-1].shape[-2:]) > n_min and min(levels[-1].shape[-2:]) >= 2:
        levels.append(base[..., :: 2**k, :: 2**k])
        k += 1
    return levels


def _range(array) -> tuple[float, float]:
    """Display range from the 0.1 and 99.9 percentiles (robust to a few hot or dead pixels)."""
    a = np.asarray(array)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [0.1, 99.9]))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _display(levels: list) -> tuple[Any, bool]:
    """A numpy array for small images, else the (lazy) multiscale list."""
    base = levels[0]
    if base.shape[-2] * base.shape[-1] <= EAGER_DISPLAY_PIXELS:
        return np.asarray(base), False
    if len(levels) == 1:
        return base, False
    return levels, True


def image_layers(
    img: ImageData, *, name: str, source: str | None = None, pyramid: list | None = None
) -> list[LayerData]:
    """napari layer data for an :class:`ImageData` (two layers for a field, one otherwise).

    ``pyramid``: optional lazy display levels ``(c, y, x)`` of the same image (from
    :func:`~napari_dmicro.io.fields.display_levels`); without it, levels are strided views of
    ``img.data``. A stack ``(t|p, y, x)`` (``attrs["stack_axis"]``) gives 3-D layers whose first axis is
    the plane index (a napari slider), shown from strided views of its planes.
    """
    ps = float(img.pixel_size_um)
    stacked = len(img.shape) == 3
    lead = (str(img.attrs.get("stack_axis") or "t"),) if stacked else ()
    common = {
        "scale": (1.0,) * len(lead) + (ps, ps),
        "units": ("pixel",) * len(lead) + ("micrometer", "micrometer"),
        "axis_labels": (*lead, "y", "x"),
    }

    def meta(component: str) -> dict:
        return {
            ATTRS_KEY: {
                "kind": img.kind,
                "component": component,
                "pixel_size_um": ps,
                "wavelength_um": float(img.wavelength_um),
                "source": source,
                "attrs": dict(img.attrs),
            }
        }

    def channel_levels(i: int, fn) -> list:
        if pyramid is not None and pyramid[0].shape[1:] == tuple(img.shape):  # (c, y, x) levels of a 2-D store
            return [lv[i] for lv in pyramid]
        data = img.data
        if isinstance(data, np.ndarray) and data.size <= EAGER_DISPLAY_PIXELS:
            return [fn(data)]
        if not isinstance(data, da.Array):
            data = da.from_array(data, chunks=1024)
        return [fn(lv) for lv in _levels(data)]

    if img.kind == "field":
        amp = channel_levels(0, lambda a: np.abs(a).astype(np.float32))
        phase = channel_levels(1, lambda a: np.angle(a).astype(np.float32))
        lo, hi = _range(amp[-1])
        amp_data, amp_ms = _display(amp)
        ph_data, ph_ms = _display(phase)
        return [
            (amp_data, {**common, "name": f"{name} amplitude", "colormap": "gray",
                        "contrast_limits": (lo, hi), "multiscale": amp_ms,
                        "metadata": meta("amplitude")}, "image"),
            (ph_data, {**common, "name": f"{name} phase", "colormap": PHASE_COLORMAP,
                       "contrast_limits": (-math.pi, math.pi), "multiscale": ph_ms,
                       "metadata": meta("phase")}, "image"),
        ]
    levels = channel_levels(0, lambda a: a.astype(np.float32, copy=False))
    lo, hi = _range(levels[-1])
    data, ms = _display(levels)
    if img.kind == "phase":
        kwargs = {"colormap": PHASE_MAP_COLORMAP, "contrast_limits": (min(0.0, lo), max(2 * math.pi, hi))}
    else:
        kwargs = {"colormap": "gray", "contrast_limits": (lo, hi)}
    layer_name = name if name.lower().endswith(img.kind) else f"{name} {img.kind}"
    return [(data, {**common, **kwargs, "name": layer_name, "multiscale": ms,
                    "metadata": meta(img.kind)}, "image")]
