"""Seeded synthetic HeLa-like adherent-cell complex optical fields ("phantoms").

A phantom is a complex field ``amplitude · exp(i · phase)`` on the paper's object grid (789 × 789 px of
0.3164 µm, i.e. a 250 µm field of view at λ/2 sampling of a 632.8 nm HeNe laser). It contains:

* spread, irregular adherent cells (star-shaped contours from low-order random Fourier perturbations of
  the log-radius plus a few lamellipodial protrusions), with a thin lamella at the rim, a cytoplasmic
  dome that thickens towards the cell body, textured cytoplasm (smooth mottling, point-like granules
  concentrated around the nucleus, faint stress fibres along the long axis);
* a nucleus per spread cell (ellipse with a slightly irregular contour, chromatin texture) carrying the
  highest phase, with 1–4 nucleoli;
* rounded mitotic cells (spherical phase profile, some with a condensed chromosome plate, some as
  telophase doublets);
* small debris particles in the background;
* a residual background phase (slow variations of ± ``background_amplitude_rad`` around a small
  positive offset) and white-ish measurement noise, as real fields have after background correction;
* an amplitude that is nearly flat: slow illumination non-uniformity, weak absorption that follows the
  phase only partly, and a little amplitude noise.

Phase maps are modelled directly in radians (optical path difference ``φ = 2π/λ · Δn · h``; see
``docs/phantoms.md`` for the equivalent thicknesses); overlapping cells add their phase, and the total is
clipped (not wrapped) into ``[0, 2π − 1e-5]`` as in the paper's data.

Everything is drawn from a :class:`numpy.random.Generator` seeded by the caller, so the same seed and
configuration give bit-identical fields. All per-field quantities that are given as ``(min, max)``
ranges in :class:`PhantomConfig` are sampled once per field, so a stream of fields varies in density,
cell size, phase range and background.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import fft as sp_fft
from scipy import ndimage

from .config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM, check_pixel_size_um, check_wavelength_um

__all__ = [
    "PHASE_MAX_RAD",
    "PhantomConfig",
    "field_seed",
    "field_statistics",
    "make_field",
    "make_fields",
    "make_phase_amplitude",
    "phase_to_opd_um",
]

TWO_PI = 2.0 * math.pi
#: Upper clipping value of the phase, as in the paper's data: phase ∈ [0, 2π − 1e-5].
PHASE_MAX_RAD = TWO_PI - 1e-5

Range = tuple[float, float]


# ----------------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------------


class PhantomConfig(BaseModel):
    """Parameters of the phantom generator (pydantic, frozen; units in every field name).

    ``(min, max)`` tuples are ranges: one value is drawn per field (uniformly, except
    ``cell_count_per_mm2`` which is drawn log-uniformly), and per-cell quantities are drawn per cell.
    Phases are in radians, lengths in micrometres. See ``docs/phantoms.md`` for the meaning of every
    parameter and measured statistics of the default configuration.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # --- grid --------------------------------------------------------------------------------------
    size_px: tuple[int, int] = Field((789, 789), description="(rows, cols) of the field")
    pixel_size_um: float = Field(DEFAULT_PIXEL_SIZE_UM, gt=0, description="object-plane pixel pitch, µm")
    wavelength_um: float = Field(
        DEFAULT_WAVELENGTH_UM,
        gt=0,
        description="vacuum wavelength, µm (metadata; phases are specified directly in rad)",
    )

    # --- population (per field) ----------------------------------------------------------------------
    cell_count_per_mm2: Range = Field(
        (40.0, 2000.0), description="cell density range, cells/mm² (log-uniform)"
    )
    max_cell_coverage: float = Field(
        1.5, gt=0, le=3.0, description="cap on (sum of cell areas)/(area), limits stacking at confluence"
    )
    cell_diameter_um: Range = Field(
        (20.0, 50.0), description="equivalent-area spread-cell diameter, µm (field mean, per cell ±20 %)"
    )
    overlap_exponent: float = Field(
        3.0, ge=1, le=20, description="cytoplasm of overlapping cells combines as a p-norm (1 = sum)"
    )
    mitotic_fraction: float = Field(0.06, ge=0, le=1, description="probability that a cell is mitotic")
    mitotic_diameter_um: Range = Field((15.0, 20.0), description="diameter of rounded mitotic cells, µm")

    # --- phase levels ------------------------------------------------------------------------------
    max_phase_rad: Range = Field(
        (3.5, 6.0), description="peak nuclear phase, rad (field value; cells get 75–100 % of it)"
    )
    cytoplasm_phase_rad: Range = Field(
        (1.0, 2.5), description="peak of the cytoplasmic dome (next to the nucleus), rad, per cell"
    )
    lamella_fraction: Range = Field(
        (0.1, 0.3), description="phase of the thin rim (lamella) as a fraction of the cytoplasm peak"
    )
    edge_width_um: float = Field(1.0, gt=0, le=10, description="width over which the cell edge rises, µm")

    # --- shape -------------------------------------------------------------------------------------
    cell_irregularity: float = Field(
        0.35, ge=0, le=0.8, description="rms of the log-radius perturbation of spread-cell contours"
    )
    nucleus_diameter_um: Range = Field(
        (10.0, 20.0), description="equivalent-area nucleus diameter, µm (at most 60 % of the cell diameter)"
    )
    nucleolus_count: tuple[int, int] = Field((1, 4), description="number of nucleoli per nucleus")
    nucleolus_diameter_um: Range = Field((1.0, 3.0), description="nucleolus FWHM diameter, µm")
    nucleolus_phase_rad: Range = Field((0.2, 0.6), description="extra phase of a nucleolus, rad")

    # --- texture -----------------------------------------------------------------------------------
    cytoplasm_texture: float = Field(0.1, ge=0, le=1, description="relative std of cytoplasm mottling")
    nucleus_texture: float = Field(0.08, ge=0, le=1, description="relative std of chromatin texture")
    texture_length_um: float = Field(1.5, gt=0, description="correlation length of the mottling, µm")
    granule_density_per_um2: float = Field(0.05, ge=0, le=1, description="granules per µm² of cell")
    granule_phase_rad: Range = Field((0.1, 0.4), description="peak phase of a granule, rad")
    granule_diameter_um: float = Field(0.6, gt=0, description="FWHM of granules and width of fibres, µm")
    fibre_count: tuple[int, int] = Field((2, 10), description="stress fibres per spread cell")
    fibre_phase_rad: Range = Field((0.05, 0.15), description="peak phase of a stress fibre, rad")

    # --- debris ------------------------------------------------------------------------------------
    debris_count_per_mm2: Range = Field((0.0, 300.0), description="density of small debris particles")
    debris_phase_rad: Range = Field((0.05, 0.5), description="peak phase of a debris particle, rad")
    debris_diameter_um: Range = Field((0.5, 3.0), description="FWHM of debris particles, µm")

    # --- background --------------------------------------------------------------------------------
    background_offset_rad: float = Field(
        0.15, ge=0, lt=1.0, description="mean background phase, rad (keeps the ±slow variation above 0)"
    )
    background_offset_jitter_rad: float = Field(
        0.02, ge=0, lt=0.5, description="per-field uniform jitter of the background offset, ± rad"
    )
    background_amplitude_rad: float = Field(
        0.1, ge=0, lt=1.0, description="slow background variation spans exactly ± this, rad"
    )
    background_length_um: Range = Field(
        (40.0, 250.0), description="correlation length of the slow background, µm"
    )
    noise_std_rad: Range = Field((0.01, 0.03), description="std of the measurement noise, rad (per field)")
    noise_correlation_um: float = Field(
        0.15, ge=0, description="Gaussian σ of the noise correlation, µm (0 = white)"
    )

    # --- amplitude ---------------------------------------------------------------------------------
    absorption: float = Field(
        0.005, ge=0, le=0.1, description="relative amplitude loss per rad of (absorber) phase"
    )
    absorption_phase_coupling: float = Field(
        0.3,
        ge=0,
        le=1,
        description="fraction of the absorber that follows the phase; the rest is an independent texture",
    )
    illumination_nonuniformity: float = Field(
        0.03, ge=0, lt=0.5, description="slow relative illumination variation, spans exactly ± this"
    )
    illumination_length_um: Range = Field(
        (100.0, 400.0), description="correlation length of the illumination variation, µm"
    )
    amplitude_noise_std: float = Field(0.003, ge=0, lt=0.2, description="relative std of amplitude noise")

    # --- validation --------------------------------------------------------------------------------

    @field_validator("size_px", mode="before")
    @classmethod
    def _square_from_int(cls, v):
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return (int(v), int(v))
        return v

    @field_validator("size_px")
    @classmethod
    def _positive_size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 8 or max(v) > 16384:
            raise ValueError(f"size_px={v} must have both sides in 8…16384 pixels (rows, cols)")
        return v

    _check_pixel = field_validator("pixel_size_um")(lambda cls, v: check_pixel_size_um(v))
    _check_wavelength = field_validator("wavelength_um")(lambda cls, v: check_wavelength_um(v))

    @field_validator(
        "cell_count_per_mm2",
        "cell_diameter_um",
        "mitotic_diameter_um",
        "max_phase_rad",
        "cytoplasm_phase_rad",
        "lamella_fraction",
        "nucleus_diameter_um",
        "nucleolus_count",
        "nucleolus_diameter_um",
        "nucleolus_phase_rad",
        "granule_phase_rad",
        "fibre_count",
        "fibre_phase_rad",
        "debris_count_per_mm2",
        "debris_phase_rad",
        "debris_diameter_um",
        "background_length_um",
        "noise_std_rad",
        "illumination_length_um",
    )
    @classmethod
    def _ordered_range(cls, v, info):
        lo, hi = v
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{info.field_name}={v} must be finite")
        if lo < 0:
            raise ValueError(f"{info.field_name}={v}: values must be non-negative")
        if lo > hi:
            raise ValueError(f"{info.field_name}={v} is not a (min, max) range: min > max")
        return v

    @field_validator(
        "cell_diameter_um",
        "mitotic_diameter_um",
        "nucleus_diameter_um",
        "nucleolus_diameter_um",
        "debris_diameter_um",
        "background_length_um",
        "illumination_length_um",
    )
    @classmethod
    def _positive_lengths(cls, v, info):
        if v[0] <= 0:
            raise ValueError(f"{info.field_name}={v}: lengths must be > 0 µm")
        return v

    @field_validator("max_phase_rad")
    @classmethod
    def _below_two_pi(cls, v):
        if v[0] <= 0 or v[1] >= TWO_PI:
            raise ValueError(
                f"max_phase_rad={v} must lie in (0, 2π) (phase is clipped into [0, 2π)); "
                "e.g. (3.5, 6.0)"
            )
        return v

    @field_validator("lamella_fraction")
    @classmethod
    def _fraction(cls, v):
        if v[1] > 1:
            raise ValueError(f"lamella_fraction={v} must lie in [0, 1]")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.cytoplasm_phase_rad[1] >= TWO_PI:
            raise ValueError(f"cytoplasm_phase_rad={self.cytoplasm_phase_rad} must stay below 2π")
        if self.background_offset_rad + self.background_amplitude_rad >= 1.0:
            raise ValueError(
                "background_offset_rad + background_amplitude_rad must be < 1 rad "
                "(a residual background, not a cell)"
            )
        return self


