"""The learnable Fourier filter, the PhaseD2NN and the encoder, checked against physics."""

import math

import pytest
import torch

from napari_dmicro.config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig, GridConfig
from napari_dmicro.optics import Encoder, LearnableFourierFilter, PhaseD2NN, propagate
from napari_dmicro.optics.fourier_filter import all_pass_filter

DX, LAM = 0.3164, 0.6328


def _random_field(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    amp = 0.5 + torch.rand(shape, generator=g)
    phase = 2 * math.pi * torch.rand(shape, generator=g)
    return torch.polar(amp, phase)


def _band_limited(field, na=0.95):
    n = field.shape[-1]
    f = torch.fft.fftfreq(n, d=DX, dtype=torch.float64)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    inside = (fx ** 2 + fy ** 2) <= (na / LAM) ** 2 * (1 + 1e-9)  # the circle's edge bins belong inside
    return torch.fft.ifft2(torch.fft.fft2(field) * inside)


@pytest.mark.parametrize("convolution", ["linear", "circular"])
def test_all_pass_filter_without_pupil_is_exactly_the_identity(convolution):
    lff = all_pass_filter(FourierFilterConfig(filter_size_px=32, pupil_na=None, convolution=convolution))
    field = _random_field((3, 32, 32))
    assert torch.allclose(lff(field), field, atol=5e-5 * float(field.abs().max()))


@pytest.mark.parametrize("mode", ["amplitude_phase", "phase"])
def test_all_pass_filter_with_full_pupil_passes_band_limited_fields(mode):
    lff = all_pass_filter(FourierFilterConfig(filter_size_px=64, convolution="circular", mode=mode))
    field = _band_limited(_random_field((64, 64), seed=1), na=1.0)
    assert torch.allclose(lff(field), field, atol=1e-4)
    # … and removes what lies outside the pupil
    outside = _random_field((64, 64), seed=2) - _band_limited(_random_field((64, 64), seed=2), na=1.0)
    assert float(lff(outside).detach().abs().max()) < 1e-4


def test_pupil_is_the_inscribed_circle_on_the_half_wavelength_grid():
    lff = LearnableFourierFilter(FourierFilterConfig(filter_size_px=256))
    pupil = lff.pupil
    c = 128
    assert pupil[c, c] == 1 and pupil[c, 0] == 1 and pupil[0, c] == 1  # ±1/λ on the axes kept
    assert pupil[0, 0] == 0 and pupil[c + 91, c + 91] == 0 and pupil[c + 90, c + 90] == 1
    assert float(pupil.mean()) == pytest.approx(math.pi / 4, abs=0.01)
    half = LearnableFourierFilter(FourierFilterConfig(filter_size_px=256, pupil_na=0.5)).pupil
    assert float(half.sum()) == pytest.approx(float(pupil.sum()) / 4, rel=0.02)


def test_phase_only_filter_conserves_energy_in_circular_mode():
    lff = LearnableFourierFilter(FourierFilterConfig(filter_size_px=64, mode="phase", convolution="circular"))
    field = _band_limited(_random_field((64, 64), seed=3), na=1.0)
    out = lff(field)
    assert float(out.detach().abs().square().sum()) == pytest.approx(float(field.abs().square().sum()), rel=1e-4)


def test_amplitude_filter_never_amplifies():
    lff = LearnableFourierFilter(FourierFilterConfig(filter_size_px=64, convolution="circular"))
    field = _random_field((64, 64), seed=4)
    assert float(lff(field).detach().abs().square().sum()) < float(field.abs().square().sum())
    assert float(lff.transmission().detach().abs().max()) <= 1.0


def test_linear_convolution_of_a_crop_with_context_equals_the_full_field():
    n = 32
    lff = LearnableFourierFilter(FourierFilterConfig(filter_size_px=n),
                                 generator=torch.Generator().manual_seed(0))
    full = _random_field((150, 170), seed=5)
    out_full = lff(full)
    ctx = lff.context_px()
    assert ctx == n // 2
    r0, c0, size = 40, 60, 48
    crop = full[r0 - ctx:r0 + size + ctx, c0 - ctx:c0 + size + ctx]
    out_crop = lff(crop)[ctx:ctx + size, ctx:ctx + size]
    assert torch.allclose(out_crop, out_full[r0:r0 + size, c0:c0 + size], atol=1e-5)


def test_linear_equals_circular_when_the_image_does_not_wrap():
    n = 64
    cfg = FourierFilterConfig(filter_size_px=n)
    lin = LearnableFourierFilter(cfg, generator=torch.Generator().manual_seed(1))
    circ = LearnableFourierFilter(cfg.model_copy(update={"convolution": "circular"}))
    circ.load_state_dict(lin.state_dict())
    # a field supported on the central region: the circular result differs from the linear one only
    # through wrap-around of the PSF, which we make vanish by choosing a single-pixel object
    field = torch.zeros(n, n, dtype=torch.complex64)
    field[n // 2, n // 2] = 1
    assert torch.allclose(lin(field), circ(field), atol=1e-6)
    # the response to a centred point is the PSF itself
    assert torch.allclose(lin(field), lin.point_spread_function(), atol=1e-6)


def test_circular_mode_rejects_other_sizes():
    lff = LearnableFourierFilter(FourierFilterConfig(filter_size_px=32, convolution="circular"))
    with pytest.raises(ValueError, match="32×32"):
        lff(_random_field((40, 40)))


def _gaussian(n, w0):
    x = (torch.arange(n, dtype=torch.float64) - n // 2) * DX
    yy, xx = torch.meshgrid(x, x, indexing="ij")
    return torch.exp(-(xx ** 2 + yy ** 2) / w0 ** 2).to(torch.complex64)


def test_transparent_d2nn_is_free_space_over_the_total_distance():
    cfg = DiffractiveConfig(n_layers=3, n_neurons=128, pad_factor=2)
    d2nn = PhaseD2NN(cfg, init="zeros")
    field = _gaussian(128, 3.0)
    out = d2nn(field)
    total = cfg.input_distance_um + 2 * cfg.layer_spacing_um + cfg.output_distance_um
    ref = propagate(field, total, pixel_size_um=DX, wavelength_um=LAM, pad_factor=2)
    assert torch.allclose(out, ref, atol=1e-4)
    # intermediate outputs: the detector sits output_distance behind layer i
    out1 = d2nn(field, n_active=1)
    ref1 = propagate(field, cfg.input_distance_um + cfg.output_distance_um, pixel_size_um=DX,
                     wavelength_um=LAM, pad_factor=2)
    assert torch.allclose(out1, ref1, atol=1e-4)


def test_d2nn_phase_layers_conserve_energy_of_a_compact_beam():
    cfg = DiffractiveConfig(n_layers=5, n_neurons=128, pad_factor=2)
    d2nn = PhaseD2NN(cfg, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # smooth masks keep the light inside the aperture
        d2nn.phase_rad.mul_(0.0).add_(torch.linspace(0, 1, 128).expand(5, 128, 128))
    field = _gaussian(128, 4.0)
    out = d2nn(field)
    assert float(out.detach().abs().square().sum()) == pytest.approx(float(field.abs().square().sum()), rel=1e-3)


def test_d2nn_power_scales_intensity_and_defaults_to_one():
    d2nn = PhaseD2NN(DiffractiveConfig(n_layers=2, n_neurons=32, pad_factor=2), init="zeros")
    assert torch.allclose(d2nn.powers, torch.ones(2))
    field = _gaussian(32, 2.0)
    before = d2nn(field, n_active=2).abs().square()
    with torch.no_grad():
        d2nn.power_logit[1] = math.log(math.exp(3.0) - 1)  # softplus → 3
    after = d2nn(field, n_active=2).abs().square()
    assert torch.allclose(after, 3 * before, rtol=1e-4, atol=1e-7)


def test_d2nn_defaults_are_the_papers_geometry_and_reject_wrong_apertures():
    cfg = DiffractiveConfig()
    assert (cfg.n_layers, cfg.n_neurons, cfg.pad_factor) == (5, 256, 4)
    assert (cfg.layer_spacing_um, cfg.input_distance_um, cfg.output_distance_um) == (3.373, 3.373, 5.904)
    assert (cfg.grid.wavelength_um, cfg.grid.pixel_size_um) == (0.6328, 0.3164)
    d2nn = PhaseD2NN(DiffractiveConfig(n_layers=1, n_neurons=32))
    with pytest.raises(ValueError, match="tiles"):
        d2nn(_random_field((64, 64)))
    with pytest.raises(ValueError, match="n_active"):
        d2nn(_random_field((32, 32)), n_active=2)


def _lff_encoder(n=64, compression=16, **det):
    return Encoder(EncoderConfig(optics=FourierFilterConfig(filter_size_px=n),
                                 detector=DetectorConfig(compression=compression, **det)),
                   generator=torch.Generator().manual_seed(0))


def test_lff_encoder_gradients_reach_every_parameter_through_noise():
    enc = _lff_encoder(max_photons=1000, read_noise_e=2.0)
    field = _random_field((2, 64, 64))
    meas = enc(field, noise="differentiable", generator=torch.Generator().manual_seed(0))
    assert meas.shape == (2, 16, 16)
    meas.square().mean().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_d2nn_encoder_gradients_reach_every_mask_and_the_used_power():
    cfg = EncoderConfig(optics=DiffractiveConfig(n_layers=3, n_neurons=32, pad_factor=2),
                        detector=DetectorConfig(compression=16))
    enc = Encoder(cfg, generator=torch.Generator().manual_seed(0))
    enc(_random_field((2, 32, 32))).square().mean().backward()
    assert float(enc.optics.phase_rad.grad.abs().sum(dim=(1, 2)).min()) > 0
    grads = enc.optics.power_logit.grad
    assert grads[2] != 0 and grads[0] == 0 and grads[1] == 0
    enc.zero_grad()
    enc.acquisition().detector_intensity(_random_field((1, 32, 32)), n_active=2).mean().backward()
    assert float(enc.optics.phase_rad.grad[2].abs().sum()) == 0  # layer 3 unused with two active
    assert enc.optics.power_logit.grad[1] != 0


def test_encoder_pixel_sizes_and_unbatched_input():
    enc = _lff_encoder(compression=64)
    assert enc.camera_pixel_size_um == pytest.approx(0.3164 * 8)
    meas = enc(_random_field((64, 64)))
    assert meas.shape == (8, 8) and meas.dtype == torch.float32


def test_grid_config_rejects_metres_and_nanometres():
    with pytest.raises(ValueError, match="micrometres"):
        GridConfig(wavelength_um=632.8e-9)
    with pytest.raises(ValueError, match="micrometres"):
        GridConfig(wavelength_um=632.8)
    with pytest.raises(ValueError, match="micrometres"):
        GridConfig(pixel_size_um=3.164e-7)
    cfg = EncoderConfig.from_json(EncoderConfig().to_json())
    assert cfg == EncoderConfig()


@pytest.mark.parametrize("outside", ["reflect", "dark"])
def test_training_crops_equal_the_full_field_simulation_everywhere(outside):
    """Crops with context (mirrored or dark beyond the edge) reproduce the full-field detector field."""
    import numpy as np

    from napari_dmicro.optics.grids import crop_with_surroundings

    cfg = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), outside_field=outside,
                        detector=DetectorConfig(compression=4))
    enc = Encoder(cfg, generator=torch.Generator().manual_seed(3))
    full = _random_field((100, 120), seed=9)
    reference = enc.acquisition().acquire_field(full, keep_intensity=True).intensity
    ctx, size = enc.context_px(), 32
    for top, left in [(0, 0), (40, 50), (100 - size, 120 - size), (0, 120 - size)]:
        region = crop_with_surroundings(full.numpy(), top - ctx, left - ctx, size + 2 * ctx, size + 2 * ctx, outside)
        got = enc.acquisition().detector_intensity(torch.from_numpy(np.ascontiguousarray(region))[None], ctx)[0]
        np.testing.assert_allclose(got.detach().numpy(), reference[top:top + size, left:left + size], atol=1e-5)


def test_reflect_rule_has_no_dark_frame_for_a_uniform_field():
    """A plane wave stays a plane wave through an all-pass filter when the specimen continues outside."""
    import numpy as np

    from napari_dmicro.optics.fourier_filter import all_pass_filter

    for outside, expect_flat in (("reflect", True), ("dark", False)):
        enc = Encoder(EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), outside_field=outside))
        enc.optics = all_pass_filter(FourierFilterConfig(filter_size_px=32))
        intensity = enc.acquisition().acquire_field(torch.ones(64, 64, dtype=torch.complex64),
                                                    keep_intensity=True).intensity
        flat = float(np.abs(intensity - 1).max()) < 0.05
        assert flat == expect_flat
