"""Metrics in the paper's convention, checked against scikit-image and known values."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from napari_dmicro.metrics import pooled_psnr, psnr, report_metrics, ssim, ssim_map


def _pair(seed=0, shape=(64, 80), noise=0.1):
    rng = np.random.default_rng(seed)
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1).astype(np.float32)
    return a, b


def test_ssim_map_matches_scikit_image_away_from_the_border():
    a, b = _pair()
    mean, full = structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, full=True)
    ours = ssim_map(torch.from_numpy(b), torch.from_numpy(a))[0, 0].numpy()
    np.testing.assert_allclose(ours[5:-5, 5:-5], full[5:-5, 5:-5], atol=1e-5)
    assert float(ours[5:-5, 5:-5].mean()) == pytest.approx(mean, abs=1e-5)


def test_psnr_matches_scikit_image_and_pooled_psnr_is_below_the_mean_of_patches():
    a, b = _pair(noise=0.05)
    assert float(psnr(torch.from_numpy(b), torch.from_numpy(a))) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=1), abs=1e-4)
    # Jensen: a clean patch and a noisy patch — the mean of PSNRs exceeds the PSNR of the pooled error
    clean = torch.from_numpy(a) + 0.001
    noisy = torch.from_numpy(b)
    target = torch.from_numpy(a)
    per_patch = psnr(torch.stack([clean, noisy]), torch.stack([target, target]))
    sse = float((clean - target).square().sum() + (noisy - target).square().sum())
    assert pooled_psnr(sse, 2 * a.size) < float(per_patch.mean()) - 5


def test_ssim_identity_offset_sensitivity_and_gradients():
    a, _ = _pair()
    t = torch.from_numpy(a)
    assert float(ssim(t, t)) == pytest.approx(1.0, abs=1e-6)
    # a small background offset on dark images costs SSIM (the pitfall the paper's stage 3 targets)
    dark = t * 0.02
    assert float(ssim(dark + 0.02, dark)) < 0.8
    pred = (t + 0.1).requires_grad_(True)
    (-ssim(pred, t).mean()).backward()
    assert float(pred.grad.abs().sum()) > 0


def test_report_clips_predictions_and_rejects_mismatched_shapes():
    t = torch.full((1, 16, 16), 1.0)
    over = torch.full((1, 16, 16), 1.5)
    assert math.isinf(float(report_metrics(over, t)["psnr_db"])) or float(report_metrics(over, t)["psnr_db"]) > 150
    with pytest.raises(ValueError, match="shape"):
        ssim(torch.zeros(1, 16, 16), torch.zeros(1, 16, 17))