def phase_to_opd_um(phase_rad, wavelength_um: float = DEFAULT_WAVELENGTH_UM):
    """Optical path difference ``Δn · h`` (µm) of a phase (rad): ``φ · λ / 2π``."""
    return np.asarray(phase_rad) * (wavelength_um / TWO_PI)


# ----------------------------------------------------------------------------------------------------
# random fields
# ----------------------------------------------------------------------------------------------------


def _slow_field(rng: np.random.Generator, shape: tuple[int, int], length_px: float) -> np.ndarray:
    """Smooth Gaussian random field with correlation length ``length_px``, scaled to span exactly [-1, 1].

    Evaluated as a separable sum of a few low-frequency Fourier modes whose period is twice the field
    (so the field is not periodic over the field of view): ``Re(Ey @ C @ Ex^T)``; cost O(H·W·K) with
    K ≤ 2·32 + 1 modes per axis.
    """
    h, w = shape
    kmax_y = int(min(32, math.ceil(2 * h / (math.pi * length_px) * 3.0)))
    kmax_x = int(min(32, math.ceil(2 * w / (math.pi * length_px) * 3.0)))
    ky = np.arange(-kmax_y, kmax_y + 1)
    kx = np.arange(-kmax_x, kmax_x + 1)
    fy = ky / (2.0 * h)  # cycles per pixel
    fx = kx / (2.0 * w)
    gain = np.exp(-(math.pi * length_px) ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2) / 2.0)
    coef = (rng.standard_normal(gain.shape) + 1j * rng.standard_normal(gain.shape)) * gain
    ey = np.exp(2j * math.pi * np.outer(np.arange(h), fy))
    ex = np.exp(2j * math.pi * np.outer(np.arange(w), fx))
    out = ((ey @ coef) @ ex.T).real
    lo, hi = out.min(), out.max()
    if hi - lo <= 0:
        return np.zeros(shape, np.float32)
    return ((out - 0.5 * (hi + lo)) / (0.5 * (hi - lo))).astype(np.float32)


