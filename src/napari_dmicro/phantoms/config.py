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

