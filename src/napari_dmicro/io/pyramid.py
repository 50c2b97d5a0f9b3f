"""Display pyramids: the 2×2-mean levels our writer stores, and lazy strided levels of any readable image.

Level *k+1* is the 2×2 mean of level *k* (odd trailing rows/columns dropped); the phase channel of a
field is the amplitude-weighted circular mean (angle of the mean phasor), other channels are averaged
linearly. Levels are added until the image is at most :data:`PYRAMID_MIN_SIZE` pixels on its longer
side (at most :data:`MAX_PYRAMID_LEVELS`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dask.array as da
import numpy as np
import zarr

from .errors import FieldFormatError
from .foreign import detect_format
from .images import ATTRS_KEY, CHUNK
from .targets import looks_like_zarr

#: Pyramid levels are added until the longer side is at most this.
PYRAMID_MIN_SIZE = 512
MAX_PYRAMID_LEVELS = 8
_LEVEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def level_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) + tuple(min(CHUNK, s) for s in shape[1:])


def downsample(level: da.Array, kind: str) -> da.Array:
    """The next coarser level of a ``(c, y, x)`` display level of an image of ``kind``."""
    axes = {1: 2, 2: 2}
    if kind == "field":
        amp, phase = level[0], level[1]
        amp2 = da.coarsen(np.mean, amp, {0: 2, 1: 2}, trim_excess=True)
        phasor = amp.astype(np.complex64) * da.exp(1j * phase.astype(np.complex64))
        phase2 = da.angle(da.coarsen(np.mean, phasor, {0: 2, 1: 2}, trim_excess=True))
        return da.stack([amp2, phase2]).astype(np.float32)
    return da.coarsen(np.mean, level, axes, trim_excess=True).astype(np.float32)



class _Strided:
    """Array-like view ``array[..., ::step, ::step]`` (leading singleton axes dropped) that reads
    only the selected elements, so a coarse level of a huge store never holds full-resolution
    chunks (napari turns dask task fusion off and caches task results)."""

    def __init__(self, array, step: int):
        self.array = array
        self.step = step
        self.lead = (0,) * (array.ndim - 2)
        rows, cols = array.shape[-2:]
        self.shape = (-(-rows // step), -(-cols // step))
        self.dtype = np.dtype(array.dtype)
        self.ndim = 2

    def __getitem__(self, selection):
        s = self.step
        sel = []
        for sl, n in zip(selection, self.shape, strict=False):
            start, stop, _ = sl.indices(n)
            sel.append(slice(start * s, stop * s, s))
        return np.asarray(self.array[self.lead + tuple(sel)])


def _strided_levels(array, min_size: int = PYRAMID_MIN_SIZE) -> list[da.Array]:
    levels = []
    step = 1
    while True:
        view = _Strided(array, step)
        chunks = (CHUNK // 2, CHUNK // 2) if step > 1 else (CHUNK, CHUNK)
        levels.append(da.from_array(view, chunks=chunks, asarray=False))
        if max(view.shape) <= min_size or min(view.shape) < 2 or len(levels) >= MAX_PYRAMID_LEVELS:
            return levels
        step *= 2


def display_levels(path) -> list[da.Array] | None:
    """Lazy float32 display levels ``(c, y, x)`` of an image store, finest first, or None.

    Channels are :data:`CHANNELS` of the kind (amplitude and phase for a field). Our stores give
    their OME-Zarr pyramid; foreign zarr stores and ``.npy`` files give strided views
    ``[::2**k, ::2**k]`` that read only the selected elements. ``.npz`` archives give None. Call
    :func:`read_image` first to validate the input; this function does not check it.
    """
    p = Path(os.fspath(path))
    fmt = detect_format(p)
    if fmt == "napari_dmicro":
        return open_pyramid(p)
    if fmt in ("zarr-array", "zarr-field"):
        node = zarr.open(str(p), mode="r")
        source = node if fmt == "zarr-array" else node["field"]
    elif fmt == "npy":
        source = np.load(p, mmap_mode="r", allow_pickle=False)
    elif fmt == "zarr-amplitude-phase":
        node = zarr.open(str(p), mode="r")
        amps = _strided_levels(node["amplitude"])
        phases = _strided_levels(node["phase"])
        return [da.stack([a, ph.rechunk(a.chunks)]).astype(np.float32) for a, ph in zip(amps, phases, strict=True)]
    else:
        return None
    levels = []
    for lv in _strided_levels(source):
        lv = lv.astype(np.complex64)
        levels.append(da.stack([da.absolute(lv), da.angle(lv)]).astype(np.float32))
    return levels


def open_pyramid(path) -> list[da.Array] | None:
    """The OME-Zarr display levels ``(c, y, x)`` of a napari-dmicro store, lazily, or None.

    Raises :class:`FieldFormatError` when the OME metadata names a level that is not a plain array
    name of the store (``../x``, ``/abs``, a missing array): a level never comes from outside the store.
    """
    p = Path(os.fspath(path))
    if not looks_like_zarr(p):
        return None
    node = zarr.open(str(p), mode="r")
    if isinstance(node, zarr.Array) or ATTRS_KEY not in node.attrs:
        return None
    try:
        datasets = node.attrs["ome"]["multiscales"][0]["datasets"]
        names = [d["path"] for d in datasets]
    except (KeyError, IndexError, TypeError):
        return None
    arrays = set(node.array_keys())
    for name in names:
        if not isinstance(name, str) or not _LEVEL_NAME.fullmatch(name) or name not in arrays:
            raise FieldFormatError(
                f"{p}: the OME-Zarr metadata names the display level {name!r}, which is not an array of "
                f"this store (arrays: {sorted(arrays)}); the store is damaged or was edited"
            )
    levels = [da.from_zarr(node[name]) for name in names]
    if not levels or any(lv.ndim != 3 for lv in levels):
        return None
    return levels


__all__ = ["MAX_PYRAMID_LEVELS", "PYRAMID_MIN_SIZE", "display_levels", "downsample", "level_chunks",
           "open_pyramid"]