def _texture_pair(
    rng: np.random.Generator, shape: tuple[int, int], sigma_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent zero-mean, unit-std Gaussian textures with Gaussian correlation ``sigma_px``.

    Complex white noise is filtered in the Fourier domain; the real and imaginary parts of its inverse
    transform are independent real fields. The grid is padded to an FFT-friendly size (789 = 3·263).
    """
    h, w = shape
    ph, pw = sp_fft.next_fast_len(h + 8), sp_fft.next_fast_len(w + 8)
    fy = sp_fft.fftfreq(ph).astype(np.float32)
    fx = sp_fft.fftfreq(pw).astype(np.float32)
    gain = np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2)).astype(np.float32)
    noise = rng.standard_normal((2, ph, pw), dtype=np.float32)
    spec = (noise[0] + 1j * noise[1]).astype(np.complex64)
    spec *= gain
    z = sp_fft.ifft2(spec, workers=1)[:h, :w]
    out = []
    for part in (z.real, z.imag):
        part = part - part.mean()
        s = part.std()
        out.append((part / s if s > 0 else part).astype(np.float32))
    return out[0], out[1]


def _coarse_texture(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std texture with a long correlation, made on a 4× coarser grid and upsampled."""
    f = 4 if sigma_px >= 8 else 1
    small = (shape[0] // f + 2, shape[1] // f + 2)
    t, _ = _texture_pair(rng, small, sigma_px / f)
    if f == 1:
        return t[: shape[0], : shape[1]]
    big = ndimage.zoom(t, f, order=1, grid_mode=False)[: shape[0], : shape[1]]
    big = big - big.mean()
    return (big / max(float(big.std()), 1e-12)).astype(np.float32)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if lo <= 0 or hi <= lo:
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _add_gaussian(img: np.ndarray, cy: float, cx: float, sy: float, sx: float, angle: float, amp: float):
    """Add an (anisotropic, rotated) Gaussian blob in place, evaluated on a local ±4σ box."""
    r = 4.0 * max(sy, sx)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, img.shape[0])
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, img.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    img[y0:y1, x0:x1] += amp * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


class _Splatter:
    """Collects weighted sub-pixel points (bilinear splatting) into one image, blurred once at the end."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.ys: list[np.ndarray] = []
        self.xs: list[np.ndarray] = []
        self.ws: list[np.ndarray] = []

    def add(self, y: np.ndarray, x: np.ndarray, w: np.ndarray):
        self.ys.append(np.asarray(y, np.float64).ravel())
        self.xs.append(np.asarray(x, np.float64).ravel())
        self.ws.append(np.broadcast_to(np.asarray(w, np.float64), np.shape(y)).ravel())

    def render(self, sigma_px: float) -> np.ndarray:
        h, w = self.shape
        if not self.ys:
            return np.zeros(self.shape, np.float32)
        y = np.concatenate(self.ys)
        x = np.concatenate(self.xs)
        wt = np.concatenate(self.ws)
        y0 = np.floor(y).astype(np.int64)
        x0 = np.floor(x).astype(np.int64)
        fy = y - y0
        fx = x - x0
        acc = np.zeros(h * w, np.float64)
        for oy, ox, ww in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            yy = y0 + oy
            xx = x0 + ox
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            acc += np.bincount(yy[ok] * w + xx[ok], weights=(wt * ww)[ok], minlength=h * w)
        img = acc.reshape(h, w).astype(np.float32)
        return ndimage.gaussian_filter(img, sigma_px, mode="constant", truncate=3.5)


# ----------------------------------------------------------------------------------------------------
# cells
# ----------------------------------------------------------------------------------------------------

_N_ANGLES = 256
_ANGLES = np.linspace(-math.pi, math.pi, _N_ANGLES, endpoint=False)


def _radius_table(
    rng: np.random.Generator, irregularity: float, elongation: float
) -> tuple[np.ndarray, float]:
    """Log-radius table over ``_ANGLES`` for a star-shaped contour with unit equivalent-area radius.

    Returns the radius table and the long-axis angle.
    """
    logr = np.zeros(_N_ANGLES)
    axis = rng.uniform(-math.pi, math.pi)
    logr += elongation * np.cos(2.0 * (_ANGLES - axis))
    for k in range(3, 7):
        logr += rng.normal(0.0, irregularity / k**1.2) * np.cos(k * _ANGLES - rng.uniform(0, TWO_PI))
    # lamellipodial protrusions: broad angular bumps of the log-radius
    for _ in range(int(rng.integers(1, 5))):
        width = rng.uniform(0.2, 0.6)
        d = np.angle(np.exp(1j * (_ANGLES - rng.uniform(-math.pi, math.pi))))
        logr += rng.uniform(0.5, 1.5) * irregularity * np.exp(-0.5 * (d / width) ** 2)
    r = np.exp(logr)
    r /= math.sqrt(np.mean(r**2))  # area = π·mean(r²) → unit equivalent radius
    return r, axis


def _lookup(table: np.ndarray, theta) -> np.ndarray:
    """Periodic linear interpolation of ``table`` (sampled at ``_ANGLES``) at angles ``theta`` (rad)."""
    t = (np.asarray(theta, np.float32) + np.float32(math.pi)) * np.float32(_N_ANGLES / TWO_PI)
    i0 = np.floor(t)
    frac = t - i0
    i0 = i0.astype(np.intp) % _N_ANGLES
    tab = table if len(table) == _N_ANGLES + 1 else np.append(table, table[0]).astype(np.float32)
    return tab[i0] * (1 - frac) + tab[i0 + 1] * frac


def _patch(shape, cy, cx, radius):
    y0, y1 = max(int(math.floor(cy - radius)), 0), min(int(math.ceil(cy + radius)) + 1, shape[0])
    x0, x1 = max(int(math.floor(cx - radius)), 0), min(int(math.ceil(cx + radius)) + 1, shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
    return (slice(y0, y1), slice(x0, x1)), dy, dx


class _Scene:
    """Accumulators shared by all objects of one field."""

    def __init__(self, cfg: PhantomConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.shape = cfg.size_px
        self.px = cfg.pixel_size_um
        self.phase = np.zeros(self.shape, np.float32)  # additive phase: nuclei, mitotic cells, debris
        # cytoplasm of overlapping spread cells is merged with a soft maximum (p-norm), so that a
        # confluent monolayer does not stack up: sum of cyto**q, combined as (sum)**(1/q) at the end
        self.cyto_q = np.zeros(self.shape, np.float32)
        self.q = float(cfg.overlap_exponent)
        self.footprint = np.zeros(self.shape, np.float32)  # soft cell masks (for absorption)
        self.absorber = np.zeros(self.shape, np.float32)  # phase-independent absorber, per-cell level
        self.points = _Splatter(self.shape)  # granules and fibres, in phase·px² / phase·px units
        tex_sigma = cfg.texture_length_um / self.px
        self.tex_cyto, self.tex_nuc = _texture_pair(rng, self.shape, tex_sigma)
        self.tex_absorber = _coarse_texture(rng, self.shape, 3.0 / self.px)
        self.edge_px = cfg.edge_width_um / self.px
        self.point_sigma_px = cfg.granule_diameter_um / 2.3548 / self.px

    # --- spread (interphase) cell ------------------------------------------------------------------
    def spread_cell(self, cy: float, cx: float, diameter_px: float, peak_phase: float):
        cfg, rng = self.cfg, self.rng
        r_unit, axis = _radius_table(rng, cfg.cell_irregularity, rng.uniform(0.05, 0.45))
        r_tab = np.append(r_unit, r_unit[0]).astype(np.float32) * np.float32(diameter_px / 2.0)
        got = _patch(self.shape, cy, cx, float(r_tab.max()) + self.edge_px + 2)
        cyto = min(rng.uniform(*cfg.cytoplasm_phase_rad), 0.6 * peak_phase)
        lamella = rng.uniform(*cfg.lamella_fraction)
        power = rng.uniform(0.6, 1.2)
        absorber_level = np.float32(rng.uniform(0.3, 1.7))

        # nucleus geometry (cell-centred polar frame; offset towards a random side)
        dn = min(rng.uniform(*cfg.nucleus_diameter_um) / self.px, 0.6 * diameter_px, 1.4 * float(r_tab.min()))
        off_ang = rng.uniform(-math.pi, math.pi)
        r_at = float(_lookup(r_tab, off_ang))
        off = rng.uniform(0.0, max(0.0, min(0.2 * diameter_px, r_at - 0.65 * dn)))
        ny, nx = cy + off * math.sin(off_ang), cx + off * math.cos(off_ang)
        aspect = rng.uniform(1.0, 1.5)
        n_angle = axis + rng.normal(0.0, 0.3)
        na, nb = 0.5 * dn * math.sqrt(aspect), 0.5 * dn / math.sqrt(aspect)
        n_tab = np.ones(_N_ANGLES)
        for k in range(2, 5):
            n_tab += rng.normal(0.0, 0.04 / k) * np.cos(k * _ANGLES - rng.uniform(0, TWO_PI))
        n_tab = np.append(n_tab, n_tab[0]).astype(np.float32)
        cyto_at_nucleus = cyto * (lamella + (1 - lamella) * max(0.0, 1 - (off / r_at) ** 2) ** power)
        nucleus_height = max(peak_phase - cyto_at_nucleus, 0.25 * peak_phase)

        if got is not None:
            sl, dy, dx = got
            rho = np.hypot(dy, dx)
            r = _lookup(r_tab, np.arctan2(dy, dx))
            edge = _smoothstep((r - rho) / self.edge_px + 0.5)
            base = np.clip(1.0 - (rho / r) ** 2, 0.0, 1.0) ** np.float32(power)
            dome = lamella + (1.0 - lamella) * base
            tex = 1.0 + cfg.cytoplasm_texture * self.tex_cyto[sl]
            layer = cyto * dome * edge * np.maximum(tex, 0.2)
            self.cyto_q[sl] += layer * layer * layer if self.q == 3.0 else layer ** np.float32(self.q)
            self.footprint[sl] += edge
            self.absorber[sl] += edge * absorber_level

        # nucleus: rotated ellipse with slightly irregular contour, on its own (smaller) patch
        got_n = _patch(self.shape, ny, nx, max(na, nb) * float(n_tab.max()) + self.edge_px + 2)
        if got_n is not None:
            sl, ddy, ddx = got_n
            c, s = math.cos(n_angle), math.sin(n_angle)
            u = (ddx * c + ddy * s) / na
            v = (-ddx * s + ddy * c) / nb
            rho_n = np.hypot(u, v)
            bound = _lookup(n_tab, np.arctan2(v, u))
            edge_n = _smoothstep((bound - rho_n) * (nb / self.edge_px) + 0.5)  # ≥ edge width everywhere
            base_n = np.sqrt(np.clip(1.0 - (rho_n / bound) ** 2, 0.0, 1.0))
            tex_n = np.maximum(1.0 + cfg.nucleus_texture * self.tex_nuc[sl], 0.2)
            self.phase[sl] += nucleus_height * base_n * edge_n * tex_n

        # nucleoli
        for _ in range(int(rng.integers(cfg.nucleolus_count[0], cfg.nucleolus_count[1] + 1))):
            rr = 0.55 * math.sqrt(rng.uniform())
            aa = rng.uniform(-math.pi, math.pi)
            u, v = rr * math.cos(aa) * na, rr * math.sin(aa) * nb
            c, s = math.cos(n_angle), math.sin(n_angle)
            py, px_ = ny + u * s + v * c, nx + u * c - v * s
            sig = rng.uniform(*cfg.nucleolus_diameter_um) / 2.3548 / self.px
            elong = rng.uniform(1.0, 1.4)
            _add_gaussian(self.phase, py, px_, sig / math.sqrt(elong), sig * math.sqrt(elong),
                          rng.uniform(0, math.pi), rng.uniform(*cfg.nucleolus_phase_rad))

        area_um2 = math.pi * (0.5 * diameter_px * self.px) ** 2
        # granules: uniform in angle, denser towards the cell body
        n_gran = int(rng.poisson(cfg.granule_density_per_um2 * area_um2))
        if n_gran:
            th = rng.uniform(-math.pi, math.pi, n_gran)
            rn = 0.15 + 0.75 * rng.beta(1.6, 2.2, n_gran)
            rad = rn * _lookup(r_tab, th)
            amp = rng.uniform(*cfg.granule_phase_rad, n_gran) * (2 * math.pi * self.point_sigma_px**2)
            self.points.add(cy + rad * np.sin(th), cx + rad * np.cos(th), amp)
        # stress fibres: chords roughly along the long axis, clipped to 90 % of the contour
        n_fib = int(rng.integers(cfg.fibre_count[0], cfg.fibre_count[1] + 1))
        rmax = float(r_tab.max())
        t = np.arange(-rmax, rmax, 0.5)
        for _ in range(n_fib):
            ang = axis + rng.normal(0.0, 0.25)
            offset = rng.uniform(-0.6, 0.6) * diameter_px / 2
            ca, sa = math.cos(ang), math.sin(ang)
            yy = offset * ca + t * sa
            xx = -offset * sa + t * ca
            inside = np.hypot(yy, xx) < 0.9 * _lookup(r_tab, np.arctan2(yy, xx))
            if not inside.any():
                continue
            w = rng.uniform(*cfg.fibre_phase_rad) * 0.5 * math.sqrt(TWO_PI) * self.point_sigma_px
            self.points.add(cy + yy[inside], cx + xx[inside], w)

    # --- rounded mitotic cell ------------------------------------------------------------------------
    def mitotic_cell(self, cy: float, cx: float, diameter_px: float, peak_phase: float):
        cfg, rng = self.cfg, self.rng
        radius = 0.5 * diameter_px
        plate = rng.uniform() < 0.5
        plate_amp = rng.uniform(0.2, 0.5) if plate else 0.0
        height = peak_phase - 0.8 * plate_amp
        aspect = rng.uniform(1.0, 1.1)
        ang = rng.uniform(0, math.pi)
        absorber_level = np.float32(rng.uniform(0.3, 1.7))
        got = _patch(self.shape, cy, cx, radius * 1.05 + self.edge_px + 2)
        if got is not None:
            sl, dy, dx = got
            c, s = math.cos(ang), math.sin(ang)
            rho = np.hypot((dx * c + dy * s) * math.sqrt(aspect), (-dx * s + dy * c) / math.sqrt(aspect))
            edge = _smoothstep((radius - rho) / (1.5 * self.edge_px) + 0.5)  # steep sphere: softer rim
            base = np.sqrt(np.clip(1.0 - (rho / radius) ** 2, 0.0, 1.0))
            tex = np.maximum(1.0 + 0.5 * cfg.nucleus_texture * self.tex_nuc[sl], 0.2)
            self.phase[sl] += height * base * edge * tex
            self.footprint[sl] += edge
            self.absorber[sl] += edge * absorber_level
        if plate:  # condensed chromosomes (metaphase plate)
            _add_gaussian(self.phase, cy, cx, 0.6 / self.px, 0.3 * radius, rng.uniform(0, math.pi), plate_amp)

    def debris(self, cy: float, cx: float):
        cfg, rng = self.cfg, self.rng
        sig = rng.uniform(*cfg.debris_diameter_um) / 2.3548 / self.px
        e = rng.uniform(1.0, 1.6)
        _add_gaussian(self.phase, cy, cx, sig / math.sqrt(e), sig * math.sqrt(e), rng.uniform(0, math.pi),
                      rng.uniform(*cfg.debris_phase_rad))


def _place(rng: np.random.Generator, n: int, box: tuple[float, float, float, float], diam: np.ndarray,
           sep: float = 0.55, tries: int = 24) -> np.ndarray:
    """Random sequential placement with soft exclusion: centres at least ``sep·(d_i+d_j)/2`` apart when
    possible within ``tries`` attempts, otherwise the last attempt is kept (cells may overlap)."""
    y0, y1, x0, x1 = box
    centres = np.zeros((n, 2))
    for i in range(n):
        cand = np.column_stack([rng.uniform(y0, y1, tries), rng.uniform(x0, x1, tries)])
        if i:
            d = np.hypot(cand[:, None, 0] - centres[None, :i, 0], cand[:, None, 1] - centres[None, :i, 1])
            ok = np.all(d >= sep * 0.5 * (diam[i] + diam[None, :i]), axis=1)
            j = int(np.argmax(ok)) if ok.any() else tries - 1
        else:
            j = 0
        centres[i] = cand[j]
    return centres


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------


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


def make_phase_amplitude(
    seed: int | np.random.SeedSequence = 0,
    config: PhantomConfig | None = None,
    *,
    size_px: tuple[int, int] | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Phase (float32, rad, in [0, 2π − 1e-5]) and amplitude (float32, > 0, mean ≈ 1) of one phantom.

    ``size_px`` (int for square, or (rows, cols)) overrides ``config.size_px``. Same seed and config give
    bit-identical arrays.
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
    margin_um = 0.4 * mean_d_um  # cells are cut by the borders, as in a real FoV
    area_mm2 = (h * px + 2 * margin_um) * (w * px + 2 * margin_um) * 1e-6
    expected = density * area_mm2
    n_cells = int(rng.poisson(expected))
    if expected >= 1.0:
        n_cells = max(n_cells, 1)
    n_max = int(cfg.max_cell_coverage * area_mm2 * 1e6 / (math.pi * (mean_d_um / 2) ** 2))
    n_cells = min(n_cells, max(n_max, 1 if expected >= 1.0 else 0))

    mitotic = rng.uniform(size=n_cells) < cfg.mitotic_fraction
    d_um = np.clip(mean_d_um * np.exp(rng.normal(0.0, 0.2, n_cells)), *cfg.cell_diameter_um)
    d_mit = rng.uniform(*cfg.mitotic_diameter_um, n_cells)
    d_um = np.where(mitotic, d_mit, d_um)
    peaks = field_peak * rng.uniform(0.75, 1.0, n_cells)
    m = margin_um / px
    centres = _place(rng, n_cells, (-m, h - 1 + m, -m, w - 1 + m), d_um / px)

    for i in range(n_cells):
        cy, cx = centres[i]
        if mitotic[i]:
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

    # ---- background and noise ----------------------------------------------------------------------
    offset = cfg.background_offset_rad + rng.uniform(-1, 1) * cfg.background_offset_jitter_rad
    bg_len = rng.uniform(*cfg.background_length_um) / px
    background = cfg.background_amplitude_rad * _slow_field(rng, (h, w), bg_len)
    noise = rng.standard_normal((h, w), dtype=np.float32)
    sig_n = cfg.noise_correlation_um / px
    if sig_n > 0.05:
        noise = ndimage.gaussian_filter(noise, sig_n, mode="reflect", truncate=3.0)
        noise /= max(float(noise.std()), 1e-12)
    noise *= np.float32(rng.uniform(*cfg.noise_std_rad))
    phase = cells + background
    phase += noise
    phase += np.float32(offset)
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
    amplitude = np.maximum(amplitude, 1e-3).astype(np.float32)
    return phase.astype(np.float32, copy=False), amplitude


def make_field(
    seed: int | np.random.SeedSequence = 0,
    config: PhantomConfig | None = None,
    *,
    size_px: tuple[int, int] | int | None = None,
) -> np.ndarray:
    """complex64 array (rows, cols) = amplitude·exp(i·phase), phase in [0, 2π)."""
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
