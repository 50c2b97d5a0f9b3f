"""napari reader: complex fields, measurements and phase maps as real image layers.

napari cannot display complex data, so a field becomes two layers: ``"<stem> amplitude"`` (gray)
and ``"<stem> phase"``. Phase is shown the same way everywhere (fields, phase maps, reconstructions):
background-referenced phase in radians (:mod:`napari_dmicro.phase_reference`: the empty medium is 0,
a 5 rad nucleus reads 5 rad, unwrapped for images held in memory, wrapped into [−0.5, 2π − 0.5) block
by block for lazy ones), colormap :data:`PHASE_COLORMAP`, contrast :func:`phase_contrast_limits`
(0..2π, widened to the data's 0.1/99.9 percentiles when they go beyond). ``exp(i·phase)`` of the layer
is the field up to a global phase, which no intensity measurement sees. A measurement is one gray
layer. A fluorescence store is a gray image layer plus a Labels layer (``"<stem> labels"``) when it holds instance
labels; a fluorescence measurement is a stack layer of its T camera frames (axis ``pattern``, the camera pixel as
scale). Every layer has ``scale = (pixel_size_um, pixel_size_um)``, µm units and
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
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from .io.fields import ATTRS_KEY, PYRAMID_MIN_SIZE, ImageData, detect_format, display_levels, read_image

LayerData = tuple[Any, dict, str]

#: Images with at most this many pixels are handed to napari as one numpy array.
EAGER_DISPLAY_PIXELS = 4096 * 4096
#: the one phase colormap of the plugin (fields, phase maps, reconstructions)
PHASE_COLORMAP = "viridis"


def napari_get_reader(path) -> Callable | None:
    """Return :func:`read_layers` if ``path`` (or every path of a list) is something we read.

    A single existing ``.zarr`` folder we cannot read gets a reader that raises the reason (napari is told
    to prefer napari-dmicro for ``*.zarr``, see :mod:`napari_dmicro._preferences`: it shows the message
    and offers its other readers); anything else we do not read gives None.
    """
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths:
        return None
    for p in paths:
        if detect_format(_clean(p)) is None:
            single = _clean(paths[0])
            if len(paths) == 1 and single.suffix.lower() == ".zarr" and single.is_dir():
                return _refusal(single)
            return None
    return read_layers


def _refusal(path: Path) -> Callable:
    """A reader that explains why napari-dmicro cannot open the zarr store ``path``."""
    try:
        read_image(path)
        reason = "it holds no complex field, measurement or phase map"
    except Exception as exc:  # noqa: BLE001 - the reason is the message
        reason = str(exc)

    def refuse(_path):
        raise ValueError(f"napari-dmicro cannot open {path.name}: {reason}. napari-dmicro opens its own stores, "
                         "zarr groups with a complex 'field' array or 'amplitude' + 'phase' arrays, and complex "
                         "zarr arrays; for a camera image or a hologram use the Load or Import widget, or choose "
                         "napari's builtin reader")

    return refuse


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
        unrecorded = [k.replace("_um", "").replace("_", " ") for k in img.attrs.get("defaults_used", ())]
        if unrecorded:
            warnings.warn(f"{p.name} records no {' or '.join(unrecorded)}: shown at the defaults, which are "
                          "probably wrong; open it with napari-dmicro's Load widget and enter them", stacklevel=2)
        layers.extend(image_layers(img, name=name, source=str(p), pyramid=pyramid))
        if img.kind == "fluorescence":
            layers.extend(label_layers(p, img, name=name))
    return layers


def label_layers(path: Path, img: ImageData, *, name: str) -> list[LayerData]:
    """The Labels layer of a fluorescence store's instance labels (none when it holds no labels)."""
    import zarr

    from .io.store import read_labels

    labels = read_labels(zarr.open_group(str(path), mode="r"), path, img.shape)
    if labels is None:
        return []
    ps = float(img.pixel_size_um)
    meta = {ATTRS_KEY: {"kind": img.kind, "component": "labels", "pixel_size_um": ps,
                        "wavelength_um": float(img.wavelength_um), "source": str(path), "attrs": dict(img.attrs)}}
    return [(labels, {"name": f"{name} labels", "scale": (ps, ps), "units": ("micrometer", "micrometer"),
                      "axis_labels": ("y", "x"), "metadata": meta}, "labels")]


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


def phase_contrast_limits(array) -> tuple[float, float]:
    """Display range (rad) of a background-referenced phase image: 0..2π, widened to the data's robust
    range (0.1/99.9 percentiles) when the phase goes below 0 or beyond 2π."""
    lo, hi = _range(array)
    return min(0.0, lo), max(2 * math.pi, hi)


def _referenced_phase_levels(levels: list) -> tuple[list, float]:
    """(background-referenced phase of phase levels (rad), the background phase removed (rad)): unwrapped when
    held in memory, else wrapped block by block; one background for the whole image (estimated on the
    coarsest level, all planes of a stack)."""
    from .phase_reference import background_phase_rad, referenced_phase_rad, wrap_referenced_rad

    coarse = np.asarray(levels[-1])
    bg = background_phase_rad(coarse.reshape(-1, coarse.shape[-1]))
    base = levels[0]
    if isinstance(base, np.ndarray) or base.shape[-2] * base.shape[-1] <= EAGER_DISPLAY_PIXELS:
        base = np.asarray(base, dtype=np.float32)  # small enough to hold: unwrapped, one level
        planes = base if base.ndim == 3 else base[None]
        out = np.stack([referenced_phase_rad(plane, background_rad=bg) for plane in planes])
        return [out if base.ndim == 3 else out[0]], bg
    out = []
    for lv in levels:
        lv = lv if isinstance(lv, da.Array) else da.from_array(lv, chunks=1024)
        out.append(lv.map_blocks(wrap_referenced_rad, bg, dtype=np.float32))
    return out, bg


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

    background_rad = 0.0  # the field's background phase, removed from its phase layer (see below)

    def meta(component: str) -> dict:
        return {
            ATTRS_KEY: {
                "kind": img.kind,
                "component": component,
                **({"phase_referenced": True, "phase_background_rad": background_rad}
                   if img.kind == "field" and component == "phase" else {}),
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
        phase, background_rad = _referenced_phase_levels(channel_levels(1, lambda a: np.angle(a).astype(np.float32)))
        lo, hi = _range(amp[-1])
        amp_data, amp_ms = _display(amp)
        ph_data, ph_ms = _display(phase)
        return [
            (amp_data, {**common, "name": f"{name} amplitude", "colormap": "gray",
                        "contrast_limits": (lo, hi), "multiscale": amp_ms,
                        "metadata": meta("amplitude")}, "image"),
            (ph_data, {**common, "name": f"{name} phase", "colormap": PHASE_COLORMAP,
                       "contrast_limits": phase_contrast_limits(phase[-1]), "multiscale": ph_ms,
                       "metadata": meta("phase")}, "image"),
        ]
    levels = channel_levels(0, lambda a: a.astype(np.float32, copy=False))
    lo, hi = _range(levels[-1])
    data, ms = _display(levels)
    if img.kind == "phase":
        kwargs = {"colormap": PHASE_COLORMAP, "contrast_limits": phase_contrast_limits(levels[-1])}
    else:
        kwargs = {"colormap": "gray", "contrast_limits": (lo, hi)}
    layer_name = name if name.lower().endswith(img.kind) else f"{name} {img.kind}"
    return [(data, {**common, **kwargs, "name": layer_name, "multiscale": ms,
                    "metadata": meta(img.kind)}, "image")]
