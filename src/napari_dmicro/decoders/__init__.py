"""Decoders: camera image (B, 1, h, w) -> phase map (B, 1, h*upscale, w*upscale).

Two families, SwinIR (:mod:`.swinir`) and a residual CNN (:mod:`.conv`), configured by
:class:`DecoderConfig` and named presets (:data:`DECODER_PRESETS`, :func:`decoder_config`).
"""

from .conv import ConvDecoder
from .registry import (
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
    "ALLOWED_UPSCALES",
    "DECODER_PRESETS",
    "ConvDecoder",
    "DecoderConfig",
    "DecoderPreset",
    "SwinIR",
    "build_decoder",
    "count_parameters",
    "decoder_config",
]
