"""The whole computational microscope: encoder (optics + camera) followed by a neural decoder.

Two modalities share this module, the checkpoints and the training loop:

- quantitative phase (``SystemConfig`` / ``Microscope``): ``Microscope(field) → φ/2π``: the decoder predicts
  the paper's target, phase divided by 2π (unclamped during training; clip to [0, 1] when reporting);
- fluorescence (``FluorescenceSystemConfig`` / ``FluorescenceMicroscope``): learned structured illumination
  (:mod:`napari_dmicro.fluorescence`) and the locality decoder: specimen (B, H, W) → measurement
  (B, T, h, w) → image in [0, 1]-ish (and segmentation logits with a seg head).

The configuration is what checkpoints store; :func:`system_config_from_json` tells the two apart by the
encoder's ``kind`` (only the fluorescence encoder has one), :func:`build_system` builds the model.
"""

from __future__ import annotations

import json
from typing import ClassVar

import torch
from pydantic import model_validator
from torch import nn

from .config import EncoderConfig, _Config
from .decoders import DecoderConfig, build_decoder
from .fluorescence import FluorescenceEncoder, FluorescenceEncoderConfig
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

    #: which microscope this is (quantitative phase)
    modality: ClassVar[str] = "qpm"


class FluorescenceSystemConfig(_Config):
    """Fluorescence encoder + a ``"locality"`` decoder whose input channels are the T patterns, whose
    upscale is the camera bin d and whose period (in bins) is the patterns' period."""

    encoder: FluorescenceEncoderConfig = FluorescenceEncoderConfig()
    decoder: DecoderConfig

    modality: ClassVar[str] = "fluorescence"

    @model_validator(mode="after")
    def _decoder_fits_encoder(self):
        enc, dec = self.encoder, self.decoder
        if dec.family != "locality":
            raise ValueError(f"a fluorescence microscope needs a 'locality' decoder, got family {dec.family!r}; "
                             "use decoder_config('locality', bin_px, in_chans=n_patterns)")
        want = {"in_chans (patterns T)": (dec.in_chans, enc.patterns.n_patterns),
                "upscale (camera bin d)": (dec.upscale, enc.detector.bin_px),
                "period_bins": (dec.period_bins, enc.patterns.period_bins)}
        bad = [f"decoder {name} {have} vs encoder {need}" for name, (have, need) in want.items() if have != need]
        if bad:
            raise ValueError("the decoder does not fit the fluorescence encoder: " + "; ".join(bad)
                             + "; build the decoder for this encoder's patterns and bin")
        return self

    @property
    def compression(self) -> float:
        return self.encoder.compression

    @property
    def optics_kind(self) -> str:
        return self.encoder.kind


def system_config_from_json(text: str) -> SystemConfig | FluorescenceSystemConfig:
    """A system configuration from its JSON: fluorescence when the encoder says ``kind: fluorescence``,
    otherwise quantitative phase (every QPM checkpoint ever written)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the system configuration is not valid JSON ({exc})") from None
    encoder = data.get("encoder") if isinstance(data, dict) else None
    if isinstance(encoder, dict) and encoder.get("kind") == "fluorescence":
        return FluorescenceSystemConfig.model_validate(data)
    return SystemConfig.model_validate(data)


def build_system(config, *, init: str = "random", generator: torch.Generator | None = None):
    """The model a system configuration describes (``init``: the QPM optics' start; the fluorescence
    patterns start as their config says)."""
    if isinstance(config, FluorescenceSystemConfig):
        return FluorescenceMicroscope(config, generator=generator)
    return Microscope(config, init=init, generator=generator)


class _MeasurementNormalization(nn.Module):
    """The decoder sees (measurement − offset) / scale; fitted to the training measurements when a fresh
    decoder starts training. Identity for checkpoints written before these buffers existed."""

    #: buffers a checkpoint may lack (older files); they keep their identity defaults
    OPTIONAL_BUFFERS = ("meas_offset", "meas_scale")

    def _register_normalization(self) -> None:
        self.register_buffer("meas_offset", torch.zeros(()))
        self.register_buffer("meas_scale", torch.ones(()))

    @torch.no_grad()
    def fit_measurement_normalization(self, measurements: torch.Tensor) -> None:
        """Set the decoder's input offset/scale to the mean/std of typical camera images."""
        values = measurements.detach().float()
        self.meas_offset.fill_(float(values.mean()))
        self.meas_scale.fill_(max(float(values.std()), 1e-8))

    def normalized(self, measurement: torch.Tensor) -> torch.Tensor:
        return (measurement - self.meas_offset) / self.meas_scale

    def optics_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())


