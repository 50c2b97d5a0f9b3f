"""Metrics on a region (napari_dmicro.regions): the cell mask and the region's score beside the full field."""

import numpy as np
import pytest

import napari_dmicro as dm
from napari_dmicro.regions import cell_mask, evaluate_region, region_box


def _cell_on_background(n=128, radius=20, height_rad=4.0):
    yy, xx = np.mgrid[:n, :n] - n / 2
    return (height_rad * np.clip(1 - (xx**2 + yy**2) / radius**2, 0, None)).astype(np.float32)


def test_the_cell_mask_is_the_cell_not_the_noise():
    truth = _cell_on_background()
    noisy = truth + np.where(np.random.default_rng(0).random(truth.shape) < 0.002, 0.5, 0.0).astype(np.float32)
    mask = cell_mask(noisy)
    rows, cols = region_box(mask, margin_px=0)
    # the paraboloid exceeds 0.3 rad inside r = 20·sqrt(1 − 0.3/4) ≈ 19.2 px: a 39 px box, isolated pixels dropped
    assert rows.stop - rows.start == pytest.approx(39, abs=1) and cols.stop - cols.start == pytest.approx(39, abs=1)
    with pytest.raises(ValueError, match="region is empty"):
        region_box(np.zeros((8, 8), bool))


def test_a_sparse_field_scores_worse_on_its_cell_than_on_the_whole_field():
    truth = _cell_on_background(n=256, radius=20)
    # a reconstruction with errors on the cell only (the background is easy): full-field PSNR flatters it
    guess = truth + 0.4 * np.sin(np.arange(256) / 3.0)[None, :].astype(np.float32) * (truth > 0)
    full = dm.evaluate(guess, truth)
    region = evaluate_region(guess, truth, cell_mask(truth))
    assert region.psnr_db < full.psnr_db - 6  # dB: the background (~95 % of the field) no longer dilutes the error
    assert region.extra["region_pixels"] == int(cell_mask(truth).sum())
