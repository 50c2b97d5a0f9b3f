"""Small helpers of the honest evaluation (bench_honest.py): test objects, reference phase, offset alignment,
errors by true-phase band, core phase of round cells. Pure numpy/scipy, no model.

The reference phase is the library's (``napari_dmicro.phase_reference``). ``align_offset`` stays here: it
takes the median over a background *mask* (the benchmark knows the true cells), where ``dm.evaluate``
takes it over the whole field because it knows nothing of the specimen.

Conventions (all phases in rad):
- *reference phase*: the true phase, NOT wrapped, with the background at ``BACKGROUND_RAD`` (the shipped
  models' convention); *relative phase* = reference − background level (median over the background).
- a prediction is compared after removing its global offset: ``align_offset`` subtracts the median of
  (prediction − reference) over the background pixels (a global phase is invisible to intensity optics).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_dmicro.phase_reference import referenced_phase_rad

#: the shipped models' background phase convention (rad)
BACKGROUND_RAD = 0.15
#: true-phase bands (rad, relative to the background) of ``band_rms``
BANDS_RAD = ((0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 2 * np.pi))
#: a cell pixel is one more than this above the background (rad)
CELL_THRESHOLD_RAD = 0.3


def spherical_cap_phase(r_px: np.ndarray, radius_px: float, peak_rad: float) -> np.ndarray:
    """Phase (rad) of a round cell: ``peak·sqrt(1 − r²/R²)`` inside r < R, 0 outside."""
    if radius_px <= 0:
        raise ValueError(f"radius_px must be positive, got {radius_px}")
    r = np.asarray(r_px, dtype=np.float64)
    return peak_rad * np.sqrt(np.clip(1.0 - (r / radius_px) ** 2, 0.0, None))


def core_mean_fraction(fraction: float = 0.3) -> float:
    """Mean of sqrt(1 − r²/R²) over the disc r < fraction·R (analytic): the true core phase / peak."""
    a2 = fraction ** 2
    return 2.0 * (1.0 - (1.0 - a2) ** 1.5) / (3.0 * a2)


def background_noise(shape, std_rad: float, rng: np.random.Generator, corr_px: float = 1.0) -> np.ndarray:
    """Spatially correlated Gaussian noise (Gaussian-filtered white noise) rescaled to ``std_rad``."""
    n = rng.standard_normal(shape)
    if corr_px > 0:
        n = ndimage.gaussian_filter(n, corr_px)
    return n * (std_rad / max(float(n.std()), 1e-12))


def place_round_cells(size_px: int, radii_px, rng: np.random.Generator, gap_px: float = 3.0,
                      tries: int = 4000) -> list[tuple[float, float, float]]:
    """Non-touching (≥ ``gap_px`` apart) cells fully inside the field: [(cy, cx, R)], by rejection."""
    cells: list[tuple[float, float, float]] = []
    for r in radii_px:
        for _ in range(tries):
            cy, cx = rng.uniform(r + 2, size_px - r - 2, 2)
            if all(np.hypot(cy - y, cx - x) >= r + q + gap_px for y, x, q in cells):
                cells.append((float(cy), float(cx), float(r)))
                break
    return cells


def packed_round_cells(size_px: int, diameter_px: float, rng: np.random.Generator,
                       gap_px: float = 2.0) -> list[tuple[float, float, float]]:
    """A dense, confluent-like field: a hexagonal lattice of round cells (radii 0.85–1 × D/2), not touching."""
    pitch = diameter_px + gap_px
    cells = []
    for i, cy in enumerate(np.arange(diameter_px / 2, size_px, pitch * np.sqrt(3) / 2)):
        for cx in np.arange(diameter_px / 2 + (pitch / 2 if i % 2 else 0), size_px, pitch):
            cells.append((float(cy), float(cx), float(diameter_px / 2 * rng.uniform(0.85, 1.0))))
    return cells


def cap_cell_field(size_px: int, cells, peaks_rad, rng: np.random.Generator, *, noise_std_rad: float = 0.02,
                   amplitude_std: float = 0.01, background_rad: float = BACKGROUND_RAD):
    """Field of round spherical-cap cells on a flat noisy background.

    Returns ``(field complex64, reference phase float64 (rad, unwrapped, background ≈ background_rad),
    footprint bool)``. The field is ``amplitude·exp(i·reference)``; the reference may dip below 0 or pass 2π:
    it is never wrapped.
    """
    yy, xx = np.mgrid[0:size_px, 0:size_px].astype(np.float64)
    phase = np.full((size_px, size_px), background_rad) + background_noise((size_px, size_px), noise_std_rad, rng)
    footprint = np.zeros((size_px, size_px), bool)
    for (cy, cx, r), p in zip(cells, peaks_rad, strict=True):
        rr = np.hypot(yy - cy, xx - cx)
        phase += spherical_cap_phase(rr, r, p)
        footprint |= rr < r
    amplitude = 1.0 + background_noise((size_px, size_px), amplitude_std, rng)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64), phase, footprint


def reference_phase(field: np.ndarray) -> np.ndarray:
    """Background-referenced, unwrapped phase (rad) of a complex field with its background at
    ``BACKGROUND_RAD`` (the library's convention, :func:`napari_dmicro.phase_reference.referenced_phase_rad`,
    shifted to the scoring level): background noise below it stays slightly negative, never ~2π."""
    return referenced_phase_rad(field).astype(np.float64) + BACKGROUND_RAD


def background_mask(reference_rad: np.ndarray, background_level_rad: float | None = None,
                    threshold_rad: float = CELL_THRESHOLD_RAD, dilate_px: int = 4) -> np.ndarray:
    """Background pixels: farther than ``dilate_px`` from any pixel ``threshold_rad`` above the background."""
    level = float(np.median(reference_rad)) if background_level_rad is None else background_level_rad
    cell = reference_rad > level + threshold_rad
    if dilate_px > 0 and cell.any():
        cell = ndimage.binary_dilation(cell, iterations=dilate_px)
    return ~cell


def cell_mask(reference_rad: np.ndarray, background_level_rad: float, threshold_rad: float = CELL_THRESHOLD_RAD,
              dilate_px: int = 3) -> np.ndarray:
    """Cell region: phase above background + ``threshold_rad``, dilated by ``dilate_px`` (edges included)."""
    cell = reference_rad > background_level_rad + threshold_rad
    return ndimage.binary_dilation(cell, iterations=dilate_px) if dilate_px > 0 and cell.any() else cell


def align_offset(prediction_rad: np.ndarray, reference_rad: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The prediction minus its global offset: the median of (prediction − reference) over ``background``."""
    if not np.any(background):
        raise ValueError("align_offset needs at least one background pixel")
    d = np.asarray(prediction_rad, np.float64) - np.asarray(reference_rad, np.float64)
    return np.asarray(prediction_rad, np.float64) - float(np.median(d[background]))


