"""Tests of the decoders: SwinIR, the residual CNN and the registry."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from napari_dmicro.decoders import (
    ALLOWED_UPSCALES,
    DECODER_PRESETS,
    ConvDecoder,
    DecoderConfig,
    SwinIR,
    build_decoder,
    count_parameters,
    decoder_config,
)
from napari_dmicro.decoders.swinir import (
    SwinTransformerLayer,
    pad_to_multiple,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

TINY = ("swinir-tiny", "conv-tiny")


def _build(name: str, upscale: int, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_decoder(decoder_config(name, upscale, **overrides))


# ------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TINY + ("swinir-fast",))
@pytest.mark.parametrize(
    "upscale,hw",
    [(8, (32, 32)), (16, (16, 16)), (8, (37, 45)), (16, (5, 11)), (2, (3, 3))],
)
def test_output_shape(name, upscale, hw):
    m = _build(name, upscale).eval()
    x = torch.rand(2, 1, *hw)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 1, hw[0] * upscale, hw[1] * upscale)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_paper_config_builds_and_runs():
    cfg = decoder_config("swinir-paper", 8)
    assert cfg.family == "swinir"
    assert cfg.embed_dim == 180 and cfg.depths == (6,) * 6 and cfg.num_heads == (6,) * 6
    assert cfg.window_size == 8 and cfg.mlp_ratio == 2.0 and cfg.resi_connection == "1conv"
    assert cfg.upsampler == "pixelshuffle" and cfg.num_feat == 64 and cfg.drop_path_rate == 0.1
    assert cfg.img_size == 32 and cfg.in_chans == 1 and cfg.out_chans == 1
    assert decoder_config("swinir-paper", 16).img_size == 16
    m = _build("swinir-paper", 8)
    n = count_parameters(m)
    # SwinIR-M (~11.9 M for x4 RGB); x8 adds one 64->256 upsampling stage, 1 channel removes a few
    assert 11_500_000 < n < 12_500_000, n
    # progressive upsampler: three conv -> PixelShuffle(2) stages for x8
    shuffles = [mod for mod in m.upsample if isinstance(mod, torch.nn.PixelShuffle)]
    assert [s.upscale_factor for s in shuffles] == [2, 2, 2]
    assert len(m.layers) == 6 and all(len(r.layers) == 6 for r in m.layers)
    assert [layer.shift for layer in m.layers[0].layers] == [0, 4, 0, 4, 0, 4]
    m.eval()
    with torch.no_grad():
        y = m(torch.rand(1, 1, 32, 32))
    assert y.shape == (1, 1, 256, 256)


def test_fast_preset_is_single_pixelshuffle():
    m = _build("swinir-fast", 8)
    shuffles = [mod for mod in m.modules() if isinstance(mod, torch.nn.PixelShuffle)]
    assert [s.upscale_factor for s in shuffles] == [8]
    assert count_parameters(m) < count_parameters(_build("swinir-paper", 8)) / 10


# ------------------------------------------------------------------------------------------
# registry and configuration
# ------------------------------------------------------------------------------------------
def test_registry_presets_valid_and_build():
    required = {"swinir-paper", "swinir-fast", "swinir-tiny", "conv", "conv-tiny"}
    assert required <= set(DECODER_PRESETS)
    for name, up in itertools.product(DECODER_PRESETS, ALLOWED_UPSCALES):
        cfg = decoder_config(name, up)
        assert isinstance(cfg, DecoderConfig)
        # the fluorescence decoder's input has one channel per illumination pattern: compression d²/T
        assert cfg.upscale == up and cfg.compression == up * up / cfg.in_chans ** (cfg.family == "locality")
        if cfg.family == "swinir":
            assert cfg.img_size == 256 // up
    for name in TINY:
        assert isinstance(_build(name, 4), (SwinIR, ConvDecoder))
    m = _build("conv-tiny", 8)
    assert m.config == decoder_config("conv-tiny", 8)


def test_registry_unknown_name_lists_known():
    with pytest.raises(KeyError) as exc:
        decoder_config("swinir-huge", 8)
    msg = str(exc.value)
    for name in DECODER_PRESETS:
        assert name in msg


def test_registry_overrides():
    cfg = decoder_config("swinir-tiny", 8, upsampler="pixelshuffle", num_feat=8)
    assert cfg.upsampler == "pixelshuffle" and cfg.num_feat == 8
    with pytest.raises(ValidationError):
        decoder_config("swinir-tiny", 8, bogus=1)


def test_upsampler_default_depends_on_family():
    assert DecoderConfig(family="swinir", upscale=8).upsampler == "pixelshuffle"
    assert DecoderConfig(family="conv", upscale=8).upsampler == "pixelshuffledirect"


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(family="swinir", upscale=3), "power of 2"),
        (dict(family="swinir", upscale=64), "power of 2"),
        (dict(family="swinir", upscale=8, depths=(2, 2), num_heads=(2,)), "same length"),
        (dict(family="swinir", upscale=8, embed_dim=20, depths=(2,), num_heads=(3,)), "divisible"),
        (dict(family="swinir", upscale=8, depths=(), num_heads=()), "at least one"),
        (dict(family="swinir", upscale=8, depths=(2, 0), num_heads=(2, 2)), ">= 1"),
        (dict(family="swinir", upscale=8, window_size=1), "window_size"),
        (dict(family="swinir", upscale=8, drop_path_rate=1.0), "less than 1"),
        (dict(family="swinir", upscale=8, resi_connection="2conv"), "1conv"),
        (dict(family="swinir", upscale=8, upsampler="nearest"), "pixelshuffle"),
        (dict(family="unet", upscale=8), "swinir"),
        (dict(family="conv", upscale=8, width=0), "greater than or equal to 1"),
        (dict(family="conv", upscale=8, channels=3), "Extra inputs"),
    ],
)
def test_config_validation_errors(kwargs, fragment):
    with pytest.raises(ValidationError) as exc:
        DecoderConfig(**kwargs)
    assert fragment in str(exc.value)


def test_config_frozen():
    cfg = decoder_config("conv", 8)
    with pytest.raises(ValidationError):
        cfg.width = 3


@pytest.mark.parametrize("name", sorted(DECODER_PRESETS))
def test_config_json_round_trip(name):
    cfg = decoder_config(name, 16)
    text = cfg.to_json()
    json.loads(text)  # plain JSON
    back = DecoderConfig.from_json(text)
    assert back == cfg
    assert DecoderConfig.model_validate(json.loads(text)) == cfg
    assert isinstance(back.depths, tuple)


def test_json_round_trip_rebuilds_identical_model():
    cfg = decoder_config("swinir-tiny", 8)
    torch.manual_seed(3)
    a = build_decoder(cfg)
    torch.manual_seed(3)
    b = build_decoder(DecoderConfig.from_json(cfg.to_json()))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_build_decoder_rejects_dict():
    with pytest.raises(TypeError):
        build_decoder({"family": "conv", "upscale": 8})


# ------------------------------------------------------------------------------------------
# Swin internals
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ws", [2, 4, 7, 8])
def test_relative_position_index(ws):
    idx = relative_position_index(ws)
    n = ws * ws
    assert idx.shape == (n, n)
    table = (2 * ws - 1) ** 2
    # covers every entry of the (2w-1)^2 table, nothing outside it
    assert set(idx.unique().tolist()) == set(range(table))
    # the pair (j, i) has the opposite offset of (i, j): mirror entries about the table centre
    assert torch.all(idx + idx.T == table - 1)
    assert torch.all(idx.diagonal() == (table - 1) // 2)
    # brute force: same index <=> same 2-d offset
    coords = [(i // ws, i % ws) for i in range(n)]
    for (i, a), (j, b) in itertools.product(enumerate(coords), repeat=2):
        dy, dx = a[0] - b[0], a[1] - b[1]
        assert idx[i, j] == (dy + ws - 1) * (2 * ws - 1) + (dx + ws - 1)


def test_window_partition_round_trip():
    x = torch.randn(2, 8, 12, 3)
    w = window_partition(x, 4)
    assert w.shape == (2, 6, 16, 3)
    assert torch.equal(w[0, 1].view(4, 4, 3), x[0, 0:4, 4:8])
    assert torch.equal(window_reverse(w, 4, 8, 12), x)


@pytest.mark.parametrize("h,w,ws", [(8, 8, 4), (16, 24, 8), (12, 8, 4), (8, 8, 8)])
def test_shifted_window_mask_matches_brute_force(h, w, ws):
    s = ws // 2
    mask = shifted_window_mask(h, w, ws, s)
    nwin_w = w // ws
    assert mask.shape == ((h // ws) * nwin_w, ws * ws, ws * ws)
    for k in range(mask.shape[0]):
        r0, c0 = (k // nwin_w) * ws, (k % nwin_w) * ws
        # position of each token of window k in the *original* (un-rolled) image
        rolled = [(r0 + i // ws, c0 + i % ws) for i in range(ws * ws)]
        orig = [((r + s) % h, (c + s) % w) for r, c in rolled]
        for i, j in itertools.product(range(ws * ws), repeat=2):
            # tokens may attend iff the roll kept their relative position (neither or both
            # wrapped around the border), i.e. they are neighbours in the original image too
            ok = all(orig[i][a] - orig[j][a] == rolled[i][a] - rolled[j][a] for a in (0, 1))
            assert (mask[k, i, j] == 0) == ok, (k, i, j)
            assert ok or mask[k, i, j] == float("-inf")


def test_shifted_attention_never_mixes_across_wrap_around():
    torch.manual_seed(0)
    h = w = 8
    layer = SwinTransformerLayer(dim=8, num_heads=2, window_size=4, shift=2, mlp_ratio=2.0).eval()
    mask = shifted_window_mask(h, w, 4, 2)
    x = torch.randn(1, h, w, 8)
    x2 = x.clone()
    # top-left pixel (not a constant offset: LayerNorm would remove that); after the roll it shares
    # a window with the bottom-right pixels
    x2[0, 0, 0] += 3.0 * torch.randn(8)
    with torch.no_grad():
        y, y2 = layer(x, mask), layer(x2, mask)
        n, n2 = layer(x, None), layer(x2, None)
    corner = (slice(None), slice(h - 2, h), slice(w - 2, w))  # rolled into the same window
    assert torch.equal(y[corner], y2[corner])
    # control: without the mask the perturbation does leak across the border
    assert not torch.allclose(n[corner], n2[corner])
    # and with the mask it still reaches the tokens of its own (contiguous) region
    assert not torch.allclose(y[0, 1, 1], y2[0, 1, 1])


def test_mask_is_cached_per_size_and_survives_inference_mode():
    m = _build("swinir-tiny", 8)
    with torch.inference_mode():
        m.eval()(torch.rand(1, 1, 8, 8))
    a = m.attention_mask(8, 8, torch.device("cpu"), torch.float32)
    assert a is m.attention_mask(8, 8, torch.device("cpu"), torch.float32)
    assert m.attention_mask(12, 8, torch.device("cpu"), torch.float32).shape[0] == 6
    # a mask created under inference_mode can be reused in a training forward/backward
    m.train()
    m(torch.rand(1, 1, 8, 8)).mean().backward()


def test_pad_to_multiple_modes():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    p, h, w = pad_to_multiple(x, 4)
    assert (h, w) == (3, 4) and p.shape == (1, 1, 4, 4)
    assert torch.equal(p[0, 0, 3], x[0, 0, 1])  # reflect
    p, _, _ = pad_to_multiple(torch.ones(1, 1, 2, 2), 8)  # pad > side: replicate
    assert p.shape == (1, 1, 8, 8) and torch.equal(p, torch.ones(1, 1, 8, 8))


# ------------------------------------------------------------------------------------------
# behaviour
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(13, 10), (5, 7)])
def test_swinir_padding_equals_explicit_padding(hw):
    m = _build("swinir-tiny", 4).eval()
    x = torch.rand(2, 1, *hw)
    xp, h, w = pad_to_multiple(x, m.window_size)
    assert xp.shape[-1] % 4 == 0 and xp.shape[-2] % 4 == 0 and xp.shape != x.shape
    with torch.no_grad():
        y = m(x)
        yp = m(xp)
    assert yp.shape == (2, 1, xp.shape[-2] * 4, xp.shape[-1] * 4)
    torch.testing.assert_close(y, yp[..., : h * 4, : w * 4], rtol=1e-5, atol=1e-6)


def test_conv_decoder_translation_equivariant_away_from_borders():
    s = 4
    m = _build("conv-tiny", s).eval()
    rf = 7  # 3x3 convolutions on the camera grid: head + 2 blocks x 2 + after-body + tail
    big = torch.rand(1, 1, 40, 40)
    dy, dx = 3, 5
    a = big[..., 0:30, 0:30]
    b = big[..., dy : dy + 30, dx : dx + 30]
    with torch.no_grad():
        ya, yb = m(a), m(b)
    inner_b = yb[..., rf * s : (30 - rf - dy) * s, rf * s : (30 - rf - dx) * s]
    inner_a = ya[..., (rf + dy) * s : (30 - rf) * s, (rf + dx) * s : (30 - rf) * s]
    assert inner_a.numel() > 0
    torch.testing.assert_close(inner_a, inner_b, rtol=1e-5, atol=1e-6)
    # sanity: the border band does differ (zero padding), so the test can fail
    assert not torch.allclose(ya[..., : s, : s], yb[..., : s, : s])


@pytest.mark.parametrize("name", TINY)
def test_deterministic_given_seed(name):
    x = torch.rand(1, 1, 9, 9)
    outs = []
    for _ in range(2):
        m = _build(name, 4, seed=11).eval()
        with torch.no_grad():
            outs.append(m(x))
    assert torch.equal(outs[0], outs[1])
    with torch.no_grad():
        other = _build(name, 4, seed=12).eval()(x)
    assert not torch.equal(outs[0], other)


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("swinir-tiny", {}),
        ("swinir-tiny", dict(upsampler="pixelshuffle", num_feat=8, resi_connection="3conv")),
        ("conv-tiny", {}),
        ("conv-tiny", dict(upsampler="pixelshuffle", num_feat=8)),
    ],
)
def test_gradients_reach_every_parameter(name, overrides):
    m = _build(name, 4, **overrides).train()
    x = torch.rand(2, 1, 12, 12)  # 12 = 3 windows of 4: plain and shifted layers both masked
    y = m(x)
    ((y - torch.rand_like(y)) ** 2).mean().backward()
    missing = [
        n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)
    ]
    assert not missing, missing


def test_drop_path_only_in_training():
    m = _build("swinir-tiny", 4, drop_path_rate=0.5)
    x = torch.rand(4, 1, 8, 8)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
    m.train()
    torch.manual_seed(0)
    with torch.no_grad():
        a, b = m(x), m(x)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", TINY)
def test_tiny_model_overfits_one_batch(name):
    torch.manual_seed(0)
    m = _build(name, 4).train()
    x = torch.rand(4, 1, 8, 8)
    # a phase-like target that depends on the input: smooth upsampled, non-linear map of x
    target = torch.sin(3.0 * F.interpolate(x, scale_factor=4, mode="bilinear")) * 0.5 + 0.5
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = F.mse_loss(m(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_input_validation():
    m = _build("swinir-tiny", 4)
    with pytest.raises(ValueError, match="expected input"):
        m(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="expected input"):
        _build("conv-tiny", 4)(torch.rand(8, 8))
