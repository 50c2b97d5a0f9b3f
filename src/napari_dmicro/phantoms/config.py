"""Phantom configuration: :class:`PhantomConfig` (frozen pydantic, units in names) and named styles."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM, check_pixel_size_um, check_wavelength_um

TWO_PI = 2.0 * math.pi
#: Upper clipping value of the phase, as in the paper's data: phase ∈ [0, 2π − 1e-5].
PHASE_MAX_RAD = TWO_PI - 1e-5

Range = tuple[float, float]


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

    # --- realistic specimens (the defaults keep the classic HeLa-like phantoms unchanged) ------------
    field_kind_weights: tuple[float, float, float] = Field(
        (1.0, 0.0, 0.0),
        description="probabilities that a field holds (spread cells only, round suspension cells only, a mix)",
    )
    mixed_round_fraction: Range = Field(
        (0.2, 0.8), description="in a mixed field, the fraction of cells that are round (drawn per field)"
    )
    nominal_cover: Range = Field(
        (0.0, 0.0),
        description="if max > 0: summed cell area / field area, drawn per field; sets the cell count "
                    "instead of cell_count_per_mm2 (overlaps make the measured cover smaller)",
    )
    round_diameter_um: Range = Field((9.0, 22.0), description="diameter of round suspension cells, µm")
    round_peak_phase_rad: Range = Field(
        (0.5, 6.0), description="peak phase of a round cell (body + nucleus), rad, per cell"
    )
    round_thick_fraction: float = Field(
        0.0, ge=0, le=1,
        description="probability that a round cell's peak is drawn from round_thick_peak_rad instead",
    )
    round_thick_peak_rad: Range = Field((4.0, 5.8), description="peak phase of thick round cells, rad")
    round_nucleus_diameter_fraction: Range = Field(
        (0.5, 0.8), description="nucleus diameter of a round cell as a fraction of the cell diameter"
    )
    round_nucleus_phase_fraction: Range = Field(
        (0.3, 0.6), description="share of a round cell's peak phase from its nucleus (0 = a plain sphere)"
    )
    phase_ceiling_rad: float = Field(
        0.0, ge=0, lt=TWO_PI,
        description="if > 0: cell phase softly saturates towards this (knee 1.2 rad below), so stacked "
                    "confluent cells stay below 2π; 0 = off",
    )
    clip_phase: bool = Field(
        True, description="clip the phase into [0, 2π − 1e-5] (paper's data); False keeps the true phase"
    )
    cell_amplitude_std: Range = Field(
        (0.0, 0.0), description="relative std of an amplitude texture inside cells, independent of phase"
    )
    cell_amplitude_length_um: float = Field(1.0, gt=0, description="correlation (σ) of that texture, µm")
    edge_ring_defocus_um: Range = Field(
        (0.0, 0.0),
        description="|defocus| whose transport-of-intensity rings are added to the amplitude, µm (sign per field)",
    )
    edge_ring_max: float = Field(0.6, ge=0, lt=1, description="clamp of the relative ring amplitude")
    background_amplitude_std: Range = Field(
        (0.0, 0.0), description="relative std of correlated amplitude noise over the whole field (per field)"
    )
    amplitude_noise_correlation_um: float = Field(
        0.4, ge=0, description="Gaussian σ of that amplitude noise, µm"
    )

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
        "mixed_round_fraction",
        "nominal_cover",
        "round_diameter_um",
        "round_peak_phase_rad",
        "round_thick_peak_rad",
        "round_nucleus_diameter_fraction",
        "round_nucleus_phase_fraction",
        "cell_amplitude_std",
        "edge_ring_defocus_um",
        "background_amplitude_std",
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
        "round_diameter_um",
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
        w = self.field_kind_weights
        if min(w) < 0 or sum(w) <= 0:
            raise ValueError(f"field_kind_weights={w} must be non-negative with a positive sum")
        for name in ("round_peak_phase_rad", "round_thick_peak_rad"):
            if getattr(self, name)[0] <= 0 or getattr(self, name)[1] >= TWO_PI:
                raise ValueError(f"{name}={getattr(self, name)} must lie in (0, 2π)")
        for name in ("mixed_round_fraction", "round_nucleus_diameter_fraction", "round_nucleus_phase_fraction"):
            if getattr(self, name)[1] > 1:
                raise ValueError(f"{name}={getattr(self, name)} must lie in [0, 1]")
        if self.nominal_cover[1] > 3 or max(self.cell_amplitude_std[1], self.background_amplitude_std[1]) >= 0.5:
            raise ValueError("nominal_cover must be ≤ 3 and amplitude stds < 0.5 (relative)")
        return self

    @property
    def has_round_cells(self) -> bool:
        """Whether any field can hold round suspension cells."""
        return self.field_kind_weights[1] > 0 or self.field_kind_weights[2] > 0

    @classmethod
    def style(cls, name: str, **overrides) -> PhantomConfig:
        """A named configuration (:data:`STYLES`), optionally with some fields changed."""
        if name not in STYLES:
            raise ValueError(f"unknown phantom style {name!r}; choose one of {', '.join(STYLES)}")
        return cls(**{**STYLES[name], **overrides})

    @classmethod
    def realistic(cls, **overrides) -> PhantomConfig:
        """The realistic mix (spread, round and mixed fields, sparse to confluent), matched to measured HL60."""
        return cls.style("realistic", **overrides)


#: Measured-like amplitude, background and edge statistics (HL60 fields of ../shared/realdata, resampled to
#: 316.4 nm: background phase std 0.05–0.10 rad, background amplitude std 5–8 %, 11–15 % inside cells,
#: ±40 % rings at the cell edge; see docs/phantoms.md).
_MEASURED_LIKE = {
    "clip_phase": False,
    "phase_ceiling_rad": 5.9,
    "background_amplitude_rad": 0.05,
    "noise_std_rad": (0.04, 0.09),
    "noise_correlation_um": 0.3,
    "background_amplitude_std": (0.04, 0.07),
    "cell_amplitude_std": (0.04, 0.10),
    "edge_ring_defocus_um": (1.0, 2.5),
    "absorption": 0.02,
    "round_thick_fraction": 0.9,
    "round_thick_peak_rad": (4.2, 5.5),
    "round_nucleus_phase_fraction": (0.0, 0.15),
    "round_nucleus_diameter_fraction": (0.65, 0.9),
}

#: Named phantom configurations (``PhantomConfig.style(name)``, ``dmicro phantom --style``).
STYLES: dict[str, dict] = {
    "classic": {},  # the original HeLa-like default: sample_data/ and the shipped models' training data
    "realistic": {**_MEASURED_LIKE, "field_kind_weights": (0.2, 0.5, 0.3), "nominal_cover": (0.03, 1.6)},
    "round": {**_MEASURED_LIKE, "field_kind_weights": (0.0, 1.0, 0.0), "nominal_cover": (0.03, 1.0)},
    "dense": {**_MEASURED_LIKE, "field_kind_weights": (0.5, 0.2, 0.3), "nominal_cover": (1.3, 2.5)},
}


def phase_to_opd_um(phase_rad, wavelength_um: float = DEFAULT_WAVELENGTH_UM):
    """Optical path difference ``Δn · h`` (µm) of a phase (rad): ``φ · λ / 2π``."""
    return np.asarray(phase_rad) * (wavelength_um / TWO_PI)

