"""Offset-aligned evaluation and the background-referenced reference: a global phase offset (invisible to
an intensity microscope) does not change the score when aligned, the blockwise evaluation stays equal to
the whole-field one, and a reference field's background noise below 0 is not wrapped to ~2π."""

import numpy as np
import pytest

import napari_dmicro as dm
from napari_dmicro.inference.evaluate import evaluate_field
from napari_dmicro.phase_reference import referenced_phase_rad


def _reference(shape=(300, 280), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    phase = 4.0 * np.sqrt(np.clip(1 - ((yy - 140) ** 2 + (xx - 150) ** 2) / 60.0 ** 2, 0, None))
    return (phase + 0.5 + rng.normal(0, 0.05, shape)).astype(np.float32)


def _prediction(ref, seed=1):
    return (ref + np.random.default_rng(seed).normal(0, 0.1, ref.shape)).astype(np.float32)


def test_an_offset_prediction_scores_like_the_unshifted_one_when_aligned():
    ref = _reference()
    pred = _prediction(ref)
    base = dm.evaluate(pred, ref, keep_ssim_map=False)
    shifted = dm.evaluate(pred + np.float32(0.3), ref, keep_ssim_map=False)
    assert shifted.offset_aligned and shifted.offset_rad == pytest.approx(base.offset_rad + 0.3, abs=2e-3)
    assert shifted.psnr_db == pytest.approx(base.psnr_db, abs=0.01)
    assert shifted.ssim == pytest.approx(base.ssim, abs=1e-3)
    assert f"{shifted.offset_rad:+.4f} rad" in shifted.as_dict()["alignment"]
    unaligned = dm.evaluate(pred + np.float32(0.3), ref, keep_ssim_map=False, align_offset=False)
    assert not unaligned.offset_aligned and unaligned.offset_rad == 0.0
    assert unaligned.psnr_db < base.psnr_db - 5


def test_blockwise_alignment_equals_the_whole_field():
    ref = _reference()
    pred = _prediction(ref) + np.float32(0.3)
    whole = evaluate_field(pred, ref, patch_px=64, block_px=4096)
    blocks = evaluate_field(pred, ref, patch_px=64, block_px=64)
    assert blocks.offset_rad == whole.offset_rad
    assert blocks.psnr_db == pytest.approx(whole.psnr_db, abs=1e-4)  # dB
    assert blocks.ssim == pytest.approx(whole.ssim, abs=1e-6)
    # the map differs by float32 rounding of the windowed sums (2e-4 at 64-px blocks, aligned or not)
    np.testing.assert_allclose(blocks.ssim_map, whole.ssim_map, rtol=0, atol=5e-4)


def test_a_reference_field_is_read_relative_to_its_background():
    """Background at 0 with noise dipping below 0: mod 2π would make those pixels ~2π."""
    truth = _reference() - np.float32(0.5)  # background at 0 ± 0.05
    field = np.exp(1j * truth).astype(np.complex64)
    pred = referenced_phase_rad(field)
    background = dm.evaluate(pred, field, keep_ssim_map=False)
    absolute = dm.evaluate(pred, field, keep_ssim_map=False, reference_convention="absolute")
    assert abs(background.reference_background_rad) < 0.02
    # scored with the reference's background at 0.15 rad: the alignment moves the prediction there
    assert background.offset_rad == pytest.approx(-0.15, abs=0.02)
    assert background.psnr_db > 40 and background.ssim > 0.99
    assert absolute.psnr_db < background.psnr_db - 15