class Microscope(_MeasurementNormalization):
    """Encoder + decoder. ``measure`` gives the camera image, ``decode`` the φ/2π map."""

    modality = "qpm"

    def __init__(self, config: SystemConfig, *, init: str = "random", generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder, init=init, generator=generator)
        self.decoder = build_decoder(config.decoder)
        # a PhaseD2NN camera is dim: intensities of a few 10⁻² with variations of 10⁻³
        self._register_normalization()

    def measure(self, field: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None, **optics_kwargs) -> torch.Tensor:
        return self.encoder(field, noise=noise, generator=generator, **optics_kwargs)

    def decode(self, measurement: torch.Tensor) -> torch.Tensor:
        """Camera images (B, h, w) → φ/2π predictions (B, h·b, w·b)."""
        squeeze = measurement.ndim == 2
        x = measurement[None] if squeeze else measurement
        out = self.decoder(self.normalized(x)[:, None])[:, 0]
        return out[0] if squeeze else out

    def forward(self, field: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.measure(field, noise=noise, generator=generator))


class FluorescenceMicroscope(_MeasurementNormalization):
    """Illumination patterns + camera (:class:`FluorescenceEncoder`) and the locality decoder.

    ``measure(x)``: specimen (B, H, W) → measurement (B, T, H/d, W/d) (binary patterns in eval mode, soft in
    training mode unless ``binary`` is given); ``decode(y)`` → image (B, H, W); ``decode_all(y)`` → (image,
    segmentation logits (B, 2, H, W) or None without a segmentation head)."""

    modality = "fluorescence"

    def __init__(self, config: FluorescenceSystemConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.encoder = FluorescenceEncoder(config.encoder, generator=generator)
        self.decoder = build_decoder(config.decoder)
        self._register_normalization()

    @property
    def has_seg_head(self) -> bool:
        return bool(self.config.decoder.seg_head)

    @torch.no_grad()
    def init_decoder_from_patterns(self, binary: bool = True) -> None:
        """Start the decoder's upsampler from the least-squares inverse of the effective patterns (after
        the dose factor and the excitation PSF), in the current measurement normalisation."""
        self.decoder.init_from_patterns(self.encoder.excitation(binary).detach().cpu(),
                                        meas_offset=float(self.meas_offset), meas_scale=float(self.meas_scale))

    def measure(self, x: torch.Tensor, noise: NoiseMode = "none", generator: torch.Generator | None = None,
                binary: bool | None = None) -> torch.Tensor:
        return self.encoder(x, noise=noise, generator=generator, binary=binary)

    def decode_all(self, measurement: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Measurement (B, T, h, w) or (T, h, w) → image (B, H, W) and seg logits (B, 2, H, W) or None."""
        squeeze = measurement.ndim == 3
        y = measurement[None] if squeeze else measurement
        if y.ndim != 4 or y.shape[1] != self.encoder.n_patterns:
            raise ValueError(f"expected a measurement (B, {self.encoder.n_patterns}, h, w) of this model's "
                             f"{self.encoder.n_patterns} patterns; got shape {tuple(measurement.shape)}")
        out = self.decoder(self.normalized(y))
        image, logits = out[:, 0], (out[:, 1:] if self.has_seg_head else None)
        if squeeze:
            return image[0], (None if logits is None else logits[0])
        return image, logits

    def decode(self, measurement: torch.Tensor) -> torch.Tensor:
        return self.decode_all(measurement)[0]

    def forward(self, x: torch.Tensor, noise: NoiseMode = "none",
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.measure(x, noise=noise, generator=generator))
