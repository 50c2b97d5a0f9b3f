"""PSNR and SSIM of a whole-field phase map, block by block (memory bounded by the block, not the field).

Convention (:mod:`napari_dmicro.metrics`): φ/2π with data range 1, the prediction clipped to [0, 1],
SSIM with an 11-px Gaussian window and reflect padding at the field's border. Each block is read with
a halo of ``SSIM_HALO_PX`` pixels (its neighbours inside the field, mirrored beyond the border), so
its SSIM map equals the whole-field map there; the full-field numbers are exact sums over blocks
(float64): PSNR of the pooled squared error, SSIM the mean of the map. Patch metrics use the 256²
patches of a non-overlapping grid; blocks are whole numbers of patches, so every patch lies in one
block. Inputs may be numpy, dask or zarr arrays; only one block of each is read at a time.

Reference convention: a complex reference field is read as background-referenced phase
(:mod:`napari_dmicro.phase_reference`: phase − background, wrapped into [−0.5, 2π − 0.5) rad), so its
background noise below 0 stays negative instead of wrapping to ~2π; ``reference_convention="absolute"``
keeps the old φ mod 2π. A real reference is a phase map (rad) taken as given.

With the background convention the reference's background is placed at ``SCORE_BACKGROUND_RAD`` (0.15
rad, the phantoms' level; SSIM is not shift invariant and collapses for local means near 0), its phase
lies in [0.15 − 0.5, 0.15 + 2π − 0.5) rad, and the prediction is clipped to [−0.35 rad, 2π] instead of
[0, 2π] so that neither background's noise is cut on one side only.

Offset alignment (``align_offset=True``): a global phase offset is invisible to an intensity microscope,
so the prediction is shifted by the median of (prediction − reference) before scoring. The median comes
from a first blockwise pass over a fine histogram (2¹⁵ bins over ±2π, interpolated within the bin;
differences beyond count in the end bins), additive over blocks, so the blockwise result equals the
whole-field one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Literal

import numpy as np
import torch

from ..metrics import SSIM_HALO_PX, pooled_psnr, psnr, ssim, ssim_map_of_extended
from ..phase_reference import WRAP_MARGIN_RAD, background_phase_rad, wrap_referenced_rad

__all__ = ["QualityPlanes", "FieldQuality", "evaluate_field", "ssim_map_view"]

#: default block side (object px) of the blockwise evaluation
BLOCK_PX = 2048
#: histogram bins over one turn for the median offset
OFFSET_BINS = 1 << 15
#: a complex reference read in the background convention is scored with its background at this level
#: (rad): the phantoms' and the shipped models' background. SSIM is not shift invariant: its luminance
#: term collapses for local means near 0 (docs/physics.md), so a background at exactly 0 would punish
#: a few hundredths of a radian of background structure like a wrong cell
SCORE_BACKGROUND_RAD = 0.15
#: the offset histogram spans ±this (rad); differences beyond count in the end bins
OFFSET_RANGE_RAD = 2 * math.pi
ReferenceConvention = Literal["background", "absolute"]


def _read(array, rows: slice, cols: slice) -> np.ndarray:
    block = array[rows, cols]
    if hasattr(block, "compute"):  # dask: read here, also from inside another dask task
        block = block.compute(scheduler="synchronous")
    return np.asarray(block)


class QualityPlanes:
    """A phase map (radians) and its reference (complex field or phase map, radians), read as φ/2π blocks.

    Non-finite values are refused with their position (``the phase map contains NaN … at row r, col c``).
    """

    def __init__(self, phase, reference, *, reference_convention: ReferenceConvention = "background",
                 offset_rad: float = 0.0, block_px: int = BLOCK_PX):
        for name, array in (("phase map", phase), ("reference", reference)):
            if len(getattr(array, "shape", ())) != 2:
                raise ValueError(f"the {name} must be a 2-D array; got shape {getattr(array, 'shape', None)}")
        if np.iscomplexobj(np.empty(0, dtype=phase.dtype)):
            raise ValueError("the phase map is complex: give the reconstructed phase in radians (a real array)")
        if tuple(phase.shape) != tuple(reference.shape):
            raise ValueError(f"phase {tuple(phase.shape)} and reference {tuple(reference.shape)} differ in shape; "
                             "reconstruct on the reference's grid (or crop both to the same region)")
        self.phase, self.reference = phase, reference
        self.shape = tuple(int(s) for s in phase.shape)
        self.reference_is_field = np.iscomplexobj(np.empty(0, dtype=reference.dtype))
        if reference_convention not in ("background", "absolute"):
            raise ValueError(f"reference_convention {reference_convention!r}: use 'background' or 'absolute'")
        self.reference_convention = reference_convention
        self.background_rad = (background_phase_rad(reference, block_px=block_px) if self.reference_is_field
                               and reference_convention == "background" else None)
        self.offset_rad = float(offset_rad)
        #: lowest predicted φ/2π scored: 0 (the paper), or −WRAP_MARGIN_RAD/2π with the background convention,
        #: whose background noise is legitimately negative (clipping it at 0 would bias the background)
        low_rad = SCORE_BACKGROUND_RAD - WRAP_MARGIN_RAD if reference_convention == "background" else 0.0
        self.clip_low = np.float32(min(low_rad, 0.0) / (2 * np.pi))

    def read_rad(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, reference phase) in radians (float32, not aligned, not clipped) over a block."""
        rows, cols = slice(r0, r1), slice(c0, c1)
        pred = _read(self.phase, rows, cols).astype(np.float32, copy=False)
        self._check_finite(pred, "phase map", r0, c0)
        ref = _read(self.reference, rows, cols)
        self._check_finite(ref, "reference", r0, c0)
        if self.reference_is_field:
            ref = (wrap_referenced_rad(ref, self.background_rad) + np.float32(SCORE_BACKGROUND_RAD)
                   if self.background_rad is not None else np.mod(np.angle(ref), 2 * np.pi))
        return pred, ref.astype(np.float32, copy=False)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """(prediction clipped, target) as float32 φ/2π over rows r0:r1, cols c0:c1 (inside the field)."""
        pred, ref = self.read_rad(r0, r1, c0, c1)
        if self.offset_rad:
            pred = pred - np.float32(self.offset_rad)
        return np.clip(pred / np.float32(2 * np.pi), self.clip_low, 1), ref / np.float32(2 * np.pi)

    def median_offset_rad(self, block_px: int = BLOCK_PX) -> float:
        """Median of (prediction − reference) over the whole field: a blockwise histogram over ±2π
        (additive, so independent of ``block_px``) interpolated within its bin."""
        hist = np.zeros(OFFSET_BINS, np.int64)
        rows, cols = self.shape
        for r0 in range(0, rows, block_px):
            for c0 in range(0, cols, block_px):
                pred, ref = self.read_rad(r0, min(r0 + block_px, rows), c0, min(c0 + block_px, cols))
                d = pred - ref  # not wrapped: a folded thick cell (error < −π) must stay in the low tail
                d += np.float32(OFFSET_RANGE_RAD)
                d *= np.float32(OFFSET_BINS / (2 * OFFSET_RANGE_RAD))
                np.clip(d, 0, OFFSET_BINS - 1, out=d)  # beyond ±range: counted in the end bins (rank kept)
                idx = d.astype(np.intp)
                del d
                hist += np.bincount(idx.ravel(), minlength=OFFSET_BINS)
        cum = np.cumsum(hist)
        half = cum[-1] / 2.0
        k = int(np.searchsorted(cum, half))
        below = cum[k - 1] if k else 0
        frac = (half - below) / hist[k] if hist[k] else 0.5
        return (k + frac) / OFFSET_BINS * 2 * OFFSET_RANGE_RAD - OFFSET_RANGE_RAD

    @staticmethod
    def _check_finite(block: np.ndarray, name: str, r0: int, c0: int) -> None:
        bad = ~np.isfinite(block)
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"the {name} contains NaN or infinite values ({int(bad.sum())} in rows "
                             f"{r0}–{r0 + block.shape[0] - 1}, cols {c0}–{c0 + block.shape[1] - 1}; first at row "
                             f"{r0 + r}, col {c0 + c}); a score over them is meaningless: fix or crop them first")

    def extended(self, r0: int, r1: int, c0: int, c1: int, halo: int = SSIM_HALO_PX):
        """Like :meth:`read`, with ``halo`` more pixels on every side (mirrored beyond the field's border)."""
        rows, cols = self.shape
        lo, hi, clo, chi = max(r0 - halo, 0), min(r1 + halo, rows), max(c0 - halo, 0), min(c1 + halo, cols)
        pad = ((halo - (r0 - lo), halo - (hi - r1)), (halo - (c0 - clo), halo - (chi - c1)))
        return tuple(np.pad(x, pad, mode="reflect") for x in self.read(lo, hi, clo, chi))


