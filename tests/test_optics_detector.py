"""Camera model: one square, binning that conserves photons, Poisson + Gaussian statistics."""

import math

import pytest
import torch
from pydantic import ValidationError

from napari_dmicro.config import DetectorConfig
from napari_dmicro.optics import Detector, bin_mean, bin_sum


def test_intensity_is_the_squared_modulus_not_the_fourth_power():
    field = torch.polar(torch.tensor([[0.5, 2.0]]), torch.tensor([[1.0, -2.0]]))
    assert torch.allclose(Detector.intensity(field), torch.tensor([[0.25, 4.0]]))


@pytest.mark.parametrize("compression,binning", [(4, 2), (16, 4), (64, 8), (256, 16), (1024, 32)])
def test_binning_conserves_photons(compression, binning):
    assert DetectorConfig(compression=compression).binning == binning
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(compression))
    summed = bin_sum(image, binning)
    assert summed.shape == (3, 64 // binning, 64 // binning)
    assert torch.allclose(summed.sum(dim=(1, 2)), image.sum(dim=(1, 2)), rtol=1e-5)
    assert torch.allclose(bin_mean(image, binning) * binning ** 2, summed)


def test_binning_groups_the_right_pixels():
    image = torch.arange(16, dtype=torch.float32).reshape(4, 4)
    assert torch.equal(bin_sum(image, 2), torch.tensor([[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                                        [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]],
                                                       dtype=torch.float32))


def test_plane_wave_gives_unit_intensity_on_every_camera_pixel():
    det = Detector(DetectorConfig(compression=64))
    meas = det.demagnify(Detector.intensity(torch.ones(1, 64, 64, dtype=torch.complex64)))
    assert torch.allclose(meas, torch.ones(1, 8, 8))


def test_non_divisible_sizes_get_a_clear_error():
    with pytest.raises(ValueError, match="multiple of 8"):
        Detector(DetectorConfig(compression=64)).demagnify(torch.ones(1, 60, 64))


def test_detector_config_validation():
    for bad in (2, 8, 32, 100, 4096):
        with pytest.raises(ValidationError, match="power of 4"):
            DetectorConfig(compression=bad)
    with pytest.raises(ValidationError, match="max_photons"):
        DetectorConfig(read_noise_e=6.0)
    with pytest.raises(ValidationError):
        DetectorConfig(max_photons=-5)


def _counts(mode, photons, read_noise, seed=0, shape=(16, 64, 64)):
    det = Detector(DetectorConfig(compression=4, max_photons=photons, read_noise_e=read_noise,
                                  photon_reference="unit_intensity"))
    binned = torch.full(shape, 1.0)
    meas = det.add_noise(binned, mode, torch.Generator().manual_seed(seed))
    return meas * photons  # back to photo-electrons


@pytest.mark.parametrize("mode", ["exact", "differentiable"])
@pytest.mark.parametrize("photons,read_noise", [(1000.0, 6.0), (100.0, 4.0), (10000.0, 0.0)])
def test_noise_mean_and_variance_match_poisson_plus_gaussian(mode, photons, read_noise):
    counts = _counts(mode, photons, read_noise)
    n = counts.numel()
    var = photons + read_noise ** 2
    assert float(counts.mean()) == pytest.approx(photons, abs=5 * math.sqrt(var / n))
    assert float(counts.var()) == pytest.approx(var, rel=5 * math.sqrt(2 / n))


def test_exact_noise_is_integer_poisson_at_low_counts():
    counts = _counts("exact", 3.0, 0.0)
    assert torch.equal(counts, counts.round())
    # P(0) = e^-3 for a Poisson(3) variable
    assert float((counts == 0).float().mean()) == pytest.approx(math.exp(-3), abs=0.01)


@pytest.mark.parametrize("mode", ["exact", "differentiable"])
def test_noise_is_reproducible_with_a_seed(mode):
    assert torch.equal(_counts(mode, 500.0, 2.0, seed=7), _counts(mode, 500.0, 2.0, seed=7))
    assert not torch.equal(_counts(mode, 500.0, 2.0, seed=7), _counts(mode, 500.0, 2.0, seed=8))


def test_image_max_reference_puts_the_brightest_pixel_at_max_photons():
    det = Detector(DetectorConfig(compression=4, max_photons=1e4))
    binned = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 5.0])[:, None, None]
    scale = det.photon_scale(binned)
    expected = binned * scale
    assert torch.allclose(expected.amax(dim=(1, 2)), torch.full((2,), 1e4))
    noisy = det.add_noise(binned, "exact", torch.Generator().manual_seed(0))
    # measurement is returned in intensity units: relative error ~ 1/sqrt(photons)
    rel = ((noisy - binned) / binned.amax(dim=(1, 2), keepdim=True)).std()
    assert float(rel) < 0.02


def test_noise_free_detector_ignores_noise_mode_and_differentiable_noise_has_gradients():
    assert torch.equal(Detector().add_noise(torch.ones(1, 4, 4), "exact"), torch.ones(1, 4, 4))
    det = Detector(DetectorConfig(compression=4, max_photons=100.0, read_noise_e=1.0))
    x = torch.rand(1, 8, 8, requires_grad=True)
    det.add_noise(x, "differentiable", torch.Generator().manual_seed(0)).sum().backward()
    assert float(x.grad.abs().sum()) > 0
