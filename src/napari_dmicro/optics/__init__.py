"""Optical encoders as torch modules: free-space propagation, the 4f learnable Fourier filter, the
PhaseD2NN and the camera. Complex64, batch first ``(B, rows, cols)``, device agnostic, no Qt."""

from .detector import Detector, bin_mean, bin_sum, sample_counts
from .diffractive import PhaseD2NN
from .encoder import Encoder, build_optics
from .fourier_filter import LearnableFourierFilter
from .propagation import AngularSpectrum, angular_spectrum_transfer, propagate

__all__ = [
    "AngularSpectrum",
    "Detector",
    "Encoder",
    "LearnableFourierFilter",
    "PhaseD2NN",
    "angular_spectrum_transfer",
    "bin_mean",
    "bin_sum",
    "build_optics",
    "propagate",
    "sample_counts",
]
