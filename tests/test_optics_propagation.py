"""Angular spectrum propagation checked against analytic optics."""

import math

import pytest
import torch

from napari_dmicro.optics import AngularSpectrum, angular_spectrum_transfer, propagate

DX = 0.3164  # µm, λ/2 grid of the paper
LAM = 0.6328  # µm


def _coords(n, dx=DX):
    x = (torch.arange(n, dtype=torch.float64) - n // 2) * dx
    return torch.meshgrid(x, x, indexing="ij")


def _plane_wave(n, kx, ky, dx=DX):
    """exp(i2π(fx·x + fy·y)) with fx = kx/(n·dx): exactly periodic on the grid."""
    y, x = _coords(n, dx)
    fx, fy = kx / (n * dx), ky / (n * dx)
    return torch.polar(torch.ones_like(x), 2 * math.pi * (fx * x + fy * y)).to(torch.complex64), fx, fy


def _gaussian(n, w0_um, dx=DX):
    y, x = _coords(n, dx)
    return torch.exp(-(x ** 2 + y ** 2) / w0_um ** 2).to(torch.complex64)


def _rms_width_um(field, dx=DX):
    """1/e² intensity radius from the second moment along x: w = 2·sqrt(<x²>)."""
    n = field.shape[-1]
    y, x = _coords(n, dx)
    intensity = field.abs().double() ** 2
    return 2 * math.sqrt(float((intensity * x ** 2).sum() / intensity.sum()))


@pytest.mark.parametrize("kx,ky", [(0, 0), (7, -3), (40, 25), (100, 0), (-60, 90)])
@pytest.mark.parametrize("z_um", [3.373, 25.0, -10.0])
def test_plane_wave_acquires_analytic_phase(kx, ky, z_um):
    n = 256
    field, fx, fy = _plane_wave(n, kx, ky)
    out = propagate(field, z_um, pixel_size_um=DX, wavelength_um=LAM, pad_factor=1, band_limit=False)
    kz = math.sqrt(1 / LAM ** 2 - fx ** 2 - fy ** 2)
    expected = field * complex(math.cos(2 * math.pi * z_um * kz), math.sin(2 * math.pi * z_um * kz))
    assert torch.allclose(out, expected, atol=2e-4)


def test_evanescent_plane_wave_is_removed():
    n = 256
    field, fx, fy = _plane_wave(n, 100, 100)  # |f| = 1.41·(0.5/dx)·… > 1/λ on the λ/2 grid
    assert fx ** 2 + fy ** 2 > 1 / LAM ** 2
    out = propagate(field, 5.0, pixel_size_um=DX, wavelength_um=LAM, pad_factor=1, band_limit=False)
    assert float(out.abs().max()) < 1e-4


@pytest.mark.parametrize("z_um", [0.0, 40.0, 80.0, 160.0])
def test_gaussian_beam_width_matches_analytic(z_um):
    w0, n = 4.0, 512
    z_r = math.pi * w0 ** 2 / LAM
    out = propagate(_gaussian(n, w0), z_um, pixel_size_um=DX, wavelength_um=LAM, pad_factor=2)
    expected = w0 * math.sqrt(1 + (z_um / z_r) ** 2)
    assert _rms_width_um(out) == pytest.approx(expected, rel=0.01)


def test_gaussian_beam_on_axis_phase_includes_gouy_shift():
    w0, n, z = 4.0, 512, 60.0
    z_r = math.pi * w0 ** 2 / LAM
    out = propagate(_gaussian(n, w0), z, pixel_size_um=DX, wavelength_um=LAM, pad_factor=2)
    center = out[n // 2, n // 2]
    expected_phase = 2 * math.pi * z / LAM - math.atan(z / z_r)
    diff = (float(torch.angle(center)) - expected_phase + math.pi) % (2 * math.pi) - math.pi
    assert abs(diff) < 0.02
    assert float(center.abs()) == pytest.approx(w0 / (w0 * math.sqrt(1 + (z / z_r) ** 2)), rel=0.01)


def _band_limited_random_field(n, seed=0, fraction=0.7):
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.randn(n, n, dtype=torch.complex64, generator=g)
    f = torch.fft.fftfreq(n, d=DX)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    spectrum = spectrum * ((fx ** 2 + fy ** 2) < (fraction / LAM) ** 2)
    return torch.fft.ifft2(spectrum)


def test_energy_is_conserved_for_band_limited_input():
    field = _band_limited_random_field(128)
    for z in (3.373, 30.0, -12.0):
        out = propagate(field, z, pixel_size_um=DX, wavelength_um=LAM, pad_factor=1, band_limit=False)
        assert float(out.abs().square().sum()) == pytest.approx(float(field.abs().square().sum()), rel=1e-5)


def test_energy_is_conserved_with_padding_for_a_compact_beam():
    field = _gaussian(256, 3.0)
    out = propagate(field, 20.0, pixel_size_um=DX, wavelength_um=LAM, pad_factor=2)
    assert float(out.abs().square().sum()) == pytest.approx(float(field.abs().square().sum()), rel=1e-4)


@pytest.mark.parametrize("pad_factor", [1, 2])
def test_propagating_forward_then_back_returns_the_input(pad_factor):
    # periodic propagation is exactly invertible for band-limited input; padded propagation is for
    # a compact beam whose light stays inside the window
    field = _band_limited_random_field(128, seed=3) if pad_factor == 1 else _gaussian(128, 2.0)
    z = 15.0
    fwd = propagate(field, z, pixel_size_um=DX, wavelength_um=LAM, pad_factor=pad_factor, band_limit=False)
    back = propagate(fwd, -z, pixel_size_um=DX, wavelength_um=LAM, pad_factor=pad_factor, band_limit=False)
    scale = float(field.abs().max())
    assert float((back - field).abs().max()) < 1e-4 * scale + (2e-3 * scale if pad_factor > 1 else 0)


def test_zero_distance_is_identity_and_batches_match_single_fields():
    field = _band_limited_random_field(64, seed=5)
    out0 = propagate(field, 0.0, pixel_size_um=DX, wavelength_um=LAM, pad_factor=1)
    assert torch.allclose(out0, field, atol=1e-6)
    asm = AngularSpectrum(7.0, pixel_size_um=DX, wavelength_um=LAM, pad_factor=2)
    batch = torch.stack([field, field.conj()])
    assert torch.allclose(asm(batch)[1], asm(field.conj()), atol=1e-6)


def test_band_limit_matches_matsushima_shimobaba_at_paper_distances():
    # on a 1024-px window (256 neurons × pad 4) the limit is f·λ = 0.99978 at 3.373 µm
    n, z = 1024, 3.373
    h = angular_spectrum_transfer((n, n), DX, LAM, z, band_limit=True)
    f = torch.fft.fftfreq(n, d=DX, dtype=torch.float64)
    kept_fx = f[(h[0].abs() > 0)]
    limit = 1 / (LAM * math.sqrt((2 * z / (n * DX)) ** 2 + 1))
    assert float(kept_fx.abs().max()) < limit <= float(kept_fx.abs().max()) + 1 / (n * DX)
    assert limit * LAM == pytest.approx(0.99978, abs=1e-5)
    # a long distance on a small window cuts the band substantially
    h_far = angular_spectrum_transfer((64, 64), DX, LAM, 200.0, band_limit=True)
    assert float((h_far.abs() > 0).float().mean()) < 0.1


def test_real_input_is_rejected_with_a_clear_message():
    with pytest.raises(TypeError, match="complex"):
        propagate(torch.ones(8, 8), 1.0, pixel_size_um=DX, wavelength_um=LAM)
    with pytest.raises(ValueError, match="shape"):
        propagate(torch.ones(2, 2, 8, 8, dtype=torch.complex64), 1.0, pixel_size_um=DX, wavelength_um=LAM)
