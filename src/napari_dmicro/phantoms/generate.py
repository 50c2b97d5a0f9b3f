"""Seeded generation of phantom fields: population, background, noise and amplitude of one field."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .background import correlated_noise, measured_like_amplitude
from .cells import _place, _Scene
from .config import PHASE_MAX_RAD, PhantomConfig
from .random_fields import _log_uniform, _slow_field


def _resolve(config: PhantomConfig | None, size_px) -> PhantomConfig:
    cfg = config if config is not None else PhantomConfig()
    if size_px is not None:
        data = cfg.model_dump()
        data["size_px"] = size_px
        cfg = PhantomConfig.model_validate(data)
    return cfg


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer (or a numpy SeedSequence)")
    return np.random.default_rng(int(seed))


def field_seed(seed: int, k: int) -> np.random.SeedSequence:
    """Seed of field ``k`` of ``make_fields(n, seed)``: ``SeedSequence([seed, k])``.

    ``make_field(field_seed(seed, k))`` reproduces that field on its own. Because SeedSequence pads its
    entropy with zeros, ``field_seed(seed, 0)`` gives the same field as the plain integer ``seed``.
    """
    if seed < 0 or k < 0:
        raise ValueError(f"seed={seed} and k={k} must be non-negative")
    return np.random.SeedSequence([int(seed), int(k)])


#: width (rad) of the soft knee below ``phase_ceiling_rad``
CEILING_KNEE_RAD = 1.2


def soft_ceiling(phase_rad: np.ndarray, ceiling_rad: float) -> np.ndarray:
    """Identity below ``ceiling − knee``, then ``knee·tanh`` towards ``ceiling_rad`` (smooth, monotonic)."""
    knee = min(CEILING_KNEE_RAD, ceiling_rad)
    start = np.float32(ceiling_rad - knee)
    over = phase_rad > start
    out = phase_rad.copy()
    out[over] = start + np.float32(knee) * np.tanh((phase_rad[over] - start) / np.float32(knee))
    return out


def _round_share(rng: np.random.Generator, cfg: PhantomConfig) -> float:
    """Fraction of a field's cells that are round: 0 (spread field), 1 (round field) or drawn (mixed field).

    Draws nothing when no field can hold round cells, so the classic phantoms stay unchanged.
    """
    if not cfg.has_round_cells:
        return 0.0
    w = np.asarray(cfg.field_kind_weights, float)
    kind = int(rng.choice(3, p=w / w.sum()))
    return (0.0, 1.0, float(rng.uniform(*cfg.mixed_round_fraction)))[kind]


def _cell_count(rng: np.random.Generator, cfg: PhantomConfig, density_per_mm2: float, area_mm2: float,
                mean_d_um: float, round_share: float) -> int:
    """Cells of one field: Poisson in ``density × area`` (classic), or from a drawn ``nominal_cover``."""
    if cfg.nominal_cover[1] > 0:
        lo, hi = cfg.round_diameter_um
        round_area_um2 = math.pi / 4.0 * (lo * lo + lo * hi + hi * hi) / 3.0  # E[π d²/4], d ~ U(lo, hi)
        mean_area_um2 = (1.0 - round_share) * math.pi * (mean_d_um / 2.0) ** 2 + round_share * round_area_um2
        expected = rng.uniform(*cfg.nominal_cover) * area_mm2 * 1e6 / mean_area_um2
        return max(int(rng.poisson(expected)), 1 if expected >= 1.0 else 0)
    expected = density_per_mm2 * area_mm2
    n_cells = int(rng.poisson(expected))
    if expected >= 1.0:
        n_cells = max(n_cells, 1)
    n_max = int(cfg.max_cell_coverage * area_mm2 * 1e6 / (math.pi * (mean_d_um / 2) ** 2))
    return min(n_cells, max(n_max, 1 if expected >= 1.0 else 0))


def make_phase_amplitude(
    seed: int | np.random.SeedSequence = 0,
    config: PhantomConfig | None = None,
    *,
    size_px: tuple[int, int] | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Phase (float32, rad) and amplitude (float32, > 0, mean ≈ 1) of one phantom.

    The phase is clipped into [0, 2π − 1e-5] (``clip_phase``, the classic default) or, with
    ``clip_phase=False`` (the measured-like styles), is the true unwrapped phase: background noise may dip
    below 0 and the thickest cells may pass 2π. ``size_px`` (int for square, or (rows, cols)) overrides
    ``config.size_px``. Same seed and config give bit-identical arrays.
    """
    cfg = _resolve(config, size_px)
    rng = _rng(seed)
    h, w = cfg.size_px
    px = cfg.pixel_size_um
    scene = _Scene(cfg, rng)

    # ---- population ------------------------------------------------------------------------------
    mean_d_um = rng.uniform(*cfg.cell_diameter_um)
    density = _log_uniform(rng, *cfg.cell_count_per_mm2)
    field_peak = rng.uniform(*cfg.max_phase_rad)
    round_share = _round_share(rng, cfg)
    margin_um = 0.4 * mean_d_um  # cells are cut by the borders, as in a real FoV
    area_mm2 = (h * px + 2 * margin_um) * (w * px + 2 * margin_um) * 1e-6
    n_cells = _cell_count(rng, cfg, density, area_mm2, mean_d_um, round_share)

    mitotic = rng.uniform(size=n_cells) < cfg.mitotic_fraction
    d_um = np.clip(mean_d_um * np.exp(rng.normal(0.0, 0.2, n_cells)), *cfg.cell_diameter_um)
    d_mit = rng.uniform(*cfg.mitotic_diameter_um, n_cells)
    d_um = np.where(mitotic, d_mit, d_um)
    peaks = field_peak * rng.uniform(0.75, 1.0, n_cells)
    is_round = np.zeros(n_cells, bool)
    if round_share > 0:
        is_round = rng.uniform(size=n_cells) < round_share
        d_um = np.where(is_round, rng.uniform(*cfg.round_diameter_um, n_cells), d_um)
        thick = rng.uniform(size=n_cells) < cfg.round_thick_fraction
        p_round = np.where(thick, rng.uniform(*cfg.round_thick_peak_rad, n_cells),
                           rng.uniform(*cfg.round_peak_phase_rad, n_cells))
        peaks = np.where(is_round, p_round, peaks)
        mitotic &= ~is_round
    m = margin_um / px
    # round cells do not spread: they touch rather than overlap
    centres = _place(rng, n_cells, (-m, h - 1 + m, -m, w - 1 + m), d_um / px, sep=0.8 if round_share > 0 else 0.55)

    for i in range(n_cells):
        cy, cx = centres[i]
        if is_round[i]:
            scene.round_cell(cy, cx, d_um[i] / px, peaks[i])
        elif mitotic[i]:
            if rng.uniform() < 0.25:  # telophase doublet: two daughters side by side
                dd = 0.8 * d_um[i] / px
                a = rng.uniform(0, math.pi)
                sy, sx = 0.5 * dd * math.sin(a), 0.5 * dd * math.cos(a)
                scene.mitotic_cell(cy + sy, cx + sx, dd, peaks[i] * 0.9)
                scene.mitotic_cell(cy - sy, cx - sx, dd, peaks[i] * 0.9)
            else:
                scene.mitotic_cell(cy, cx, d_um[i] / px, peaks[i])
        else:
            scene.spread_cell(cy, cx, d_um[i] / px, peaks[i])

    n_debris = int(rng.poisson(rng.uniform(*cfg.debris_count_per_mm2) * h * w * px * px * 1e-6))
    for _ in range(n_debris):
        scene.debris(rng.uniform(0, h - 1), rng.uniform(0, w - 1))

    cells = scene.phase
    cells += scene.cyto_q if scene.q == 1.0 else scene.cyto_q ** np.float32(1.0 / scene.q)
    cells += scene.points.render(scene.point_sigma_px)
    if is_round.any():
        np.maximum(cells, scene.round_phase, out=cells)
    if cfg.phase_ceiling_rad > 0:
        cells = soft_ceiling(cells, cfg.phase_ceiling_rad)

    # ---- background and noise ----------------------------------------------------------------------
    offset = cfg.background_offset_rad + rng.uniform(-1, 1) * cfg.background_offset_jitter_rad
    bg_len = rng.uniform(*cfg.background_length_um) / px
    background = cfg.background_amplitude_rad * _slow_field(rng, (h, w), bg_len)
    noise = correlated_noise(rng, (h, w), cfg.noise_correlation_um / px)
    noise *= np.float32(rng.uniform(*cfg.noise_std_rad))
    phase = cells + background
    phase += noise
    phase += np.float32(offset)
    if cfg.clip_phase:
        np.clip(phase, 0.0, PHASE_MAX_RAD, out=phase)

    # ---- amplitude ---------------------------------------------------------------------------------
    ill_len = rng.uniform(*cfg.illumination_length_um) / px
    illumination = 1.0 + cfg.illumination_nonuniformity * _slow_field(rng, (h, w), ill_len)
    foot = np.minimum(scene.footprint, 1.0)
    fsum = float(foot.sum())
    mean_cell_phase = float((cells * foot).sum() / fsum) if fsum > 0 else 0.0
    # independent absorber: cell footprints with a random level per cell, times their own coarse
    # texture; it follows neither the nucleus nor the phase structure
    indep = scene.absorber * np.float32(mean_cell_phase) * np.maximum(1.0 + 0.5 * scene.tex_absorber, 0.0)
    k = cfg.absorption_phase_coupling
    absorber = k * cells + (1.0 - k) * indep
    amp_noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(cfg.amplitude_noise_std)
    amplitude = illumination * np.exp(-cfg.absorption * absorber) * (1.0 + amp_noise)
    amplitude = measured_like_amplitude(rng, cfg, amplitude, cells, foot)
    amplitude = np.maximum(amplitude, 1e-3).astype(np.float32)
    return phase.astype(np.float32, copy=False), amplitude


def make_field(
    seed: int | np.random.SeedSequence = 0,
    config: PhantomConfig | None = None,
    *,
    size_px: tuple[int, int] | int | None = None,
) -> np.ndarray:
    """complex64 array (rows, cols) = amplitude·exp(i·phase) of :func:`make_phase_amplitude` (an unclipped
    phase below 0 or above 2π wraps here: take targets from the true phase, background-referenced)."""
    phase, amplitude = make_phase_amplitude(seed, config, size_px=size_px)
    out = np.empty(phase.shape, np.complex64)
    out.real = amplitude * np.cos(phase)
    out.imag = amplitude * np.sin(phase)
    return out


def make_fields(
    n: int,
    seed: int = 0,
    config: PhantomConfig | None = None,
    *,
    size_px: tuple[int, int] | int | None = None,
) -> Iterator[np.ndarray]:
    """``n`` independent fields; field ``k`` is ``make_field(field_seed(seed, k), ...)``."""
    if n < 0:
        raise ValueError(f"n={n} must be non-negative")
    cfg = _resolve(config, size_px)
    for k in range(n):
        yield make_field(field_seed(seed, k), cfg)

