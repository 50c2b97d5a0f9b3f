"""The fluorescence modality's microscope: learnable DMD illumination patterns, excitation and emission
PSFs, and a binning camera with Poisson + read noise (docs/fluorescence.md). Torch, no Qt."""

from .config import (
    DEFAULT_FLUO_PIXEL_SIZE_UM,
    REFERENCE_DUTY,
    FluorescenceDetectorConfig,
    FluorescenceEncoderConfig,
    PatternConfig,
    PSFConfig,
)
from .encoder import FluorescenceEncoder
from .patterns import IlluminationPatterns, SharpnessSchedule, hadamard_patterns
from .psf import gaussian_psf, normalise_psf, read_psf_file

__all__ = [
    "DEFAULT_FLUO_PIXEL_SIZE_UM",
    "REFERENCE_DUTY",
    "FluorescenceDetectorConfig",
    "FluorescenceEncoder",
    "FluorescenceEncoderConfig",
    "IlluminationPatterns",
    "PSFConfig",
    "PatternConfig",
    "SharpnessSchedule",
    "gaussian_psf",
    "hadamard_patterns",
    "normalise_psf",
    "read_psf_file",
]
