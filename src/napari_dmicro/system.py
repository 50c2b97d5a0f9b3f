"""The whole computational microscope: encoder (optics + camera) followed by a neural decoder.

``Microscope(field) → φ/2π``: the decoder predicts the paper's target, phase divided by 2π (unclamped
during training; clip to [0, 1] when reporting). ``SystemConfig`` is what checkpoints store.
"""

from __future__ import annotations

import torch
from pydantic import model_validator
from torch import nn

from .config import EncoderConfig, _Config
from .decoders import DecoderConfig, build_decoder
from .optics import Encoder
from .optics.detector import NoiseMode


class SystemConfig(_Config):
    """Encoder and decoder configurations; the decoder's upscale must undo the camera's binning."""

    encoder: EncoderConfig = EncoderConfig()
    decoder: DecoderConfig

    @model_validator(mode="after")
    def _upscale_matches_binning(self):
        binning = self.encoder.detector.binning
        if self.decoder.upscale != binning:
            raise ValueError(
                f"decoder upscale x{self.decoder.upscale} does not match the camera binning "
                f"{binning}×{binning} (compression x{self.encoder.detector.compression}); "
                f"use a decoder with upscale {binning}"
            )
        return self

    @property
    def compression(self) -> int:
        return self.encoder.detector.compression

    @property
    def optics_kind(self) -> str:
        return self.encoder.optics.kind


class Microscope(nn.Module):
    """Encoder + decoder. ``measure`` gives the camera image, ``decode`` the φ/2π map."""

    def __init__(self, config: SystemConfig, *, init: str = "random", generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder, init=init, generator=generator)
        self.decoder = build_decoder(config.decoder)
        # the decoder sees (measurement − offset) / scale; fitted to the training measurements when a
        # fresh decoder starts training (a PhaseD2NN camera is dim: intensities of a few 10⁻² with
        # variations of 10⁻³). Identity for checkpoints written before these buffers existed.
        self.register_buffer("meas_offset", torch.zeros(()))
        self.register_buffer("meas_scale", torch.ones(()))

    #: buffers a checkpoint may lack (older files); they keep their identity defaults
    OPTIONAL_BUFFERS = ("meas_offset", "meas_scale")

    @torch.no_grad()
    def fit_measurement_normalization(self, measurements: torch.Tensor) -> None:
        """Set the decoder's input offset/scale to the mean/std of typical camera images."""
        values = measurements.detach().float()
        self.meas_offset.fill_(float(values.mean()))
        self.meas_scale.fill_(max(float(values.std()), 1e-8))

    def measure(self, field: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None, **optics_kwargs) -> torch.Tensor:
        return self.encoder(field, noise=noise, generator=generator, **optics_kwargs)

    def decode(self, measurement: torch.Tensor) -> torch.Tensor:
        """Camera images (B, h, w) → φ/2π predictions (B, h·b, w·b)."""
        squeeze = measurement.ndim == 2
        x = measurement[None] if squeeze else measurement
        x = (x - self.meas_offset) / self.meas_scale
        out = self.decoder(x[:, None])[:, 0]
        return out[0] if squeeze else out

    def forward(self, field: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.measure(field, noise=noise, generator=generator))

    def optics_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())
