"""Decoders: camera image (B, 1, h, w) -> phase map (B, 1, h*upscale, w*upscale); for fluorescence,
measurement (B, T, h, w) -> image (B, 1, h*d, w*d) (+ segmentation logits).

Families: SwinIR (:mod:`.swinir`), residual CNNs (:mod:`.conv`, :mod:`.dilated`) and the locality-aware
fluorescence decoder (:mod:`.locality`), configured by :class:`DecoderConfig` and named presets
(:data:`DECODER_PRESETS`, :func:`decoder_config`).
"""

from .conv import ConvDecoder
from .locality import LocalityDecoder, LocalityUpsampler
from .registry import (
    ALLOWED_BINS,
    ALLOWED_UPSCALES,
    DECODER_PRESETS,
    DecoderConfig,
    DecoderPreset,
    build_decoder,
    count_parameters,
    decoder_config,
)
from .swinir import SwinIR

__all__ = [
    "ALLOWED_BINS",
    "ALLOWED_UPSCALES",
    "DECODER_PRESETS",
    "ConvDecoder",
    "DecoderConfig",
    "DecoderPreset",
    "LocalityDecoder",
    "LocalityUpsampler",
    "SwinIR",
    "build_decoder",
    "count_parameters",
    "decoder_config",
]
