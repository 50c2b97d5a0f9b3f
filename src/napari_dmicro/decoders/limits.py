"""Size limits of a decoder configuration and its parameter count, computed without building it.

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
MAX_CHANNELS = 16
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


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def _linear(c_in: int, c_out: int) -> int:
    return c_in * c_out + c_out


def _upsampler(width: int, config) -> int:
    """Parameters of the reconstruction head from ``width`` channels."""
    u, out = config.upscale, config.out_chans
    if config.upsampler == "pixelshuffledirect":
        return _conv(width, out * u * u)
    nf, stages = config.num_feat, int(round(math.log2(u)))
    return _conv(width, nf) + stages * _conv(nf, 4 * nf) + _conv(nf, out)


def _residual_conv(dim: int, kind: str) -> int:
    if kind == "1conv":
        return _conv(dim, dim)
    mid = max(dim // 4, 1)
    return _conv(dim, mid) + _conv(mid, mid, 1) + _conv(mid, dim)


def decoder_parameter_count(config) -> int:
    """Exact number of parameters of ``build_decoder(config)``, from the configuration's numbers alone."""
    if config.family == "conv":
        w = config.width
        return (_conv(config.in_chans, w) + config.n_blocks * 2 * _conv(w, w) + _conv(w, w)
                + _upsampler(w, config))
    e, ws = config.embed_dim, config.window_size
    hidden = int(e * config.mlp_ratio)
    total = _conv(config.in_chans, e) + 2 * e  # conv_first, patch_norm
    for depth, heads in zip(config.depths, config.num_heads):
        layer = (2 * e + (2 * ws - 1) ** 2 * heads + _linear(e, 3 * e) + _linear(e, e)
                 + 2 * e + _linear(e, hidden) + _linear(hidden, e))
        total += depth * layer + _residual_conv(e, config.resi_connection)
    total += 2 * e + _residual_conv(e, config.resi_connection)  # norm, conv_after_body
    return total + _upsampler(e, config)
