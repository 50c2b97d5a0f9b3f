"""Designed Fourier filters (Zernike, knife edge) as exact LFF initialisations, checked against optics."""

import math

import numpy as np
import pytest
import torch

from napari_dmicro.config import FourierFilterConfig
from napari_dmicro.optics.designed_filters import AMPLITUDE_TOLERANCE, designed_transmission
from napari_dmicro.optics.fourier_filter import LearnableFourierFilter


def _circular(n=64, **kw):
    return FourierFilterConfig(filter_size_px=n, convolution="circular", **kw)


@pytest.mark.parametrize("kind", ["zernike", "knife_edge", "dpc"])
def test_designed_init_is_represented_by_the_lff_parameters_within_the_stated_tolerance(kind):
    cfg = _circular()
    lff = LearnableFourierFilter(cfg, init=kind)
    amp, phase = designed_transmission(cfg, kind)
    t = lff.transmission().detach()
    pupil = lff.pupil
    assert torch.allclose(t.abs(), (amp * pupil).float(), atol=AMPLITUDE_TOLERANCE, rtol=0)
    inside = pupil > 0
    assert torch.allclose(lff.phase_rad.detach()[inside], phase[inside].float(), atol=1e-7)


def test_zernike_filter_turns_a_weak_phase_object_into_intensity_a2_plus_2a_phi():
    n, a = 64, 0.5
    x = torch.arange(n, dtype=torch.float64)
    yy, xx = torch.meshgrid(x, x, indexing="ij")
    # zero mean, all spectral content 3-5 frequency pixels from DC (outside the 1-px DC disc)
    phi = 0.02 * torch.cos(2 * math.pi * 5 * xx / n) + 0.015 * torch.sin(2 * math.pi * 3 * yy / n)
    field = torch.polar(torch.ones_like(phi), phi).to(torch.complex64)
    lff = LearnableFourierFilter(_circular(n), init="zernike")
    intensity = (lff(field).abs() ** 2).detach().double()
    expected = a ** 2 + 2 * a * phi
    # the neglected terms are O(φ²) ≈ 1e-3 rad² at most
    assert float((intensity - expected).abs().max()) < 1.5e-3
    slope = float(((intensity - intensity.mean()) * phi).sum() / (phi * phi).sum())
    assert slope == pytest.approx(2 * a, rel=0.05)  # sign and scale: bright where the phase is high


def test_knife_edge_intensity_rises_monotonically_with_the_phase_gradient():
    n = 64
    x = torch.arange(n, dtype=torch.float64)
    yy, xx = torch.meshgrid(x, x, indexing="ij")
    lff = LearnableFourierFilter(_circular(n), init="knife_edge")
    means = []
    # phase ramps of k cycles per field along the filter's diagonal (pupil radius: n/2 = 32 cycles)
    ks = list(range(-20, 21, 2))
    for k in ks:
        phi = 2 * math.pi * k * (xx + yy) / n
        field = torch.polar(torch.ones_like(phi), phi).to(torch.complex64)
        intensity = (lff(field).abs() ** 2).detach().double()
        assert float(intensity.std()) < 1e-4  # a tilted plane wave stays uniform
        means.append(float(intensity.mean()))
    diffs = np.diff(means)
    assert np.all(diffs > 1e-3), means
    # the analytic transmission: |t|² with t = (1 + f·u/ρ)/2, f·u = k·√2 cycles per field
    rho = n / 2
    for k, m in zip(ks, means, strict=True):
        assert m == pytest.approx(((1 + k * math.sqrt(2) / rho) / 2) ** 2, abs=1e-4)


def test_dpc_ramp_reads_gentle_gradients_with_more_contrast_and_saturates_beyond_its_na():
    from napari_dmicro.optics.designed_filters import DPC_RAMP_NA

    n = 128
    cfg = _circular(n)
    x = torch.arange(n, dtype=torch.float64)
    yy, xx = torch.meshgrid(x, x, indexing="ij")
    lff = {kind: LearnableFourierFilter(cfg, init=kind) for kind in ("knife_edge", "dpc")}
    ramp_cycles = DPC_RAMP_NA / cfg.grid.wavelength_um * n * cfg.grid.pixel_size_um  # ramp radius, cycles/field
    for k in (-6, -2, 0, 2, 6, 40):  # cycles per field along each axis; f·u = k·√2
        phi = 2 * math.pi * k * (xx + yy) / n
        field = torch.polar(torch.ones_like(phi), phi).to(torch.complex64)
        with torch.no_grad():
            got = {kind: float((f(field).abs() ** 2).mean()) for kind, f in lff.items()}
        along = k * math.sqrt(2)
        assert got["dpc"] == pytest.approx(min(max((1 + along / ramp_cycles) / 2, 0), 1) ** 2, abs=1e-4)
        if 0 < abs(k) <= 6:  # gentle gradients: NA/DPC_RAMP_NA = 4 times the slope of the full-pupil ramp
            assert abs(got["dpc"] - 0.25) > 3 * abs(got["knife_edge"] - 0.25)
    assert got["dpc"] == pytest.approx(1.0, abs=1e-4)  # beyond the ramp: a knife edge passes all of it


def test_designed_inits_refuse_phase_only_filters_and_unknown_names():
    with pytest.raises(ValueError, match="amplitude_phase"):
        LearnableFourierFilter(_circular(mode="phase"), init="knife_edge")
    with pytest.raises(ValueError, match="zernike"):
        LearnableFourierFilter(_circular(), init="zernick")
