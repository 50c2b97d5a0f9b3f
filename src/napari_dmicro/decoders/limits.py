"""Size limits of a decoder configuration, and its tensor shapes and parameter count computed without
building it.

A checkpoint's configuration comes from a file that may not be trusted: it is checked against these
limits (and its tensors against the shapes it implies) before any module is built, so a crafted file
costs neither minutes nor gigabytes. The limits are far above every preset (``swinir-paper`` has about
12 M parameters at x64).
"""

from __future__ import annotations

import math

#: Largest decoder, in parameters (float32: 4 bytes each, so 200 MB).
MAX_DECODER_PARAMETERS = 50_000_000
#: Field limits (``pydantic`` ``le=``) of :class:`~napari_dmicro.decoders.DecoderConfig`.
#: also the number of fluorescence illumination patterns T (1..64)
MAX_CHANNELS = 64
MAX_EMBED_DIM = 1024
MAX_HEADS = 64
MAX_SWIN_GROUPS = 16
MAX_GROUP_DEPTH = 32
MAX_WINDOW_PX = 32
MAX_IMG_SIZE_PX = 4096
MAX_MLP_RATIO = 16.0
MAX_WIDTH = 1024
MAX_BLOCKS = 128
MAX_NUM_FEAT = 512
MAX_DILATION = 64
MAX_PERIOD_BINS = 16


Shapes = dict[str, tuple[int, ...]]


def _conv(name: str, c_in: int, c_out: int, k: int = 3) -> Shapes:
    return {f"{name}.weight": (c_out, c_in, k, k), f"{name}.bias": (c_out,)}


def _linear(name: str, c_in: int, c_out: int) -> Shapes:
    return {f"{name}.weight": (c_out, c_in), f"{name}.bias": (c_out,)}


def _norm(name: str, dim: int) -> Shapes:
    return {f"{name}.weight": (dim,), f"{name}.bias": (dim,)}


def _pixelshuffles(name: str, nf: int, upscale: int, first: int) -> Shapes:
    """``log2(upscale)`` x [3x3 conv nf -> 4 nf, PixelShuffle(2)], Sequential indices from ``first``."""
    shapes: Shapes = {}
    for k in range(int(round(math.log2(upscale)))):
        shapes |= _conv(f"{name}.{first + 2 * k}", nf, 4 * nf)
    return shapes


def _residual_conv(name: str, dim: int, kind: str) -> Shapes:
    if kind == "1conv":
        return _conv(name, dim, dim)
    mid = max(dim // 4, 1)
    return _conv(f"{name}.0", dim, mid) | _conv(f"{name}.2", mid, mid, 1) | _conv(f"{name}.4", mid, dim)


def _conv_decoder(c) -> Shapes:
    w, u, out = c.width, c.upscale, c.out_chans
    shapes = _conv("head", c.in_chans, w)
    for i in range(c.n_blocks):
        shapes |= _conv(f"body.{i}.conv1", w, w) | _conv(f"body.{i}.conv2", w, w)
    shapes |= _conv("conv_after_body", w, w)
    if c.upsampler == "pixelshuffledirect":
        return shapes | _conv("tail.0", w, out * u * u)
    stages = int(round(math.log2(u)))
    return (shapes | _conv("tail.0", w, c.num_feat) | _pixelshuffles("tail", c.num_feat, u, 2)
            | _conv(f"tail.{2 + 2 * stages}", c.num_feat, out))


def _dilated_decoder(c) -> Shapes:
    w, u, out = c.width, c.upscale, c.out_chans
    shapes = _conv("head", c.in_chans, w)
    for i in range(len(c.dilations)):
        shapes |= _conv(f"body.{i}.conv1", w, w) | _conv(f"body.{i}.conv2", w, w)
    return (shapes | _conv("conv_after_body", w, w) | _conv("tail.0", w, out * u * u)
            | _conv("refine.0", out, c.refine_width) | _conv("refine.2", c.refine_width, out))


def _locality_decoder(c) -> Shapes:
    k, d, out, w = c.period_bins, c.upscale, c.out_chans, c.width
    s = c.refine_unshuffle  # the refinement cell, whatever the bin
    shapes = {"upsampler.weight": (k, k, out * d * d, c.in_chans), "upsampler.bias": (k, k, out * d * d)}
    shapes |= _conv("head.1", out * s * s, w)
    for i in range(len(c.dilations)):
        shapes |= _conv(f"body.{i}.conv1", w, w) | _conv(f"body.{i}.conv2", w, w)
    shapes |= _conv("tail.0", w, out * s * s)
    if c.seg_head:
        shapes |= _conv("seg.0", w, w) | _conv("seg.2", w, 2 * s * s)
    return shapes


def _swinir(c) -> Shapes:
    e, u, out = c.embed_dim, c.upscale, c.out_chans
    hidden = int(e * c.mlp_ratio)
    shapes = _conv("conv_first", c.in_chans, e) | _norm("patch_norm", e)
    for i, (depth, heads) in enumerate(zip(c.depths, c.num_heads, strict=True)):
        for j in range(depth):
            at = f"layers.{i}.layers.{j}"
            shapes |= (_norm(f"{at}.norm1", e)
                       | {f"{at}.attn.relative_position_bias_table": ((2 * c.window_size - 1) ** 2, heads)}
                       | _linear(f"{at}.attn.qkv", e, 3 * e) | _linear(f"{at}.attn.proj", e, e)
                       | _norm(f"{at}.norm2", e) | _linear(f"{at}.mlp.fc1", e, hidden)
                       | _linear(f"{at}.mlp.fc2", hidden, e))
        shapes |= _residual_conv(f"layers.{i}.conv", e, c.resi_connection)
    shapes |= _norm("norm", e) | _residual_conv("conv_after_body", e, c.resi_connection)
    if c.upsampler == "pixelshuffledirect":
        return shapes | _conv("upsample.0", e, out * u * u)
    return (shapes | _conv("conv_before_upsample.0", e, c.num_feat) | _pixelshuffles("upsample", c.num_feat, u, 0)
            | _conv("conv_last", c.num_feat, out))


def decoder_tensor_shapes(config) -> Shapes:
    """Name → shape of every tensor in ``build_decoder(config).state_dict()``, from the configuration's
    numbers alone (nothing is built)."""
    if config.family == "dilated":
        return _dilated_decoder(config)
    if config.family == "locality":
        return _locality_decoder(config)
    return _conv_decoder(config) if config.family == "conv" else _swinir(config)


def decoder_parameter_count(config) -> int:
    """Exact number of parameters of ``build_decoder(config)`` (arithmetic; nothing is built)."""
    return sum(math.prod(shape) for shape in decoder_tensor_shapes(config).values())
