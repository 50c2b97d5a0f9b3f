"""Background-referenced phase: the one convention for targets, outputs and reference fields.

An intensity microscope cannot observe a global phase offset, so a phase map means something only
relative to the specimen's background (the empty medium around the cells). This module estimates the
background phase and expresses phase relative to it:

- :func:`background_phase_rad`: the mode of the phase histogram (the background is the most common,
  flattest phase level of a cell field), refined by the circular mean of the pixels within
  ``BACKGROUND_WINDOW_RAD`` of it. Computed block by block (numpy, zarr or dask inputs).
- :func:`referenced_phase_rad`: phase − background, unwrapped (``skimage.restoration.unwrap_phase``)
  and anchored so the background is 0: background noise below 0 stays slightly negative (never ~2π),
  a 5.5 rad nucleus stays 5.5 rad (in memory; the whole field is unwrapped at once).
- :func:`wrap_referenced_rad`: the same without unwrapping, for block-by-block use: phase − background
  wrapped into [−``WRAP_MARGIN_RAD``, 2π − ``WRAP_MARGIN_RAD``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["background_phase_rad", "referenced_phase_rad", "wrap_referenced_rad", "phase_of"]

#: histogram bins over one turn for the mode (6 mrad each)
HISTOGRAM_BINS = 1024
#: circular Gaussian smoothing of the histogram before the mode (rad)
HISTOGRAM_SMOOTH_RAD = 0.03
#: pixels within this of the mode enter the refined circular mean (rad)
BACKGROUND_WINDOW_RAD = 0.25
#: wrapped referenced phase lies in [−margin, 2π − margin): background noise below 0 stays negative
WRAP_MARGIN_RAD = 0.5
#: block side (px) of the block-by-block passes
BLOCK_PX = 2048


def phase_of(block) -> np.ndarray:
    """Phase (rad, float64) of a complex field block, or the block itself when it is a real phase map."""
    block = np.asarray(block)
    if np.iscomplexobj(block):
        return np.angle(block).astype(np.float64)
    return block.astype(np.float64)


def _blocks(array, block_px: int):
    rows, cols = int(array.shape[-2]), int(array.shape[-1])
    for r0 in range(0, rows, block_px):
        for c0 in range(0, cols, block_px):
            block = array[r0:min(r0 + block_px, rows), c0:min(c0 + block_px, cols)]
            if hasattr(block, "compute"):  # dask
                block = block.compute(scheduler="synchronous")
            block = np.asarray(block)
            phase = np.angle(block) if np.iscomplexobj(block) else block.astype(np.float32)
            finite = np.isfinite(phase)
            yield phase if finite.all() else phase[finite]  # NaN/inf carry no phase (callers refuse them)


def _circular_mode(hist: np.ndarray) -> float:
    width = 2 * math.pi / HISTOGRAM_BINS
    sigma_bins = HISTOGRAM_SMOOTH_RAD / width
    half = int(math.ceil(4 * sigma_bins))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_bins) ** 2)
    padded = np.concatenate([hist[-half:], hist, hist[:half]])
    smooth = np.convolve(padded, kernel, mode="valid")
    return -math.pi + (int(np.argmax(smooth)) + 0.5) * width


def _wrap(x):
    return np.mod(x + math.pi, 2 * math.pi) - math.pi


def background_phase_rad(field, *, block_px: int = BLOCK_PX, iterations: int = 3) -> float:
    """The background phase (rad, in (−π, π]) of a complex field or a phase map (rad).

    The mode of the phase histogram (bins of 2π/1024, smoothed over 0.03 rad), then ``iterations``
    circular means over the pixels within ±0.25 rad of the current estimate. Assumes the background is
    the most common phase level (true for cell fields, even dense ones whose cells vary in thickness).
    """
    if len(getattr(field, "shape", ())) != 2:
        raise ValueError(f"background_phase_rad needs a 2-D field or phase map; got shape "
                         f"{getattr(field, 'shape', None)}")
    hist = np.zeros(HISTOGRAM_BINS, np.float64)
    for phase in _blocks(field, block_px):  # float32, in place: memory of about one block
        phase = phase + np.float32(math.pi)
        np.mod(phase, np.float32(2 * math.pi), out=phase)
        phase *= np.float32(HISTOGRAM_BINS / (2 * math.pi))
        idx = np.minimum(phase.astype(np.intp), HISTOGRAM_BINS - 1)
        del phase
        hist += np.bincount(idx.ravel(), minlength=HISTOGRAM_BINS)
    if hist.sum() == 0:
        raise ValueError("the field is empty: no background phase to estimate")
    estimate = _circular_mode(hist)
    for _ in range(iterations):
        s = c = 0.0
        for phase in _blocks(field, block_px):
            d = phase - np.float32(estimate - math.pi)
            np.mod(d, np.float32(2 * math.pi), out=d)
            d -= np.float32(math.pi)
            d = d[np.abs(d) <= BACKGROUND_WINDOW_RAD].astype(np.float64)
            s += float(np.sin(d).sum())
            c += float(np.cos(d).sum())
        if c <= 0:
            break
        estimate = float(_wrap(estimate + math.atan2(s, c)))
    return estimate


def wrap_referenced_rad(phase, background_rad: float) -> np.ndarray:
    """``phase − background_rad`` wrapped into [−WRAP_MARGIN_RAD, 2π − WRAP_MARGIN_RAD) (float32), elementwise
    (so block by block is exact); ``phase`` is a complex block or a phase block (rad)."""
    rel = phase_of(phase) - background_rad
    return (np.mod(rel + WRAP_MARGIN_RAD, 2 * math.pi) - WRAP_MARGIN_RAD).astype(np.float32)


def referenced_phase_rad(field, background_rad: float | None = None) -> np.ndarray:
    """Background-referenced, unwrapped phase (rad, float32): background = 0, no wrap artefacts.

    The phase relative to the background (estimated with :func:`background_phase_rad` unless given) is
    unwrapped, then shifted by the whole number of turns that puts the background pixels' median at 0.
    The whole field is held in memory.
    """
    from skimage.restoration import unwrap_phase

    array = np.asarray(field)
    if array.ndim != 2:
        raise ValueError(f"referenced_phase_rad needs a 2-D field or phase map; got shape {array.shape}")
    bg = background_phase_rad(array) if background_rad is None else float(background_rad)
    wrapped = _wrap(phase_of(array) - bg)
    unwrapped = unwrap_phase(wrapped) if min(array.shape) > 1 else wrapped
    near = np.abs(wrapped) <= BACKGROUND_WINDOW_RAD
    anchor = float(np.median(unwrapped[near])) if near.any() else float(np.median(unwrapped))
    return (unwrapped - 2 * math.pi * round(anchor / (2 * math.pi))).astype(np.float32)
