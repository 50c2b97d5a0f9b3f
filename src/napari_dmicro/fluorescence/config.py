"""Validated configuration of the fluorescence microscope (pydantic, units in every field name).

The specimen grid is the DMD grid (the DMD is imaged 1:1 onto specimen pixels of ``pixel_size_um``);
patterns are periodic with a period of ``period_bins`` detector bins; the camera sums ``bin_px × bin_px``
specimen pixels. Compression C = bin_px² / n_patterns (specimen pixels per measured number).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ..config import _Config, check_pixel_size_um, check_wavelength_um

#: Pixel size of the default specimen grid: a 20x/0.75 objective on a camera with 6.5 µm pixels.
DEFAULT_FLUO_PIXEL_SIZE_UM = 0.325
#: Mean transmission every pattern set is normalised to (the dose of a random binary pattern).
REFERENCE_DUTY = 0.5


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


class PatternConfig(_Config):
    """T illumination patterns on the DMD, periodic with ``period_bins`` detector bins per axis.

    ``parametrisation``: ``"spatial"`` (logits are the DMD pixels) or ``"fourier"`` (logits are the
    complex spectrum of the pattern, H = real(fftshift(ifft2(W))), the authors' default — only a change
    of coordinates). ``init``: ``"random"`` (Bernoulli ½), ``"hadamard"`` (Sylvester Hadamard rows in
    2-D sequency order) or ``"uniform"`` (all mirrors on: T widefield frames). ``learnable`` makes the
    logits trainable (on by default; the authors' code had pattern learning off by default).
    """

    n_patterns: int = Field(4, ge=1, le=64, description="T: illumination patterns per acquisition")
    period_bins: int = Field(1, ge=1, le=16, description="k: pattern period in detector bins per axis")
    parametrisation: Literal["spatial", "fourier"] = "spatial"
    init: Literal["random", "hadamard", "uniform"] = "random"
    learnable: bool = True


class PSFConfig(_Config):
    """A point-spread function on the specimen grid, always normalised to unit sum.

    ``"none"``: an impulse (no blur). ``"gaussian"``: σ = 0.21·λ/NA (FWHM ≈ 0.49·λ/NA, close to the Airy
    FWHM 0.51·λ/NA), from ``na`` and ``wavelength_um``. ``"file"``: a 2-D .npy or .tif image with odd sides
    and its peak at the centre, sampled at ``file_pixel_size_um`` (never guessed), resampled to the
    specimen grid.
    """

    kind: Literal["none", "gaussian", "file"] = "none"
    na: float | None = Field(None, gt=0, le=1.7, description="numerical aperture")
    wavelength_um: float | None = Field(None, gt=0, description="wavelength, µm")
    path: str | None = None
    file_pixel_size_um: float | None = Field(None, gt=0, description="pixel size of the PSF file, µm")

    @field_validator("wavelength_um")
    @classmethod
    def _wavelength(cls, v):
        return None if v is None else check_wavelength_um(v)

    @model_validator(mode="after")
    def _complete(self):
        if self.kind == "gaussian" and (self.na is None or self.wavelength_um is None):
            raise ValueError("a Gaussian PSF needs na and wavelength_um (e.g. na=0.75, wavelength_um=0.52)")
        if self.kind == "file" and (self.path is None or self.file_pixel_size_um is None):
            raise ValueError("a PSF file needs path and file_pixel_size_um (the pixel size the PSF was "
                             "sampled at, in µm; it is never guessed)")
        return self


class FluorescenceDetectorConfig(_Config):
    """Camera: SUM over ``bin_px × bin_px`` specimen pixels (photons conserved), photons and noise.

    ``photons_per_unit`` K: expected photons from one specimen pixel of density 1 under full illumination
    (transmission 1 at exposure 1) in one frame; ``None`` means noise free. ``background_photons`` γ per
    camera pixel and frame; ``read_noise_e`` σ in electrons.
    """

    bin_px: int = Field(16, ge=1, le=64, description="d: specimen pixels per camera pixel per axis (1: a full-"
                                                    "resolution camera, one camera pixel per DMD pixel)")
    photons_per_unit: float | None = Field(None, gt=0)
    background_photons: float = Field(0.0, ge=0)
    read_noise_e: float = Field(0.0, ge=0)

    @field_validator("bin_px")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if not _is_power_of_two(v):
            raise ValueError(f"bin_px={v} must be a power of 2 (1, 2, 4, …, 64): the camera bins are built "
                             "from 2×2 sums")
        return v

    @model_validator(mode="after")
    def _noise_needs_photons(self):
        if (self.read_noise_e > 0 or self.background_photons > 0) and self.photons_per_unit is None:
            raise ValueError("read_noise_e or background_photons need photons_per_unit (the photon scale "
                             "they are relative to); set photons_per_unit, e.g. 1000, or set them to 0")
        return self

    @property
    def noisy(self) -> bool:
        return self.photons_per_unit is not None


class FluorescenceEncoderConfig(_Config):
    """The fluorescence microscope: patterned excitation, emission optics and a binning camera."""

    kind: Literal["fluorescence"] = "fluorescence"
    #: what the optics are called for people (model cards, ``dmicro models``)
    display_name: ClassVar[str] = "learned structured illumination (fluorescence)"
    pixel_size_um: float = Field(DEFAULT_FLUO_PIXEL_SIZE_UM, gt=0, description="specimen/DMD pixel, µm")
    patterns: PatternConfig = PatternConfig()
    excitation: PSFConfig = PSFConfig()
    emission: PSFConfig = PSFConfig()
    detector: FluorescenceDetectorConfig = FluorescenceDetectorConfig()

    _check_pixel = field_validator("pixel_size_um")(lambda cls, v: check_pixel_size_um(v))

    @model_validator(mode="after")
    def _consistent(self):
        d, t = self.detector.bin_px, self.patterns.n_patterns
        if t > d * d:
            raise ValueError(f"{t} patterns on {d}×{d} bins measure more numbers than there are specimen "
                             f"pixels (compression {d * d / t:g} < 1); use at most {d * d} patterns or a "
                             "larger bin_px")
        if self.patterns.init == "hadamard" and not _is_power_of_two(self.patterns.period_bins):
            raise ValueError(f"Hadamard patterns need a period of a power of 2 pixels; period_bins="
                             f"{self.patterns.period_bins} is not a power of 2 (use 1, 2, 4, …)")
        return self

    @property
    def compression(self) -> float:
        """C = d² / T: specimen pixels per measured number (x4 … x1024 in the shipped models)."""
        return self.detector.bin_px ** 2 / self.patterns.n_patterns

    @property
    def period_px(self) -> int:
        """P = d·k: the pattern period in specimen pixels."""
        return self.detector.bin_px * self.patterns.period_bins

    @property
    def camera_pixel_size_um(self) -> float:
        """Specimen-plane size of one camera pixel, µm."""
        return self.pixel_size_um * self.detector.bin_px