def _ssim_block(planes: QualityPlanes, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray]:
    """(SSIM map, prediction, target) of one block; the map equals the whole field's there."""
    p_ext, t_ext = planes.extended(r0, r1, c0, c1)
    smap = ssim_map_of_extended(torch.from_numpy(p_ext), torch.from_numpy(t_ext))[0, 0].numpy()
    h = SSIM_HALO_PX
    return smap, p_ext[h:-h, h:-h], t_ext[h:-h, h:-h]


@dataclass
class FieldQuality:
    """Numbers of :func:`evaluate_field` (see :class:`napari_dmicro.api.EvaluationReport`)."""

    psnr_db: float
    ssim: float
    ssim_map: np.ndarray | None
    patch_psnrs_db: list[float] = dc_field(default_factory=list)
    patch_ssims: list[float] = dc_field(default_factory=list)
    offset_rad: float = 0.0        #: global offset subtracted from the prediction (0 when not aligned)
    offset_aligned: bool = False
    reference_convention: str = "background"
    reference_background_rad: float | None = None  #: background phase removed from a complex reference


def evaluate_field(phase, reference, *, patch_px: int = 256, block_px: int = BLOCK_PX,
                   keep_ssim_map: bool = True, align_offset: bool = True,
                   reference_convention: ReferenceConvention = "background") -> FieldQuality:
    """Full-field and patch PSNR/SSIM of ``phase`` (radians) against ``reference``, block by block.

    ``block_px`` is rounded down to a whole number of patches (at least one). With ``keep_ssim_map``
    the SSIM map is returned as a numpy array (the field's size); without it memory holds one block.
    ``align_offset``: remove the median global offset first (a first blockwise pass; see the module).
    """
    planes = QualityPlanes(phase, reference, reference_convention=reference_convention,
                           block_px=max(int(block_px), 1))
    rows, cols = planes.shape
    if min(rows, cols) <= SSIM_HALO_PX:
        raise ValueError(f"images must be larger than {SSIM_HALO_PX} px per side for SSIM")
    patch_px = int(patch_px)
    if patch_px < 1:
        raise ValueError(f"patch_px={patch_px} must be >= 1")
    block_px = max(int(block_px) // patch_px, 1) * patch_px
    if align_offset:
        planes.offset_rad = planes.median_offset_rad(block_px)
    smap_out = np.empty((rows, cols), np.float32) if keep_ssim_map else None
    sq_err = ssim_sum = 0.0
    patches: list[tuple[int, int, float, float]] = []
    for r0 in range(0, rows, block_px):
        r1 = min(r0 + block_px, rows)
        for c0 in range(0, cols, block_px):
            c1 = min(c0 + block_px, cols)
            smap, p, t = _ssim_block(planes, r0, r1, c0, c1)
            ssim_sum += float(smap.sum(dtype=np.float64))
            sq_err += float(np.square(p - t, dtype=np.float64).sum())
            if smap_out is not None:
                smap_out[r0:r1, c0:c1] = smap
            _patch_metrics(p, t, patch_px, (r0, c0), patches)
    patches.sort()  # row-major over the field, as a single pass would list them
    return FieldQuality(psnr_db=pooled_psnr(sq_err, rows * cols), ssim=ssim_sum / (rows * cols),
                        ssim_map=smap_out, patch_psnrs_db=[q[2] for q in patches],
                        patch_ssims=[q[3] for q in patches], offset_rad=planes.offset_rad,
                        offset_aligned=bool(align_offset), reference_convention=reference_convention,
                        reference_background_rad=planes.background_rad)


def _patch_metrics(p: np.ndarray, t: np.ndarray, patch_px: int, origin: tuple[int, int], patches: list) -> None:
    """Append ``(row, col, psnr_db, ssim)`` of the whole patches of a block at ``origin`` (on the patch
    grid); all patches of the block go through the metrics as one batch."""
    n_r, n_c = p.shape[0] // patch_px, p.shape[1] // patch_px
    if not n_r or not n_c:
        return

    def batch(x: np.ndarray) -> torch.Tensor:
        x = x[:n_r * patch_px, :n_c * patch_px].reshape(n_r, patch_px, n_c, patch_px).transpose(0, 2, 1, 3)
        return torch.from_numpy(np.ascontiguousarray(x.reshape(-1, patch_px, patch_px)))

    pp, tt = batch(p), batch(t)
    psnrs, ssims = psnr(pp, tt).tolist(), ssim(pp, tt).tolist()
    for k, (value_db, value) in enumerate(zip(psnrs, ssims, strict=True)):
        i, j = divmod(k, n_c)
        patches.append((origin[0] + i * patch_px, origin[1] + j * patch_px, value_db, value))


class _SSIMMapView:
    """Array-like SSIM map: ``view[r0:r1, c0:c1]`` computes that region (with its halo) on demand."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, planes: QualityPlanes):
        self.planes = planes
        self.shape = planes.shape

    def __getitem__(self, key):
        rows, cols = (range(*k.indices(n)) for k, n in zip(key, self.shape, strict=True))
        if not rows or not cols:
            return np.empty((len(rows), len(cols)), np.float32)
        return _ssim_block(self.planes, rows.start, rows.stop, cols.start, cols.stop)[0]


def ssim_map_view(phase, reference, *, chunk_px: int = 1024, align_offset: bool = True,
                  reference_convention: ReferenceConvention = "background"):
    """The SSIM map as a lazy dask array computed chunk by chunk (e.g. to stream it into a zarr store),
    aligned and referenced as :func:`evaluate_field` (the offset pass runs here, before the chunks)."""
    import dask.array as da

    planes = QualityPlanes(phase, reference, reference_convention=reference_convention)
    if align_offset:
        planes.offset_rad = planes.median_offset_rad()
    chunk_px = max(int(chunk_px), SSIM_HALO_PX + 1)
    chunks = tuple(min(chunk_px, n) for n in planes.shape)
    return da.from_array(_SSIMMapView(planes), chunks=chunks, asarray=False,
                         meta=np.empty((0, 0), np.float32), name=f"ssim-map-{id(planes):x}", lock=False)

