"""Metrics on a region beside the full field: a sparse real field's full-field PSNR hides the cell.

A region is a boolean mask on the reference's grid: drawn (a napari Shapes or Labels layer) or the cell
mask :func:`cell_mask` (background-referenced phase above ``CELL_THRESHOLD_RAD``, in pieces of at least
``MIN_CELL_PX`` pixels). It is scored by
:func:`napari_dmicro.evaluate` on the mask's bounding box grown by ``margin_px`` (the SSIM window needs
neighbours; the box keeps the paper's convention of one score per image).
"""

from __future__ import annotations

import numpy as np

#: the cell mask: background-referenced phase above the background by this much (rad)
CELL_THRESHOLD_RAD = 0.3
#: pixels added around a region's bounding box before scoring
MARGIN_PX = 8


#: connected pieces of the cell mask smaller than this (px) are background noise, not cells
MIN_CELL_PX = 64


def cell_mask(reference_phase_rad, threshold_rad: float = CELL_THRESHOLD_RAD, min_px: int = MIN_CELL_PX) -> np.ndarray:
    """True where the background-referenced phase (rad; background = 0, see
    :func:`napari_dmicro.phase_reference.referenced_phase_rad`) exceeds ``threshold_rad``, in connected pieces
    of at least ``min_px`` pixels (isolated noise pixels above the threshold are dropped)."""
    from scipy import ndimage

    mask = np.asarray(reference_phase_rad, dtype=np.float32) > float(threshold_rad)
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= int(min_px)
    keep[0] = False
    return keep[labels]


def region_box(mask, margin_px: int = MARGIN_PX) -> tuple[slice, slice]:
    """The (rows, cols) slices of ``mask``'s bounding box grown by ``margin_px`` (clipped to the image)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a region is a 2-D mask; got shape {mask.shape}")
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("the region is empty: draw it over the reference (or lower the cell threshold)")
    r0, r1 = max(int(rows.min()) - margin_px, 0), min(int(rows.max()) + 1 + margin_px, mask.shape[0])
    c0, c1 = max(int(cols.min()) - margin_px, 0), min(int(cols.max()) + 1 + margin_px, mask.shape[1])
    return slice(r0, r1), slice(c0, c1)


def evaluate_region(phase, reference, mask, *, margin_px: int = MARGIN_PX):
    """:func:`napari_dmicro.evaluate` of ``phase`` against ``reference`` on ``mask``'s box (see :func:`region_box`);
    the report's ``extra`` holds ``region_box`` (r0, r1, c0, c1) and ``region_pixels``."""
    from .api import evaluate

    rows, cols = region_box(mask, margin_px)
    if tuple(np.shape(mask)) != tuple(np.shape(reference)[-2:]):
        raise ValueError(f"the region {np.shape(mask)} and the reference {np.shape(reference)} differ in shape")
    report = evaluate(np.asarray(phase)[rows, cols], np.asarray(reference)[rows, cols], keep_ssim_map=False)
    report.extra.update(region_box=[rows.start, rows.stop, cols.start, cols.stop],
                        region_pixels=int(np.count_nonzero(mask)))
    return report
