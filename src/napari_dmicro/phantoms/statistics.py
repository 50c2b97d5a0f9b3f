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
