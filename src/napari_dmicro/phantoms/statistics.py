"""Summary statistics of a phantom or a measured field (complex, or a real phase map in rad)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .config import PHASE_MAX_RAD, TWO_PI


def field_statistics(field: np.ndarray, background_threshold_rad: float = 0.5, *,
                     background_margin_px: int = 12) -> dict:
    """Summary numbers of a field (complex, or a real phase map in rad).

    * ``cell_area_fraction``: fraction of pixels with phase > ``background_threshold_rad``;
    * ``phase_p01 … phase_p999``: phase percentiles (1, 50, 90, 99, 99.9 %), rad, over all pixels;
      ``cell_phase_mean``: mean phase over cell pixels;
    * ``background_mean_rad`` / ``background_std_rad``: over pixels below the threshold and farther than
      ``background_margin_px`` from any pixel above it (so thin cell rims do not count);
      ``background_fraction``: fraction of pixels used for that;
    * ``amplitude_mean/std/min/max`` and ``amplitude_phase_corr`` (Pearson, all pixels); NaN for real input;
    * ``clipped_zero_fraction`` / ``clipped_two_pi_fraction``: pixels clipped at 0 and at 2π − 1e-5.
    """
    field = np.asarray(field)
    if np.iscomplexobj(field):
        z = field.astype(np.complex128, copy=False)
        phase = np.mod(np.angle(z), TWO_PI)
        amplitude = np.abs(z)
    else:
        phase = np.mod(field.astype(np.float64, copy=False), TWO_PI)
        amplitude = None
    cell = phase > background_threshold_rad
    near = ndimage.maximum_filter(cell, size=2 * background_margin_px + 1) if cell.any() else cell
    bg = ~near
    p = np.percentile(phase, [1, 50, 90, 99, 99.9])
    stats = {
        "cell_area_fraction": float(cell.mean()),
        "phase_p01": float(p[0]),
        "phase_p50": float(p[1]),
        "phase_p90": float(p[2]),
        "phase_p99": float(p[3]),
        "phase_p999": float(p[4]),
        "phase_max": float(phase.max()),
        "cell_phase_mean": float(phase[cell].mean()) if cell.any() else float("nan"),
        "background_fraction": float(bg.mean()),
        "background_mean_rad": float(phase[bg].mean()) if bg.any() else float("nan"),
        "background_std_rad": float(phase[bg].std()) if bg.any() else float("nan"),
        "clipped_zero_fraction": float(np.mean(phase <= 1e-7)),
        "clipped_two_pi_fraction": float(np.mean(phase >= PHASE_MAX_RAD - 1e-5)),
    }
    if amplitude is not None:
        a = amplitude.ravel()
        ph = phase.ravel()
        corr = float(np.corrcoef(a, ph)[0, 1]) if a.std() > 0 and ph.std() > 0 else float("nan")
        stats.update(
            amplitude_mean=float(a.mean()),
            amplitude_std=float(a.std()),
            amplitude_min=float(a.min()),
            amplitude_max=float(a.max()),
            amplitude_phase_corr=corr,
        )
    else:
        stats.update(amplitude_mean=float("nan"), amplitude_std=float("nan"), amplitude_min=float("nan"),
                     amplitude_max=float("nan"), amplitude_phase_corr=float("nan"))
    return stats


#: Edges (rad above the background) of the phase-level histogram of cell pixels; the last bin also holds
#: anything above 2π.
PHASE_BINS_RAD = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, TWO_PI)
PHASE_BIN_LABELS = ("0-1", "1-2", "2-3", "3-4", "4-5", "5-2pi")


def background_level_rad(phase_rad: np.ndarray, cell_threshold_rad: float = 0.5) -> float:
    """Background phase (rad) of an unwrapped phase map: median of the pixels near the low end.

    Starts from the 2nd percentile (which lies in the background while the cover is < 98 %) and takes the
    median of the pixels less than ``cell_threshold_rad`` above it, twice.
    """
    phase = np.asarray(phase_rad, np.float64)
    level = float(np.percentile(phase, 2))
    for _ in range(2):
        level = float(np.median(phase[phase < level + cell_threshold_rad]))
    return level


def specimen_statistics(phase_rad: np.ndarray, amplitude: np.ndarray | None = None, *,
                        cell_threshold_rad: float = 0.5, background_margin_px: int = 8,
                        interior_margin_px: int = 3) -> dict:
    """Statistics to compare a field with measured specimens (an UNWRAPPED phase map, rad).

    The phase is referenced to its background (:func:`background_level_rad`); cell pixels are those more
    than ``cell_threshold_rad`` above it. Returns:

    * ``phase_hist``: fraction of cell pixels per band of :data:`PHASE_BIN_LABELS` (rad above background);
      ``thick_fraction_3_5``: the fraction at 3–5 rad;
    * ``cover``: fraction of all pixels that are cell pixels; ``cell_peak_rad``: 99.9 % percentile of
      the cell phase; ``above_two_pi_fraction``: pixels whose phase reaches 2π (they wrap in a complex field);
    * ``background_phase_std_rad`` and ``background_amplitude_std`` (relative): over pixels farther than
      ``background_margin_px`` from any cell pixel; ``background_fraction``: share of pixels used;
    * ``cell_amplitude_std`` (relative, all cell pixels, edge rings included) and
      ``cell_interior_amplitude_std`` (cells eroded by ``interior_margin_px``);
    * ``rim_amplitude_p99``: 99th percentile of |A / A_background − 1| within ±2 px of the cell borders
      (edge rings).

    Amplitude entries are NaN without ``amplitude``; background entries NaN when no background is left.
    """
    phase = np.asarray(phase_rad)
    if phase.ndim != 2 or np.iscomplexobj(phase) or not np.isfinite(phase).all():
        raise ValueError(f"expected a finite real 2-D phase map in rad (unwrapped), got {phase.dtype} {phase.shape}")
    phase = phase.astype(np.float64)
    rel = phase - background_level_rad(phase, cell_threshold_rad)
    cell = rel > cell_threshold_rad
    bg = ~ndimage.binary_dilation(cell, iterations=background_margin_px) if cell.any() else np.ones_like(cell)
    interior = ndimage.binary_erosion(cell, iterations=interior_margin_px)
    rim = ndimage.binary_dilation(cell, iterations=2) & ~ndimage.binary_erosion(cell, iterations=2)
    values = np.minimum(rel[cell], TWO_PI - 1e-9)
    hist = np.histogram(values, PHASE_BINS_RAD)[0] / max(int(cell.sum()), 1)
    nan = float("nan")

    def rel_std(a, mask):
        return float(a[mask].std() / a[mask].mean()) if mask.any() else nan

    amp = None if amplitude is None else np.asarray(amplitude, np.float64)
    return {
        "phase_hist": dict(zip(PHASE_BIN_LABELS, (float(x) for x in hist), strict=True)),
        "thick_fraction_3_5": float(hist[3] + hist[4]),
        "cover": float(cell.mean()),
        "cell_peak_rad": float(np.percentile(rel[cell], 99.9)) if cell.any() else nan,
        "above_two_pi_fraction": float(np.mean(phase >= TWO_PI)),
        "background_fraction": float(bg.mean()),
        "background_phase_std_rad": float(phase[bg].std()) if bg.any() else nan,
        "background_amplitude_std": rel_std(amp, bg) if amp is not None else nan,
        "cell_amplitude_std": rel_std(amp, cell) if amp is not None else nan,
        "cell_interior_amplitude_std": rel_std(amp, interior) if amp is not None else nan,
        "rim_amplitude_p99": (float(np.percentile(np.abs(amp[rim] / np.median(amp[bg]) - 1), 99))
                              if amp is not None and rim.any() and bg.any() else nan),
    }
