"""The physical microscope up to the camera: optics (LFF or PhaseD2NN) followed by the detector."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import DiffractiveConfig, EncoderConfig, FourierFilterConfig
from .detector import Detector, NoiseMode
from .diffractive import PhaseD2NN
from .fourier_filter import LearnableFourierFilter

if TYPE_CHECKING:
    from .acquisition import Acquisition


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

    The acquisition itself (optics → |E|² → binning → noise, whole fields, crops) is
    :class:`~napari_dmicro.optics.acquisition.Acquisition`.
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

    def layer_count(self) -> int | None:
        """Number of diffractive layers a progressive schedule can train one by one (None: not layered)."""
        return self.optics.layer_count()

    def detector_field(self, field: torch.Tensor, **optics_kwargs) -> torch.Tensor:
        """Optics applied to exactly the given field (nothing assumed beyond its edges but zeros)."""
        return self.optics(field, **optics_kwargs)

    def acquisition(self) -> Acquisition:
        """The whole acquisition (optics → |E|² → binning → photons and noise) of this encoder."""
        from .acquisition import Acquisition

        return Acquisition(self)

    def forward(self, field: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None, **optics_kwargs) -> torch.Tensor:
        """Camera measurement of exactly the given field(s), each its own exposure (see Acquisition)."""
        return self.acquisition()(field, noise, generator, **optics_kwargs)
