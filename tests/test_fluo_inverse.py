"""The fluorescence inverse model: locality-aware upsampling (any field size, weights shared by position in
the pattern period, least-squares init from the patterns), no running statistics (O2), segmentation metrics
against hand-computed cases, Dice + BCE losses, and a tiny training that beats the linear inverse.

The measurements are simulated inline (sum pooling of the product of periodic patterns with the image), so
these tests do not depend on the forward model's module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_dmicro.decoders import DecoderConfig, LocalityDecoder, LocalityUpsampler, build_decoder, decoder_config
from napari_dmicro.decoders.locality import SEG_CHANNELS, instance_labels, pattern_matrices
from napari_dmicro.segmentation_metrics import dice, iou_matrix, matched_f1
from napari_dmicro.training.losses import SegmentationLoss, segmentation_targets, soft_dice_loss


def _patterns(n_patterns: int, period_px: int, seed: int) -> torch.Tensor:
    """Random binary patterns (T, P, P) (Bernoulli ½)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n_patterns, period_px, period_px, generator=g) < 0.5).float()


def _measure(x: torch.Tensor, patterns: torch.Tensor, bin_px: int) -> torch.Tensor:
    """(B, H, W) density → (B, T, H/d, W/d): patterns tiled from the field origin, d×d SUM pooling."""
    period = patterns.shape[-1]
    reps = (-(-x.shape[-2] // period), -(-x.shape[-1] // period))
    tiled = patterns.repeat(1, *reps)[:, : x.shape[-2], : x.shape[-1]]
    return F.avg_pool2d(x[:, None] * tiled[None], bin_px) * bin_px ** 2


def _blobs(n: int, side_px: int, seed: int) -> torch.Tensor:
    """Fields of 3–6 Gaussian nuclei-like blobs (σ 2.5–5 px, brightness 0.4–1), normalised to max 1."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(side_px, dtype=torch.float32), torch.arange(side_px, dtype=torch.float32),
                            indexing="ij")
    fields = torch.zeros(n, side_px, side_px)
    for i in range(n):
        for _ in range(int(torch.randint(3, 7, (1,), generator=g))):
            cy, cx = torch.rand(2, generator=g) * side_px
            sigma = 2.5 + 2.5 * float(torch.rand(1, generator=g))
            fields[i] += (0.4 + 0.6 * torch.rand(1, generator=g)) * torch.exp(
                -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
        fields[i] /= fields[i].max()
    return fields


# ------------------------------------------------------------------------------------------
# (1) any field size, weights shared by position within the pattern period
# ------------------------------------------------------------------------------------------
def test_upsampler_shares_weights_by_period_position_on_any_field_size():
    torch.manual_seed(0)
    up = LocalityUpsampler(n_patterns=3, bin_px=4, period_bins=2)
    assert up.weight.shape == (2, 2, 16, 3)  # k² weight sets, nothing tied to the field size
    for h, w in ((16, 16), (48, 80), (7, 5)):  # 7×5: a field that is not a whole number of periods
        y = torch.randn(2, 3, h, w)
        assert up(y).shape == (2, 1, 4 * h, 4 * w)
    y = torch.randn(1, 3, 48, 80)
    out = up(y)
    # a shift by one period (2 sites) shifts the output by 2·4 px, exactly
    shifted = up(torch.roll(y, shifts=(2, -2), dims=(2, 3)))
    assert torch.allclose(shifted, torch.roll(out, shifts=(8, -8), dims=(2, 3)), atol=1e-5)
    # ... but a shift by one site (half a period) does not: the site then uses the other position's weights
    half = up(torch.roll(y, shifts=1, dims=3))
    assert (half - torch.roll(out, shifts=4, dims=3)).abs().max() > 0.1
    # explicit: site (i, j) uses weight set (i mod 2, j mod 2)
    i, j = 33, 47
    patch = up.weight[i % 2, j % 2] @ y[0, :, i, j] + up.bias[i % 2, j % 2]
    assert torch.allclose(out[0, 0, 4 * i: 4 * i + 4, 4 * j: 4 * j + 4].reshape(-1), patch, atol=1e-5)
    # the weights of a 16×16 field and of a 48×80 field are the same tensors: the top-left 16×16 block agrees
    assert torch.allclose(up(y[..., :16, :16]), out[..., :64, :64], atol=1e-5)


def test_whole_decoder_is_translation_equivariant_by_one_period_away_from_the_border():
    torch.manual_seed(1)
    m = build_decoder(decoder_config("locality-tiny", 4, in_chans=3, period_bins=2)).eval()
    for p in m.tail.parameters():  # a trained refinement is not zero: make it act
        torch.nn.init.normal_(p, std=0.1)
    y = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        out, shifted = m(y), m(torch.roll(y, shifts=2, dims=3))
        assert m(y[..., :16, :16]).shape == (1, 1, 64, 64)
    assert out.shape == (1, 1, 192, 320)
    margin = 4 * m.receptive_field_camera_px  # px; covers the refinement's reach to the border and the wrap
    inner = (slice(None), slice(None), slice(margin, -margin), slice(margin, -margin))
    assert (out - torch.roll(out, 1, dims=3)).abs()[inner].max() > 1e-3  # the comparison has teeth
    assert torch.allclose(shifted[inner], torch.roll(out, shifts=8, dims=3)[inner], atol=1e-4)


# ------------------------------------------------------------------------------------------
# (2) physics round trip: pseudo-inverse of the patterns
# ------------------------------------------------------------------------------------------
def test_pinv_of_a_complete_pattern_set_reconstructs_the_image_exactly():
    d, k = 4, 2
    patterns = _patterns(d * d, d * k, seed=3)  # T = d²: a complete (invertible) set per period position
    mats = pattern_matrices(patterns, d)
    assert mats.shape == (k, k, d * d, d * d)
    assert float(torch.linalg.cond(mats.double()).max()) < 1e4
    x = torch.rand(2, 40, 24)  # 10×6 detector sites, 5×3 pattern periods
    y = _measure(x, patterns, d)
    up = LocalityUpsampler(d * d, d, period_bins=k).init_from_patterns(patterns)
    assert torch.allclose(up(y)[:, 0], x, atol=1e-4)  # density units, data range 1
    # the decoder sees (y − offset)/scale: the init folds them into weight and bias
    offset, scale = float(y.mean()), float(y.std())
    m = LocalityDecoder(n_patterns=d * d, bin_px=d, period_bins=k, width=8, dilations=(1,), unshuffle=2)
    m.init_from_patterns(patterns, meas_offset=offset, meas_scale=scale)
    with torch.no_grad():
        assert torch.allclose(m((y - offset) / scale)[:, 0], x, atol=1e-4)  # a fresh decoder IS the inverse


def test_pinv_of_a_compressive_pattern_set_is_consistent_with_the_measurement():
    """T < d²: the minimum-norm solution is not the image, but measuring it again gives the same y."""
    d, t = 8, 4
    patterns = _patterns(t, d, seed=4)
    x = _blobs(2, 32, seed=5)
    y = _measure(x, patterns, d)
    estimate = LocalityUpsampler(t, d).init_from_patterns(patterns)(y)[:, 0]
    assert torch.allclose(_measure(estimate.detach(), patterns, d), y, atol=1e-3 * float(y.abs().max()))
    assert (estimate - x).abs().mean() > 0.05  # and it is far from exact: x16 compression loses information
    with pytest.raises(ValueError, match="period_bins 1 and 4 patterns"):
        LocalityUpsampler(4, 4, period_bins=2).init_from_patterns(_patterns(4, 4, seed=0))
    with pytest.raises(ValueError, match="not a multiple of the bin"):
        pattern_matrices(_patterns(4, 12, seed=0), 8)


# ------------------------------------------------------------------------------------------
# (3) no running statistics (bug O2 of the authors' code)
# ------------------------------------------------------------------------------------------
def test_decoder_has_no_running_statistics_so_evaluation_changes_nothing():
    torch.manual_seed(2)
    m = build_decoder(decoder_config("locality-seg", 8))
    assert not any(isinstance(mod, torch.nn.modules.batchnorm._NormBase) for mod in m.modules())
    assert not any(isinstance(mod, torch.nn.GroupNorm | torch.nn.LayerNorm) for mod in m.modules())
    before = {k: v.clone() for k, v in m.state_dict().items()}
    y = torch.randn(3, 4, 8, 8) * 5 + 2  # "validation" data of another distribution
    m.train()
    with torch.no_grad():
        out_train = m(y)
    m.eval()
    with torch.no_grad():
        out_eval = m(y)
    after = m.state_dict()
    assert list(m.buffers()) == []
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.allclose(out_train, out_eval, atol=1e-6)  # train and eval behave identically


# ------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------
def test_locality_config_compression_bins_and_refusals():
    cfg = decoder_config("locality", 16)
    assert cfg.in_chans == 4 and cfg.compression == 64 and not cfg.seg_head
    assert decoder_config("locality", 64).compression == 1024  # x1024 needs a 64-px bin
    assert decoder_config("locality", 32, in_chans=3).compression == pytest.approx(1024 / 3)
    assert DecoderConfig.from_json(decoder_config("locality-seg", 32).to_json()).seg_head
    with pytest.raises(ValueError, match="compression d²/T = 0.5 < 1"):
        decoder_config("locality", 4, in_chans=32)
    with pytest.raises(ValueError, match="power of 2 in"):
        decoder_config("locality", 128)
    with pytest.raises(ValueError, match="power of 2"):
        decoder_config("conv", 64)  # the QPM families keep their limit
    with pytest.raises(ValueError, match="refine_unshuffle=6"):
        decoder_config("locality", 16, refine_unshuffle=6)
    m = build_decoder(decoder_config("locality-seg", 8))
    with torch.no_grad():
        out = m(torch.randn(1, 4, 5, 7))
    assert out.shape == (1, 1 + len(SEG_CHANNELS), 40, 56)
    with pytest.raises(ValueError, match=r"\(B, 4, h, w\)"):
        m(torch.randn(1, 3, 5, 7))


# ------------------------------------------------------------------------------------------
# (5) segmentation metrics against hand-computed cases
# ------------------------------------------------------------------------------------------
def test_iou_and_dice_of_two_overlapping_squares():
    a = np.zeros((30, 30), np.int32)
    b = np.zeros((30, 30), np.int32)
    a[5:15, 5:15] = 1
    b[5:15, 7:17] = 4  # shifted by 2 columns: intersection 10·8 = 80, union 120
    iou, t_ids, p_ids = iou_matrix(b, a)
    assert iou.shape == (1, 1) and t_ids.tolist() == [1] and p_ids.tolist() == [4]
    assert iou[0, 0] == pytest.approx(80 / 120)
    assert dice(b, a) == pytest.approx(2 * 80 / 200)
    assert matched_f1(b, a)["f1"] == 1.0
    c = np.zeros((30, 30), np.int32)
    c[10:20, 10:20] = 1  # diagonal by 5: intersection 25, union 175 → IoU 1/7 < 0.5: no match
    assert iou_matrix(c, a)[0][0, 0] == pytest.approx(1 / 7)
    score = matched_f1(c, a)
    assert (score["tp"], score["fp"], score["fn"], score["f1"]) == (0, 1, 1, 0.0)
    assert matched_f1(c, a, iou_threshold=0.1)["f1"] == 1.0
    empty = np.zeros((30, 30), np.int32)
    assert dice(empty, empty) == 1.0 and matched_f1(empty, empty)["f1"] == 1.0
    assert dice(empty, a) == 0.0 and matched_f1(empty, a)["fn"] == 1
    with pytest.raises(ValueError, match="integer labels"):
        dice(a.astype(np.float32), a)


def test_matched_f1_with_a_split_and_a_merged_nucleus():
    truth = np.zeros((40, 60), np.int32)
    truth[2:12, 2:22] = 1    # N1, 10×20 = 200 px
    truth[20:30, 2:18] = 2   # N2, 10×16 = 160 px
    truth[20:30, 18:22] = 3  # N3, 10×4 = 40 px, touching N2
    truth[2:12, 40:50] = 4   # N4, 100 px
    pred = np.zeros_like(truth)
    pred[2:12, 2:16] = 7     # N1 split: 140 px (IoU 0.7) ...
    pred[2:12, 16:22] = 8    # ... and 60 px (IoU 0.3)
    pred[20:30, 2:22] = 9    # N2 and N3 merged: IoU 160/200 = 0.8 with N2, 40/200 = 0.2 with N3
    pred[2:12, 40:50] = 5    # N4 exact
    iou, t_ids, p_ids = iou_matrix(pred, truth)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 1], expected[1, 3], expected[2, 3], expected[3, 2] = 0.7, 0.3, 0.8, 0.2, 1.0
    assert t_ids.tolist() == [1, 2, 3, 4] and p_ids.tolist() == [5, 7, 8, 9]
    np.testing.assert_allclose(iou, expected[:, [2, 0, 1, 3]], atol=1e-12)
    score = matched_f1(pred, truth)
    # TP: N1↔7, N2↔9, N4↔5; FP: 8 (the split-off part); FN: N3 (merged into N2's match: one-to-one)
    assert (score["tp"], score["fp"], score["fn"]) == (3, 1, 1)
    assert score["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert score["precision"] == pytest.approx(0.75) and score["recall"] == pytest.approx(0.75)
    assert score["mean_matched_iou"] == pytest.approx((0.7 + 0.8 + 1.0) / 3)
    assert dice(pred, truth) == 1.0  # the foreground is identical: Dice cannot see splits and merges
    # one-to-one: at IoU ≥ 0.2 every pair above is eligible, yet the merged object still matches only one of
    # N2 and N3, and N1 only one of its two parts
    low = matched_f1(pred, truth, iou_threshold=0.2)
    assert (low["tp"], low["fp"], low["fn"]) == (3, 1, 1)


# ------------------------------------------------------------------------------------------
# losses, targets, instance labels from the head
# ------------------------------------------------------------------------------------------
def test_segmentation_targets_losses_and_instance_labels_round_trip():
    labels = np.zeros((32, 32), np.int32)
    labels[4:14, 4:14] = 1
    labels[4:14, 14:24] = 2  # touching nucleus
    labels[20:28, 6:12] = 3
    targets = segmentation_targets(labels)
    assert targets.shape == (1, 2, 32, 32)
    assert targets[0, 0].sum() == (labels > 0).sum()
    assert targets[0, 1, 8, 13] == 1 and targets[0, 1, 8, 14] == 1 and targets[0, 1, 8, 8] == 0
    logits = (targets * 2 - 1) * 8.0  # a confident, correct head
    instances = instance_labels(logits[0, 0], logits[0, 1])
    assert instances.dtype == np.int32 and instances.max() == 3
    assert matched_f1(instances, labels)["f1"] == 1.0 and dice(instances, labels) == pytest.approx(1.0)
    assert instance_labels(logits[0, 0]).max() == 2  # no boundary channel: the touching pair stays merged
    loss = SegmentationLoss()
    good, terms = loss(logits, targets)
    bad, _ = loss(-logits, targets)
    assert set(terms) == {"dice", "bce", "total"}
    assert float(good) < 0.01 < 1.0 < float(bad)
    # soft Dice is 1 − Dice for hard probabilities: half of the 8 foreground px predicted → 1 − 2·4/(4 + 8)
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2] = 1
    p = torch.full_like(t, -50.0)
    p[..., :, :1] = 50.0
    assert float(soft_dice_loss(p, t, eps=0.0)) == pytest.approx(1 - 2 * 4 / (4 + 8), abs=1e-6)
    with pytest.raises(ValueError, match="both 0"):
        SegmentationLoss(0.0, 0.0)
    grads = torch.zeros_like(logits, requires_grad=True)
    loss(grads, targets)[0].backward()
    assert torch.isfinite(grads.grad).all() and grads.grad.abs().sum() > 0


def test_touching_nuclei_split_by_distance_even_where_the_head_sees_no_boundary():
    """A compressed camera blurs the head's thin boundaries: two overlapping discs (r 4 µm, centres 6 µm apart)
    whose boundary channel says "no boundary" anywhere merge when seeded by boundary-free components, and split
    along their waist by the distance watershed (seeds ≥ 3 µm apart) — in µm, at two pixel sizes."""
    from napari_dmicro.instances import split_touching

    for pixel_size_um in (0.325, 0.5):
        yy, xx = np.mgrid[0:64, 0:64] * pixel_size_um
        c = 32 * pixel_size_um
        a = (yy - c) ** 2 + (xx - (c - 3)) ** 2 < 4 ** 2
        b = (yy - c) ** 2 + (xx - (c + 3)) ** 2 < 4 ** 2
        truth = np.where(a, 1, np.where(b, 2, 0)).astype(np.int32)
        fg_logit = torch.from_numpy(np.where(a | b, 8.0, -8.0).astype(np.float32))
        no_boundary = torch.full_like(fg_logit, -8.0)
        assert instance_labels(fg_logit, no_boundary).max() == 1  # merged
        split = instance_labels(fg_logit, no_boundary, pixel_size_um=pixel_size_um)
        assert split.max() == 2 and matched_f1(split, truth)["f1"] == 1.0
        np.testing.assert_array_equal(split_touching(a | b, pixel_size_um), split)
        assert split_touching(a, pixel_size_um).max() == 1  # one round nucleus: one seed
    with pytest.raises(ValueError, match="pixel_size_um"):
        split_touching(a, 0.0)


# ------------------------------------------------------------------------------------------
# (6) the refinement learns: a tiny training beats the linear (pinv) inverse
# ------------------------------------------------------------------------------------------
def test_tiny_training_of_the_refinement_beats_the_pinv_init():
    torch.manual_seed(0)
    d, t = 8, 4  # x16
    patterns = _patterns(t, d, seed=11)
    train_x, val_x = _blobs(64, 32, seed=100), _blobs(16, 32, seed=200)  # disjoint seeds
    train_y, val_y = _measure(train_x, patterns, d), _measure(val_x, patterns, d)
    offset, scale = float(train_y.mean()), float(train_y.std())
    m = build_decoder(decoder_config("locality-tiny", d, width=16, dilations=(1, 2, 1), refine_unshuffle=4))
    m.init_from_patterns(patterns, meas_offset=offset, meas_scale=scale)
    m.upsampler.requires_grad_(False)  # only the refinement trains: it alone must beat the linear inverse

    def val_l1() -> float:
        with torch.no_grad():
            return float(F.l1_loss(m((val_y - offset) / scale)[:, 0], val_x))

    pinv_l1 = val_l1()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, len(train_x), (16,), generator=g)
        loss = F.l1_loss(m((train_y[idx] - offset) / scale)[:, 0], train_x[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained_l1 = val_l1()
    assert math.isfinite(trained_l1)
    assert trained_l1 < 0.5 * pinv_l1, (pinv_l1, trained_l1)


def test_classical_nuclei_splits_touching_discs_and_drops_specks_smaller_than_a_nucleus():
    from napari_dmicro.instances import MIN_NUCLEUS_AREA_UM2, classical_nuclei

    pixel_size_um = 0.325
    yy, xx = np.mgrid[0:80, 0:140]
    discs = ((yy - 40) ** 2 + (xx - 40) ** 2 < 20 ** 2) | ((yy - 40) ** 2 + (xx - 76) ** 2 < 20 ** 2)
    speck = (yy - 40) ** 2 + (xx - 125) ** 2 < 3 ** 2  # 28 px = 3 µm², under MIN_NUCLEUS_AREA_UM2 (12.6 µm²)
    assert speck.sum() * pixel_size_um ** 2 < MIN_NUCLEUS_AREA_UM2
    labels = classical_nuclei((discs | speck).astype(np.float32) + 0.05, pixel_size_um)
    assert labels.max() == 2 and not labels[speck].any()
    assert dice(labels, discs.astype(np.int32)) == pytest.approx(1.0)
    assert classical_nuclei(np.full((16, 16), 0.3, np.float32), pixel_size_um).max() == 0  # a blank image
