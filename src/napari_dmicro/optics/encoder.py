"""The physical microscope up to the camera: optics (LFF or PhaseD2NN) followed by the detector."""

from __future__ import annotations

import torch
from torch import nn

from ..config import DiffractiveConfig, EncoderConfig, FourierFilterConfig
from .detector import Detector, NoiseMode
from .grids import extend_field
from .diffractive import PhaseD2NN
from .fourier_filter import LearnableFourierFilter


def build_optics(config: FourierFilterConfig | DiffractiveConfig, *, init: str = "random",
                 generator: torch.Generator | None = None) -> nn.Module:
    """Instantiate the optical module a config describes."""
    if isinstance(config, FourierFilterConfig):
        return LearnableFourierFilter(config, init=init, generator=generator)
    if isinstance(config, DiffractiveConfig):
        return PhaseD2NN(config, init="zeros" if init == "all_pass" else init, generator=generator)
    raise TypeError(f"unknown optics config {type(config).__name__}")


class Encoder(nn.Module):
    """Optics + detector: complex field (B, H, W) → camera measurement (B, H/b, W/b), float32.

    ``optical_intensity`` gives the full-resolution detector-plane intensity used by training stage 1.
    """

    def __init__(self, config: EncoderConfig | None = None, *, init: str = "random",
                 generator: torch.Generator | None = None):
        super().__init__()
        self.config = config or EncoderConfig()
        self.optics = build_optics(self.config.optics, init=init, generator=generator)
        self.detector = Detector(self.config.detector)

    @property
    def pixel_size_um(self) -> float:
        return self.config.optics.grid.pixel_size_um

    @property
    def camera_pixel_size_um(self) -> float:
        """Object-plane size of one camera pixel (object pixel × binning), µm."""
        return self.pixel_size_um * self.config.detector.binning

    def context_px(self) -> int:
        """Object pixels beyond a region that influence it (the filter's PSF half-width; 0 for apertures)."""
        return self.optics.context_px()

    def tile_px(self) -> int | None:
        """Side (object pixels) of the aperture when the field of view is acquired tile by tile (one
        exposure per tile, decoded tile by tile); None when the whole field of view is one image."""
        return self.optics.tile_px()

    def detector_field(self, field: torch.Tensor, **optics_kwargs) -> torch.Tensor:
        """Optics applied to exactly the given field (nothing assumed beyond its edges but zeros)."""
        return self.optics(field, **optics_kwargs)

    def full_field_detector(self, field: torch.Tensor, **optics_kwargs) -> torch.Tensor:
        """Detector-plane field of a whole field of view, the specimen extended per ``outside_field``.

        This is the one rule every full-field simulation uses (simulate, evaluation, training data):
        a region cut from a field with ``context_px()`` of surrounding field, extended by the same rule
        at the field's edges, gives exactly the same output over the region.
        """
        ctx = self.context_px()
        if ctx == 0:
            return self.optics(field, **optics_kwargs)
        out = self.optics(extend_field(field, ctx, self.config.outside_field), **optics_kwargs)
        return out[..., ctx:-ctx, ctx:-ctx]

    def optical_intensity(self, field: torch.Tensor, **optics_kwargs) -> torch.Tensor:
        """Full-resolution |E|² at the detector plane (before binning)."""
        return Detector.intensity(self.detector_field(field, **optics_kwargs))

    def forward(self, field: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None, **optics_kwargs) -> torch.Tensor:
        return self.detector(self.detector_field(field, **optics_kwargs), noise=noise, generator=generator)