def band_rms(error_rad: np.ndarray, relative_true_rad: np.ndarray, bands=BANDS_RAD) -> list[dict]:
    """rms and mean of an error map (rad) over the pixels whose true phase above the background lies in
    each band [lo, hi) (the last band also takes values ≥ its top); pixel counts; NaN where a band is empty."""
    out = []
    for i, (lo, hi) in enumerate(bands):
        sel = relative_true_rad >= lo
        if i < len(bands) - 1:
            sel &= relative_true_rad < hi
        e = np.asarray(error_rad, np.float64)[sel]
        out.append({"band_rad": [lo, round(hi, 4)], "pixels": int(e.size),
                    "rms_rad": float(np.sqrt(np.mean(e ** 2))) if e.size else float("nan"),
                    "bias_rad": float(np.mean(e)) if e.size else float("nan")})
    return out


def pool_bands(parts: list[list[dict]]) -> list[dict]:
    """Combine the ``band_rms`` of several fields (pixel-weighted)."""
    out = []
    for rows in zip(*parts, strict=True):
        n = sum(r["pixels"] for r in rows)
        ms = sum(r["pixels"] * r["rms_rad"] ** 2 for r in rows if r["pixels"]) / n if n else float("nan")
        bias = sum(r["pixels"] * r["bias_rad"] for r in rows if r["pixels"]) / n if n else float("nan")
        out.append({"band_rad": rows[0]["band_rad"], "pixels": n, "rms_rad": float(np.sqrt(ms)),
                    "bias_rad": float(bias)})
    return out


def core_phase(phase_rad: np.ndarray, cy: float, cx: float, radius_px: float, background_level_rad: float,
               fraction: float = 0.3) -> float:
    """Mean phase above ``background_level_rad`` over the central ``fraction`` of a round cell's radius."""
    h, w = phase_rad.shape
    yy, xx = np.ogrid[0:h, 0:w]
    core = np.hypot(yy - cy, xx - cx) < fraction * radius_px
    if not core.any():
        raise ValueError(f"no pixel within {fraction}·R = {fraction * radius_px:.2f} px of ({cy}, {cx})")
    return float(np.mean(phase_rad[core])) - background_level_rad


def within_target(decoded_rad: float, true_rad: float, abs_tol_rad: float = 0.25, rel_tol: float = 0.10) -> bool:
    """The thick-cell target: |decoded − true| ≤ max(0.25 rad, 10 % of the truth)."""
    return abs(decoded_rad - true_rad) <= max(abs_tol_rad, rel_tol * abs(true_rad))


def psnr_unit(prediction_rad, reference_rad, mask=None) -> float:
    """PSNR (dB) of φ/2π, data range 1, over ``mask`` (all pixels if None); no clipping or wrapping."""
    e = (np.asarray(prediction_rad, np.float64) - np.asarray(reference_rad, np.float64)) / (2 * np.pi)
    if mask is not None:
        e = e[mask]
    return float(10 * np.log10(1.0 / max(float(np.mean(e ** 2)), 1e-20)))


def ssim_unit(prediction_rad, reference_rad) -> float:
    """SSIM of φ/2π (the project's convention: Gaussian window, data range 1), no clipping or wrapping."""
    import torch

    from napari_dmicro.metrics import ssim

    def t(a):
        return torch.from_numpy(np.asarray(a, np.float32) / np.float32(2 * np.pi))[None, None]

    return float(ssim(t(prediction_rad), t(reference_rad))[0])


def rms(a) -> float:
    a = np.asarray(a, np.float64)
    return float(np.sqrt(np.mean(a ** 2)))
