"""Window placement and blending weights for stitching overlapping decoder windows.

A large camera image is decoded in windows of the decoder's nominal size that overlap by ``overlap``
camera pixels. Along each axis the windows start every ``stride = window - overlap`` pixels and the last
one is aligned to the end of the image (it may overlap its neighbour by more; nothing is padded beyond
the measurement). Each window's output is weighted by a separable weight ``w_y(y)·w_x(x)`` that is 1
in the window's centre and rises smoothly over its overlap with the neighbouring window (a raised
cosine); a side that lies on the image border is not down-weighted. The stitched image is
``Σ w_k·out_k / Σ w_k``, so the normalised weights form a partition of unity everywhere. With windows
exactly ``stride`` apart the two ramps of an overlap are complementary (they add up to 1 without the
normalisation).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["window_starts", "blend_weights", "axis_weight_sum"]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of side ``window`` that cover ``0 … length-1``.

    Starts are ``0, stride, 2·stride, …`` and the last window ends exactly at ``length`` (so the gap
    between the last two starts may be smaller than ``stride``). A single window at 0 if
    ``length <= window`` (the caller then uses a window of side ``length``).
    """
    length, window, stride = int(length), int(window), int(stride)
    if length < 1:
        raise ValueError(f"length={length} must be >= 1")
    if window < 1:
        raise ValueError(f"window={window} must be >= 1")
    if not 1 <= stride <= window:
        raise ValueError(f"stride={stride} must be in 1..window ({window}); overlap = window - stride")
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    starts.append(length - window)
    return starts


def _rising_ramp(ramp_px: int) -> np.ndarray:
    """Raised cosine sampled at pixel centres: strictly in (0, 1), and r[i] + r[ramp-1-i] = 1."""
    i = np.arange(ramp_px, dtype=np.float64) + 0.5
    return 0.5 - 0.5 * np.cos(math.pi * i / ramp_px)


def blend_weights(window_px: int, ramp_px: int, *, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weight of one window along one axis (float64, length ``window_px``).

    Flat (1) in the centre; a raised-cosine ramp over ``ramp_px`` pixels at the start unless the window
    starts at the image border (``at_start``) and likewise at the end. Every weight is > 0, so pixels
    covered by a single window are never divided by ~0.
    """
    window_px, ramp_px = int(window_px), int(ramp_px)
    if window_px < 1:
        raise ValueError(f"window_px={window_px} must be >= 1")
    if ramp_px < 0:
        raise ValueError(f"ramp_px={ramp_px} must be >= 0")
    w = np.ones(window_px, dtype=np.float64)
    ramp = min(ramp_px, window_px)
    if ramp == 0:
        return w
    r = _rising_ramp(ramp)
    if not at_start:
        w[:ramp] *= r
    if not at_end:
        w[window_px - ramp:] *= r[::-1]
    return w


def axis_weight_sum(length: int, starts: list[int], window: int, ramp: int, scale: int = 1
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Summed weights along one axis and the per-window weights, on a grid ``scale``× finer.

    ``starts``/``window``/``ramp`` are in coarse (camera) pixels; the weights live on the fine grid
    (object pixels, ``scale`` = binning), so the ramps are smooth at the output resolution.
    """
    fine_len, fine_win = length * scale, window * scale
    total = np.zeros(fine_len, dtype=np.float64)
    weights = []
    for s in starts:
        w = blend_weights(fine_win, ramp * scale, at_start=s == 0, at_end=s + window == length)
        total[s * scale:s * scale + fine_win] += w
        weights.append(w)
    return total, weights
