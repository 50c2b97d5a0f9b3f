"""Validated configuration of the optical encoder (pydantic, units in every field name).

These models are the single source of truth for the physics: the simulators read them, the CLI and
widgets build them, and checkpoints store them as JSON. Lengths are in micrometres (``_um``).
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The paper's design grid: lambda/2 sampling of a HeNe laser (632.8 nm -> 316.4 nm pixels).
DEFAULT_WAVELENGTH_UM = 0.6328
DEFAULT_PIXEL_SIZE_UM = 0.3164
#: Compression ratios (pixel-count ratios) the detector supports: powers of 4 from x4 to x1024.
ALLOWED_COMPRESSIONS = (4, 16, 64, 256, 1024)


def check_wavelength_um(value: float) -> float:
    """Refuse wavelengths that are clearly not in micrometres (metres or nanometres)."""
    if not 0.1 <= value <= 20.0:
        raise ValueError(
            f"wavelength_um={value} is outside 0.1–20 µm; give the wavelength in micrometres "
            "(e.g. 0.6328 for a HeNe laser), not metres or nanometres"
        )
    return value


def check_pixel_size_um(value: float) -> float:
    """Refuse pixel sizes that are clearly not in micrometres."""
    if not 1e-3 <= value <= 1e3:
        raise ValueError(
            f"pixel_size_um={value} is implausible; give the pixel size in micrometres (e.g. 0.3164)"
        )
    return value


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str):
        return cls.model_validate_json(text)


class GridConfig(_Config):
    """Sampling of the object plane: pixel pitch and illumination wavelength."""

    pixel_size_um: float = Field(DEFAULT_PIXEL_SIZE_UM, gt=0, description="object-plane pixel pitch, µm")
    wavelength_um: float = Field(DEFAULT_WAVELENGTH_UM, gt=0, description="vacuum wavelength, µm")

    _check_wavelength = field_validator("wavelength_um")(lambda cls, v: check_wavelength_um(v))
    _check_pixel = field_validator("pixel_size_um")(lambda cls, v: check_pixel_size_um(v))


class FourierFilterConfig(_Config):
    """Learnable Fourier filter (LFF) in a 4f system: t = sigmoid(a)·exp(i·p) inside a circular pupil.

    ``pupil_na`` sets the pupil radius NA/λ in spatial frequency; NA 1 is the full propagating band,
    which on the λ/2 grid is the circle inscribed in the frequency grid; ``None`` means no pupil (the
    whole sampled band passes, including frequencies that would be evanescent). ``filter_size_px`` is the
    side of the learnable frequency grid, i.e. the support of the filter's point-spread function.
    ``convolution`` selects ``"linear"`` (zero padded, the physics of a whole field of view) or
    ``"circular"`` (the authors' periodic 256² model, kept for comparison).
    """

    kind: Literal["lff"] = "lff"
    #: what the optics are called for people (model cards, ``dmicro models``)
    display_name: ClassVar[str] = "learnable Fourier filter"
    grid: GridConfig = GridConfig()
    filter_size_px: int = Field(256, ge=8, le=4096)
    pupil_na: float | None = Field(1.0, gt=0, le=1.0)
    mode: Literal["amplitude_phase", "phase"] = "amplitude_phase"
    convolution: Literal["linear", "circular"] = "linear"

    @field_validator("filter_size_px")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"filter_size_px={v} must be even (the DC bin sits at size/2)")
        return v


class DiffractiveConfig(_Config):
    """PhaseD2NN: phase-only diffractive layers separated by free space (angular spectrum).

    Geometry: sample -> ``input_distance_um`` -> layer 1 -> ``layer_spacing_um`` -> ... -> layer n ->
    ``output_distance_um`` -> detector. Every hop is zero padded by ``pad_factor`` and cropped back to
    the ``n_neurons`` aperture (energy leaving the layer is lost, as in a physical aperture).
    """

    kind: Literal["d2nn"] = "d2nn"
    #: what the optics are called for people (model cards, ``dmicro models``)
    display_name: ClassVar[str] = "PhaseD2NN"
    grid: GridConfig = GridConfig()
    n_layers: int = Field(5, ge=1, le=32)
    n_neurons: int = Field(256, ge=8, le=4096)
    layer_spacing_um: float = Field(3.373, gt=0)
    input_distance_um: float = Field(3.373, gt=0)
    output_distance_um: float = Field(5.904, gt=0)
    pad_factor: int = Field(4, ge=1, le=8)
    band_limit: bool = True
    mode: Literal["phase", "amplitude_phase"] = "phase"


OpticsConfig = Annotated[FourierFilterConfig | DiffractiveConfig, Field(discriminator="kind")]


class DetectorConfig(_Config):
    """Camera: intensity |E|², demagnification by binning, photon scaling and noise.

    ``compression`` is the pixel-count ratio between object grid and camera (x4 … x1024); the binning
    factor per axis is its square root. ``max_photons`` is the expected photon count of the reference
    (``photon_reference``: ``"image_max"`` = the brightest camera pixel of one acquisition — the whole
    field of view, or one aperture tile — which crops of it share; ``"unit_intensity"`` = intensity 1);
    ``None`` means noise free. ``read_noise_e`` is the Gaussian
    read noise standard deviation in photo-electrons.
    """

    compression: int = 64
    max_photons: float | None = Field(None, gt=0)
    read_noise_e: float = Field(0.0, ge=0)
    photon_reference: Literal["image_max", "unit_intensity"] = "image_max"
    flat_field: bool = Field(False, description="divide the camera image by the flat-field (empty-field) "
                             "image of the same optics and illumination (docs/physics.md)")

    @field_validator("compression")
    @classmethod
    def _power_of_four(cls, v: int) -> int:
        if v not in ALLOWED_COMPRESSIONS:
            raise ValueError(
                f"compression={v} is not supported; choose one of {ALLOWED_COMPRESSIONS} "
                "(a power of 4, so that each camera pixel bins a square of object pixels)"
            )
        return v

    @model_validator(mode="after")
    def _noise_needs_photons(self):
        if self.read_noise_e > 0 and self.max_photons is None:
            raise ValueError(
                "read_noise_e > 0 needs max_photons (the photon scale the read noise is relative to); "
                "set max_photons, e.g. 10000, or set read_noise_e to 0"
            )
        return self

    @property
    def binning(self) -> int:
        """Camera pixels bin ``binning × binning`` object pixels."""
        return int(round(math.sqrt(self.compression)))

    @property
    def noisy(self) -> bool:
        return self.max_photons is not None


class EncoderConfig(_Config):
    """Optics followed by a detector: the whole physical microscope up to the camera.

    ``outside_field`` says how the specimen continues beyond the edges of a given field when the
    optics spread light across them (learnable Fourier filter): ``"reflect"`` mirrors the field (the
    illumination and the specimen extend beyond the camera's field of view, the usual case) and
    ``"dark"`` puts a field stop at the edge (no light from outside).
    """

    optics: OpticsConfig = FourierFilterConfig()
    outside_field: Literal["reflect", "dark"] = "reflect"
    detector: DetectorConfig = DetectorConfig()
