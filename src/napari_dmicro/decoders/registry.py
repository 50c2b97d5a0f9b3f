"""Decoder configurations (pydantic, JSON-serialisable for checkpoints) and the preset registry.

``DecoderConfig`` is one flat model for both families; each family reads only its own fields
(the others keep their defaults and are ignored):

* ``family="swinir"``: ``embed_dim, depths, num_heads, window_size, mlp_ratio, resi_connection,
  upsampler, num_feat, drop_path_rate, img_size``;
* ``family="conv"``: ``width, n_blocks, res_scale, upsampler, num_feat``;
* ``family="dilated"``: ``width, dilations, res_scale, refine_width`` (always one PixelShuffle; its receptive
  field on the camera grid is :meth:`DecoderConfig.receptive_field_camera_px`);
* ``family="locality"`` (fluorescence, :mod:`.locality`): ``in_chans`` = the number of illumination patterns T,
  ``upscale`` = the detector bin d (2..64), ``period_bins`` (pattern period in bins), ``width``, ``dilations``
  (one residual block per entry: the depth), ``refine_unshuffle``, ``seg_head``. Its compression is d²/T.

``upscale`` is the side ratio object/camera, i.e. sqrt(compression) for the QPM families: x64 -> 8, x256 -> 16.
``img_size`` (every family) is also the camera window of the blended whole-field inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from . import limits as L
from .conv import ConvDecoder
from .dilated import DilatedConvDecoder, receptive_field_camera_px
from .locality import LocalityDecoder, locality_receptive_field_camera_px
from .swinir import SwinIR

__all__ = [
    "DecoderConfig",
    "DecoderPreset",
    "DECODER_PRESETS",
    "ALLOWED_UPSCALES",
    "ALLOWED_BINS",
    "build_decoder",
    "decoder_config",
    "count_parameters",
    "OBJECT_SIDE_PX",
]

#: Side ratios (object side / camera side) the decoders support: sqrt of compressions x4..x1024.
ALLOWED_UPSCALES = (2, 4, 8, 16, 32)
#: Detector bins d of the fluorescence (``"locality"``) decoders: compression d²/T up to x1024 with T = 4;
#: d = 1 is the full-resolution camera (the same network fed the uncompressed image, for comparisons).
ALLOWED_BINS = (1, 2, 4, 8, 16, 32, 64)
#: Object-plane side the presets are designed for; the nominal camera side is this / upscale.
OBJECT_SIDE_PX = 256


class DecoderConfig(BaseModel):
    """Validated configuration of a decoder (see the module docstring for which fields apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    family: Literal["swinir", "conv", "dilated", "locality"]
    upscale: int = Field(description="output side / input side, a power of 2 in 2..32 (2..64 for 'locality')")
    in_chans: int = Field(1, ge=1, le=L.MAX_CHANNELS, description="input channels ('locality': patterns T)")
    out_chans: int = Field(1, ge=1, le=L.MAX_CHANNELS)
    upsampler: Literal["pixelshuffle", "pixelshuffledirect"] = Field(
        None,  # resolved per family before validation, see _family_defaults
        description="'pixelshuffle': progressive x2 stages (paper); "
        "'pixelshuffledirect': one conv + a single PixelShuffle(upscale). Default: "
        "'pixelshuffle' for swinir, 'pixelshuffledirect' for conv",
    )
    num_feat: int = Field(64, ge=1, le=L.MAX_NUM_FEAT, description="channels of the progressive upsampler")

    # --- swinir ---
    img_size: int = Field(32, ge=1, le=L.MAX_IMG_SIZE_PX, description="nominal camera side (recorded; any size works)")
    embed_dim: int = Field(180, ge=1, le=L.MAX_EMBED_DIM)
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    window_size: int = Field(8, ge=1, le=L.MAX_WINDOW_PX)
    mlp_ratio: float = Field(2.0, gt=0, le=L.MAX_MLP_RATIO)
    resi_connection: Literal["1conv", "3conv"] = "1conv"
    drop_path_rate: float = Field(0.1, ge=0, lt=1)

    # --- conv ---
    width: int = Field(64, ge=1, le=L.MAX_WIDTH)
    n_blocks: int = Field(8, ge=0, le=L.MAX_BLOCKS)
    res_scale: float = Field(1.0, gt=0)

    # --- dilated ---
    dilations: tuple[int, ...] = Field((1, 2, 4, 4, 2, 1), description="dilation of each residual block")
    refine_width: int = Field(16, ge=1, le=L.MAX_WIDTH, description="channels of the full-resolution refinement")

    # --- locality ---
    period_bins: int = Field(1, ge=1, le=L.MAX_PERIOD_BINS,
                             description="pattern period in detector bins (k² upsampling weight sets)")
    refine_unshuffle: int = Field(8, ge=1, le=64, description="the refinement runs at 1/refine_unshuffle of "
                                  "the output side (a power of 2, whatever the bin)")
    seg_head: bool = Field(False, description="append foreground and boundary logit channels")

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("upsampler") is None:
            data = dict(data)
            data["upsampler"] = (
                "pixelshuffledirect" if data.get("family") in ("conv", "dilated", "locality") else "pixelshuffle"
            )
        return data

    @field_validator("upscale")
    @classmethod
    def _power_of_two(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("family") == "locality":
            if v not in ALLOWED_BINS:
                raise ValueError(f"upscale={v} is the detector bin d of a 'locality' decoder: a power of 2 in "
                                 f"{ALLOWED_BINS}")
            return v
        if v not in ALLOWED_UPSCALES:
            raise ValueError(
                f"upscale={v} must be a power of 2 in {ALLOWED_UPSCALES} (the side ratio, i.e. "
                "sqrt of the compression: x64 -> 8, x256 -> 16)"
            )
        return v

    @field_validator("depths")
    @classmethod
    def _positive_depths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("depths must list at least one residual Swin transformer block")
        if any(d < 1 for d in v):
            raise ValueError(f"depths={v}: every depth must be >= 1")
        if len(v) > L.MAX_SWIN_GROUPS or max(v) > L.MAX_GROUP_DEPTH:
            raise ValueError(f"depths={v}: at most {L.MAX_SWIN_GROUPS} groups of at most "
                             f"{L.MAX_GROUP_DEPTH} Swin layers each")
        return v

    @field_validator("num_heads")
    @classmethod
    def _positive_heads(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 for h in v) or any(h > L.MAX_HEADS for h in v):
            raise ValueError(f"num_heads={v}: every head count must lie in 1..{L.MAX_HEADS}")
        return v

    @field_validator("dilations")
    @classmethod
    def _dilations(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) > L.MAX_BLOCKS or any(d < 1 or d > L.MAX_DILATION for d in v):
            raise ValueError(f"dilations={v}: at most {L.MAX_BLOCKS} blocks, each dilation in 1..{L.MAX_DILATION}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.family == "swinir":
            if len(self.depths) != len(self.num_heads):
                raise ValueError(
                    f"depths {self.depths} and num_heads {self.num_heads} must have the same "
                    "length (one head count per residual Swin transformer block)"
                )
            bad = [h for h in self.num_heads if self.embed_dim % h]
            if bad:
                raise ValueError(
                    f"embed_dim={self.embed_dim} is not divisible by num_heads {sorted(set(bad))}"
                )
            if self.window_size < 2:
                raise ValueError(
                    f"window_size={self.window_size} must be >= 2 (shifted windows move by "
                    "window_size // 2)"
                )
            if self.resi_connection == "3conv" and self.embed_dim < 4:
                raise ValueError("resi_connection='3conv' needs embed_dim >= 4")
        if self.family == "locality":
            if self.in_chans > self.upscale ** 2:
                raise ValueError(f"{self.in_chans} patterns on a {self.upscale}×{self.upscale} bin is a "
                                 f"compression d²/T = {self.upscale ** 2 / self.in_chans:g} < 1; use at most "
                                 f"{self.upscale ** 2} patterns or a larger bin")
            if self.refine_unshuffle & (self.refine_unshuffle - 1):
                raise ValueError(f"refine_unshuffle={self.refine_unshuffle} must be a power of 2")
        n = self.parameter_count()
        if n > L.MAX_DECODER_PARAMETERS:
            raise ValueError(f"this {self.family} decoder would have {n:,} parameters, more than the limit of "
                             f"{L.MAX_DECODER_PARAMETERS:,}; choose a smaller width/embed_dim or fewer layers")
        return self

    def parameter_count(self) -> int:
        """Number of parameters of the decoder this configuration builds (arithmetic; nothing is built)."""
        return L.decoder_parameter_count(self)

    def receptive_field_camera_px(self) -> int | None:
        """Side of the decoder's receptive field on the camera grid (camera pixels); None for SwinIR
        (shifted windows: the whole image, in principle)."""
        if self.family == "dilated":
            return receptive_field_camera_px(self.dilations)
        if self.family == "locality":
            return locality_receptive_field_camera_px(self.upscale, self.dilations, self.refine_unshuffle)
        if self.family == "conv":
            return receptive_field_camera_px((1,) * self.n_blocks) if self.upsampler == "pixelshuffledirect" else None
        return None

    @property
    def compression(self) -> int | float:
        """Pixel-count compression ratio: upscale² (QPM), d²/T for 'locality' (an int when T divides d²)."""
        if self.family == "locality":
            ratio = self.upscale ** 2 / self.in_chans
            return int(ratio) if ratio == int(ratio) else ratio
        return self.upscale**2

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> DecoderConfig:
        return cls.model_validate_json(text)


@dataclass(frozen=True)
class DecoderPreset:
    """A named decoder configuration, independent of the upscale."""

    description: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def config(self, upscale: int, **overrides: Any) -> DecoderConfig:
        params: dict[str, Any] = dict(self.fields)
        if params.get("family") == "swinir":
            params.setdefault("img_size", max(OBJECT_SIDE_PX // upscale, 1))
        params.update(overrides)
        params["upscale"] = upscale
        return DecoderConfig(**params)


DECODER_PRESETS: dict[str, DecoderPreset] = {
    "swinir-paper": DecoderPreset(
        "SwinIR as in the paper: embed 180, 6x6 Swin layers, 6 heads, window 8, mlp 2, 1conv, "
        "progressive pixelshuffle upsampler (slow to train on a CPU)",
        dict(
            family="swinir",
            embed_dim=180,
            depths=(6, 6, 6, 6, 6, 6),
            num_heads=(6, 6, 6, 6, 6, 6),
            window_size=8,
            mlp_ratio=2.0,
            resi_connection="1conv",
            upsampler="pixelshuffle",
            num_feat=64,
            drop_path_rate=0.1,
        ),
    ),
    "swinir-light": DecoderPreset(
        "lightweight SwinIR body (embed 60, 4x6 layers, 6 heads, window 8) with a single "
        "PixelShuffle(upscale)",
        dict(
            family="swinir",
            embed_dim=60,
            depths=(6, 6, 6, 6),
            num_heads=(6, 6, 6, 6),
            window_size=8,
            mlp_ratio=2.0,
            resi_connection="1conv",
            upsampler="pixelshuffledirect",
            drop_path_rate=0.1,
        ),
    ),
    "swinir-fast": DecoderPreset(
        "small SwinIR for CPU training: embed 60, 2x2 layers, 6 heads, window 8, single "
        "PixelShuffle(upscale)",
        dict(
            family="swinir",
            embed_dim=60,
            depths=(2, 2),
            num_heads=(6, 6),
            window_size=8,
            mlp_ratio=2.0,
            resi_connection="1conv",
            upsampler="pixelshuffledirect",
            drop_path_rate=0.0,
        ),
    ),
    "swinir-tiny": DecoderPreset(
        "minimal SwinIR for tests: embed 16, 2x2 layers, 2 heads, window 4",
        dict(
            family="swinir",
            embed_dim=16,
            depths=(2, 2),
            num_heads=(2, 2),
            window_size=4,
            mlp_ratio=2.0,
            resi_connection="1conv",
            upsampler="pixelshuffledirect",
            drop_path_rate=0.0,
        ),
    ),
    "conv": DecoderPreset(
        "residual CNN: width 64, 8 residual blocks, single PixelShuffle(upscale)",
        dict(family="conv", width=64, n_blocks=8, upsampler="pixelshuffledirect"),
    ),
    "conv-dilated": DecoderPreset(
        "dilated residual CNN on the camera grid (width 64, dilations 1,2,4,4,2,1: a receptive field of 63 "
        "camera pixels, 159 µm at x64 with 2.53 µm pixels), single PixelShuffle(upscale), a small "
        "full-resolution refinement; sees whole cells to unfold thick ones",
        # img_size: the window of the blended whole-field inference, 2x the receptive field's reach
        dict(family="dilated", width=64, dilations=(1, 2, 4, 4, 2, 1), refine_width=16, img_size=128),
    ),
    "conv-dilated-tiny": DecoderPreset(
        "minimal dilated residual CNN for tests: width 8, dilations 1,2,4",
        dict(family="dilated", width=8, dilations=(1, 2, 4), refine_width=4),
    ),
    "locality": DecoderPreset(
        "fluorescence: locality-aware upsampling of T = 4 patterns (one weight set per position in a "
        "one-bin period; x64 at bin 16, x256 at 32, x1024 at 64) + a residual refinement at 1/8 of the output "
        "side (width 48, dilations 1,2,4,8,4,2); a 1024² image in well under 1 s on 2 CPU cores",
        dict(family="locality", in_chans=4, period_bins=1, width=48, dilations=(1, 2, 4, 8, 4, 2),
             refine_unshuffle=8, img_size=64),
    ),
    "locality-seg": DecoderPreset(
        "the 'locality' decoder with the segmentation head (foreground and boundary logits after the image)",
        dict(family="locality", in_chans=4, period_bins=1, width=48, dilations=(1, 2, 4, 8, 4, 2),
             refine_unshuffle=8, img_size=64, seg_head=True),
    ),
    "locality-tiny": DecoderPreset(
        "minimal locality decoder for tests: T = 4, width 8, dilations 1,2",
        dict(family="locality", in_chans=4, width=8, dilations=(1, 2), refine_unshuffle=4),
    ),
    "conv-tiny": DecoderPreset(
        "minimal residual CNN for tests: width 16, 2 residual blocks",
        dict(family="conv", width=16, n_blocks=2, upsampler="pixelshuffledirect"),
    ),
}


def decoder_config(name: str, upscale: int, **overrides: Any) -> DecoderConfig:
    """The preset ``name`` at the given ``upscale``; keyword ``overrides`` replace preset fields."""
    try:
        preset = DECODER_PRESETS[name]
    except KeyError:
        raise KeyError(
            f"unknown decoder {name!r}; known decoders: {', '.join(sorted(DECODER_PRESETS))}"
        ) from None
    return preset.config(upscale, **overrides)


def build_decoder(config: DecoderConfig) -> torch.nn.Module:
    """Instantiate the decoder described by ``config`` (float32, on the CPU; ``.to()`` it after).

    The returned module carries the config as ``module.config``.
    """
    if not isinstance(config, DecoderConfig):
        raise TypeError(f"build_decoder expects a DecoderConfig, got {type(config).__name__}")
    if config.family == "swinir":
        module: torch.nn.Module = SwinIR(
            upscale=config.upscale,
            in_chans=config.in_chans,
            out_chans=config.out_chans,
            img_size=config.img_size,
            embed_dim=config.embed_dim,
            depths=config.depths,
            num_heads=config.num_heads,
            window_size=config.window_size,
            mlp_ratio=config.mlp_ratio,
            resi_connection=config.resi_connection,
            upsampler=config.upsampler,
            num_feat=config.num_feat,
            drop_path_rate=config.drop_path_rate,
        )
    elif config.family == "conv":
        module = ConvDecoder(
            upscale=config.upscale,
            in_chans=config.in_chans,
            out_chans=config.out_chans,
            width=config.width,
            n_blocks=config.n_blocks,
            res_scale=config.res_scale,
            upsampler=config.upsampler,
            num_feat=config.num_feat,
        )
    elif config.family == "dilated":
        module = DilatedConvDecoder(upscale=config.upscale, in_chans=config.in_chans, out_chans=config.out_chans,
                                    width=config.width, dilations=config.dilations, res_scale=config.res_scale,
                                    refine_width=config.refine_width)
    elif config.family == "locality":
        module = LocalityDecoder(n_patterns=config.in_chans, bin_px=config.upscale, period_bins=config.period_bins,
                                 out_chans=config.out_chans, width=config.width, dilations=config.dilations,
                                 unshuffle=config.refine_unshuffle, seg_head=config.seg_head)
    else:  # pragma: no cover - guarded by the Literal
        raise ValueError(f"unknown decoder family {config.family!r}")
    module.config = config
    return module


def count_parameters(module: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable, by default) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
