"""The fluorescence microscope (forward model) against its physics: dose, sharpness, binary deployment,
photon-conserving sum pooling, Poisson + read noise statistics, unit-sum PSFs, any field size, an
invertible Hadamard round trip, and the authors' bugs (O1 accumulated pattern gradients, O4 schedule,
pattern learning off by default, unnormalised PSFs, unequal dose) shown absent."""

import math

import numpy as np
import pytest
import tifffile
import torch
from pydantic import ValidationError
from scipy import ndimage

from napari_dmicro.fluorescence import (
    FluorescenceDetectorConfig,
    FluorescenceEncoder,
    FluorescenceEncoderConfig,
    PatternConfig,
    PSFConfig,
    SharpnessSchedule,
    gaussian_psf,
    hadamard_patterns,
    read_psf_file,
)
from napari_dmicro.fluorescence.psf import blur_periodic, blur_reflect

GAUSS_EX = PSFConfig(kind="gaussian", na=0.5, wavelength_um=0.488)
GAUSS_EM = PSFConfig(kind="gaussian", na=0.5, wavelength_um=0.52)


def _encoder(*, n=4, d=4, k=1, init="random", param="spatial", ex=None, em=None, seed=0,
             **detector):
    cfg = FluorescenceEncoderConfig(
        pixel_size_um=0.325,
        patterns=PatternConfig(n_patterns=n, period_bins=k, init=init, parametrisation=param),
        excitation=ex or PSFConfig(), emission=em or PSFConfig(),
        detector=FluorescenceDetectorConfig(bin_px=d, **detector))
    return FluorescenceEncoder(cfg, generator=torch.Generator().manual_seed(seed))


def _specimen(shape, seed=1):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _fwhm_um(psf: np.ndarray, pixel_size_um: float) -> float:
    """Full width at half maximum of the centre row, linear interpolation between pixels."""
    row = psf[psf.shape[0] // 2]
    half = row.max() / 2
    above = np.nonzero(row >= half)[0]
    left, right = above[0], above[-1]
    x_left = left - 1 + (half - row[left - 1]) / (row[left] - row[left - 1])
    x_right = right + (row[right] - half) / (row[right] - row[right + 1])
    return float(x_right - x_left) * pixel_size_um


# --- configuration --------------------------------------------------------------------------------
def test_compression_is_bin_area_over_patterns_and_bad_configs_are_refused():
    assert _encoder(n=4, d=16).compression == 64
    assert _encoder(n=4, d=64).config.compression == 1024
    assert _encoder(n=5, d=8).compression == pytest.approx(12.8)
    cfg = FluorescenceEncoderConfig(patterns=PatternConfig(period_bins=2), detector={"bin_px": 8})
    assert cfg.period_px == 16 and cfg.camera_pixel_size_um == pytest.approx(8 * cfg.pixel_size_um)
    assert FluorescenceEncoderConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValidationError, match="more numbers than there are specimen pixels"):
        FluorescenceEncoderConfig(patterns=PatternConfig(n_patterns=17), detector={"bin_px": 4})
    with pytest.raises(ValidationError, match="power of 2"):
        FluorescenceDetectorConfig(bin_px=12)
    with pytest.raises(ValidationError, match="photons_per_unit"):
        FluorescenceDetectorConfig(read_noise_e=2.0)
    with pytest.raises(ValidationError, match="na and wavelength_um"):
        PSFConfig(kind="gaussian", na=0.8)
    with pytest.raises(ValidationError, match="never guessed"):
        PSFConfig(kind="file", path="psf.npy")
    with pytest.raises(ValidationError, match="micrometres"):
        PSFConfig(kind="gaussian", na=0.8, wavelength_um=520.0)


# --- dose -----------------------------------------------------------------------------------------
def _learned(encoder, steps=5):
    opt = torch.optim.Adam(encoder.parameters(), lr=0.3)
    x = _specimen((2, 16, 16))
    for _ in range(steps):
        opt.zero_grad()
        encoder(x, binary=False)[:, 0].square().mean().backward()  # pushes pattern 0 dark
        opt.step()
    return encoder


@pytest.mark.parametrize("binary", [True, False])
def test_every_pattern_set_delivers_the_same_total_excitation_energy(binary):
    sets = {"random": _encoder(n=8, d=4, init="random"), "hadamard": _encoder(n=8, d=4, init="hadamard"),
            "uniform": _encoder(n=8, d=4, init="uniform"), "fourier": _encoder(n=8, d=4, param="fourier"),
            "learned": _learned(_encoder(n=8, d=4, init="random", seed=3))}
    raw = {}
    for name, enc in sets.items():
        h = enc.patterns(binary=binary).detach()
        assert float(h.mean(dim=(1, 2)).sum()) == pytest.approx(8 * 0.5, rel=1e-5), name
        raw[name] = float(enc.illumination.transmission(binary).detach().mean(dim=(1, 2)).sum())
        # the excitation PSF (unit sum, circular over the period) keeps the dose
        blurred = blur_periodic(h, torch.as_tensor(gaussian_psf(0.5, 0.488, 0.1), dtype=torch.float32))
        assert float(blurred.mean(dim=(1, 2)).sum()) == pytest.approx(8 * 0.5, rel=1e-5), name
    # without the exposure factor the sets differ (all on: ~1.5–2× the light of a random set)
    on = 1.0 if binary else 1 / (1 + math.exp(-1))  # soft at m = 1: sigmoid(1) of the ±1 logits
    assert raw["uniform"] == pytest.approx(8 * on, rel=1e-6) and raw["uniform"] > 1.4 * raw["random"]


def test_sum_pooling_conserves_the_emitted_photons():
    enc = _encoder(n=3, d=8, k=2, ex=GAUSS_EX).eval()
    assert float(enc.excitation_psf.sum()) == pytest.approx(1.0, abs=1e-6)
    x = _specimen((2, 48, 80))
    ex = enc.excitation().detach().numpy()  # (T, P, P)
    tiled = np.tile(ex, (1, 3, 5))[:, :48, :80]
    emitted = (x.numpy()[:, None] * tiled[None]).sum(axis=(-2, -1))
    meas = enc(x).detach().numpy()
    assert meas.shape == (2, 3, 6, 10) and meas.dtype == np.float32
    np.testing.assert_allclose(meas.sum(axis=(-2, -1)), emitted, rtol=1e-5)
    # with an emission PSF the photons are only moved: a specimen dark near the edges keeps its total
    enc_em = _encoder(n=3, d=8, k=2, ex=GAUSS_EX, em=GAUSS_EM).eval()
    assert float(enc_em.emission_psf.sum()) == pytest.approx(1.0, abs=1e-6)
    x_in = torch.zeros(2, 48, 80)
    x_in[:, 8:40, 8:72] = x[:, 8:40, 8:72]
    emitted_in = (x_in.numpy()[:, None] * tiled[None]).sum(axis=(-2, -1))
    np.testing.assert_allclose(enc_em(x_in).detach().numpy().sum(axis=(-2, -1)), emitted_in, rtol=1e-4)


# --- sharpness, binary deployment, learning -------------------------------------------------------
def test_sharpness_schedule_only_increases():
    sched = SharpnessSchedule(start=1.0, end=64.0, steps=100)
    values = [sched.value(s) for s in range(0, 130, 5)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(64.0)
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert sched.value(50) == pytest.approx(8.0)  # geometric: the half-way sharpness is sqrt(1·64)
    with pytest.raises(ValueError, match="decreases"):
        SharpnessSchedule(start=8.0, end=1.0, steps=10)
    enc = _encoder()
    assert sched.apply(enc, 100) == pytest.approx(64.0) and float(enc.sharpness) == pytest.approx(64.0)
    assert "illumination.sharpness" in enc.state_dict()
    with pytest.raises(ValueError, match="only become sharper"):
        sched.apply(enc, 10)  # the authors' Algorithm 1 reset m: refused


def test_soft_patterns_become_the_binary_ones_at_large_sharpness():
    enc = _encoder(n=4, d=8, k=2)
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(enc.illumination.logits.shape, generator=gen)
    with torch.no_grad():  # logits at least 0.01 away from the threshold
        enc.illumination.logits.copy_(torch.sign(noise) * (0.01 + noise.abs()))
    binary = enc.illumination.transmission(binary=True)
    gaps = []
    for m in (1.0, 10.0, 100.0, 3000.0):
        enc.set_sharpness(m)
        gaps.append(float((enc.illumination.transmission(binary=False) - binary).abs().max().detach()))
    assert all(b < a for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] < 1e-6  # sigmoid(3000·0.01) = 1 − 1e-13
    x = _specimen((1, 32, 32))
    np.testing.assert_allclose(enc(x, binary=False).detach().numpy(), enc(x, binary=True).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_evaluation_and_deployment_use_exactly_binary_patterns():
    enc = _encoder(n=6, d=4, k=2, seed=2)
    _learned(enc, steps=3)  # logits no longer ±1
    enc.eval()
    h = enc.patterns()
    e = float(enc.illumination.exposure(enc.illumination.transmission(binary=True)))
    on = h > 0
    assert torch.equal(h, on.float() * e)  # exactly {0, e}
    assert torch.equal(h, enc.patterns(binary=True))
    x = _specimen((1, 16, 24))
    assert torch.equal(enc(x), enc(x, binary=True))
    enc.train()
    soft = enc.patterns()
    assert not torch.equal(soft, h) and float(soft.min().detach()) > 0  # training: soft
    assert torch.equal(enc(x, binary=True), enc.eval()(x))


def test_pattern_learning_is_on_by_default_and_can_be_frozen():
    enc = _encoder()
    assert enc.illumination.logits.requires_grad  # the authors' lr_H = 0 default disabled it
    before = enc.patterns(binary=True).clone()
    _learned(enc, steps=20)
    assert not torch.equal(enc.patterns(binary=True), before)
    fourier = _encoder(param="fourier")
    before = fourier.patterns(binary=True).clone()
    _learned(fourier, steps=20)  # Adam on the complex spectrum
    assert not torch.equal(fourier.patterns(binary=True), before)
    frozen = FluorescenceEncoder(FluorescenceEncoderConfig(patterns=PatternConfig(learnable=False),
                                                           detector={"bin_px": 4}))
    assert not frozen.illumination.logits.requires_grad


def test_fourier_parametrisation_starts_from_the_same_binary_patterns():
    spatial = _encoder(n=4, d=8, param="spatial", seed=9)
    fourier = _encoder(n=4, d=8, param="fourier", seed=9)
    assert fourier.illumination.logits.is_complex()
    assert torch.equal(spatial.patterns(binary=True), fourier.patterns(binary=True))
    torch.testing.assert_close(spatial.patterns(binary=False), fourier.patterns(binary=False),
                               rtol=1e-5, atol=1e-6)


# --- noise ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["exact", "differentiable"])
@pytest.mark.parametrize("photons,background,read_noise", [(40.0, 3.0, 2.0), (400.0, 0.0, 0.0)])
def test_counts_are_poisson_plus_read_noise(mode, photons, background, read_noise):
    enc = _encoder(n=2, d=4, init="uniform", photons_per_unit=photons, background_photons=background,
                   read_noise_e=read_noise).eval()
    x = _specimen((6, 128, 128), seed=4) * 0.25  # λ varies from site to site
    clean = enc(x)
    lam = photons * clean + background
    counts = enc(x, mode, torch.Generator().manual_seed(11)) * photons + background
    resid = ((counts - lam) / torch.sqrt(lam + read_noise ** 2)).flatten().double()
    n = resid.numel()
    assert float(resid.mean()) == pytest.approx(0.0, abs=5 / math.sqrt(n))
    assert float(resid.var()) == pytest.approx(1.0, abs=5 * math.sqrt(2 / n) + 0.01)
    # on a uniform specimen: the plain mean and variance of the counts are λ and λ + σ²
    flat = torch.full((8, 64, 64), 0.1)
    lam0 = float(photons * enc(flat)[0, 0, 0, 0] + background)
    c = (enc(flat, mode, torch.Generator().manual_seed(12)) * photons + background).flatten().double()
    var = lam0 + read_noise ** 2
    assert float(c.mean()) == pytest.approx(lam0, abs=5 * math.sqrt(var / c.numel()))
    assert float(c.var()) == pytest.approx(var, rel=5 * math.sqrt(2 / c.numel()) + 0.01)
    if mode == "exact" and read_noise == 0:
        assert torch.allclose(c, c.round(), atol=1e-3)  # whole photons


def test_noise_is_seeded_and_absent_without_a_photon_scale():
    enc = _encoder(photons_per_unit=50.0, read_noise_e=1.0).eval()
    x = _specimen((1, 16, 16))
    a = enc(x, "exact", torch.Generator().manual_seed(1))
    assert torch.equal(a, enc(x, "exact", torch.Generator().manual_seed(1)))
    assert not torch.equal(a, enc(x, "exact", torch.Generator().manual_seed(2)))
    assert torch.equal(_encoder().eval()(x, "exact"), _encoder().eval()(x))
    with pytest.raises(ValueError, match="unknown noise mode"):
        enc(x, "gaussian")


def test_differentiable_noise_passes_gradients_to_the_pattern_logits():
    enc = _encoder(n=4, d=4, photons_per_unit=20.0, background_photons=0.0, read_noise_e=1.0).train()
    x = torch.zeros(2, 32, 32)
    x[:, 8:24, 8:24] = _specimen((2, 16, 16))  # dark background: λ = 0 in whole sites
    meas = enc(x, "differentiable", torch.Generator().manual_seed(0))
    meas.square().mean().backward()
    grad = enc.illumination.logits.grad
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
    assert float(grad.abs().max()) < 1e3  # bounded where λ → 0 (variance floor of one photon)


# --- PSFs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("na,wavelength_um", [(0.75, 0.52), (1.4, 0.67)])
def test_gaussian_psf_has_unit_sum_and_the_diffraction_limited_width(na, wavelength_um):
    pixel = 0.01
    psf = gaussian_psf(na, wavelength_um, pixel)
    assert psf.sum() == pytest.approx(1.0, abs=1e-12)
    assert _fwhm_um(psf, pixel) == pytest.approx(0.51 * wavelength_um / na, abs=0.015)  # µm
    # a coarse grid keeps unit sum (the blur never adds or removes light)
    assert gaussian_psf(na, wavelength_um, 0.325).sum() == pytest.approx(1.0, abs=1e-12)


def test_user_psf_files_are_normalised_and_resampled(tmp_path):
    fine = 0.05
    psf = 383.0 * gaussian_psf(0.5, 0.6, fine)  # the authors' .mat PSFs summed to ~383
    assert psf.sum() == pytest.approx(383.0)
    np.save(tmp_path / "psf.npy", psf)
    tifffile.imwrite(tmp_path / "psf.tif", psf.astype(np.float32))
    for name in ("psf.npy", "psf.tif"):
        same = read_psf_file(tmp_path / name, fine, fine)
        assert same.sum() == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(same, psf / psf.sum(), rtol=1e-5, atol=1e-12)
    coarse = read_psf_file(tmp_path / "psf.npy", fine, 0.1)  # resampled to 0.1 µm pixels
    assert coarse.sum() == pytest.approx(1.0, abs=1e-9) and coarse.shape[0] % 2 == 1
    assert _fwhm_um(coarse, 0.1) == pytest.approx(_fwhm_um(psf, fine), abs=0.03)  # same width in µm
    cfg = FluorescenceEncoderConfig(
        pixel_size_um=0.1, emission=PSFConfig(kind="file", path=str(tmp_path / "psf.npy"),
                                              file_pixel_size_um=fine), detector={"bin_px": 4})
    enc = FluorescenceEncoder(cfg)
    assert float(enc.emission_psf.sum()) == pytest.approx(1.0, abs=1e-5)
    np.save(tmp_path / "even.npy", np.ones((4, 4)))
    with pytest.raises(ValueError, match="odd sides"):
        read_psf_file(tmp_path / "even.npy", fine, fine)
    np.save(tmp_path / "neg.npy", -np.ones((3, 3)))
    with pytest.raises(ValueError, match="negative"):
        read_psf_file(tmp_path / "neg.npy", fine, fine)
    with pytest.raises(ValueError, match=".npy or .tif"):
        (tmp_path / "psf.mat").write_bytes(b"")
        read_psf_file(tmp_path / "psf.mat", fine, fine)


def test_the_convolutions_are_true_convolutions_with_the_right_edges():
    gen = torch.Generator().manual_seed(3)
    psf = torch.rand(5, 3, generator=gen, dtype=torch.float64)  # asymmetric: orientation matters
    psf /= psf.sum()
    pattern = torch.rand(2, 8, 8, generator=gen, dtype=torch.float64)
    expected = np.stack([ndimage.convolve(p, psf.numpy(), mode="wrap") for p in pattern.numpy()])
    np.testing.assert_allclose(blur_periodic(pattern, psf).numpy(), expected, atol=1e-12)
    big = torch.rand(11, 11, generator=gen, dtype=torch.float64)  # wider than the period: aliases add
    big /= big.sum()
    tiled = np.tile(pattern[0].numpy(), (3, 3))
    expected = ndimage.convolve(tiled, big.numpy(), mode="wrap")[8:16, 8:16]
    np.testing.assert_allclose(blur_periodic(pattern, big)[0].numpy(), expected, atol=1e-12)
    image = torch.rand(3, 12, 9, generator=gen, dtype=torch.float64)
    expected = np.stack([ndimage.convolve(i, psf.numpy(), mode="mirror") for i in image.numpy()])
    np.testing.assert_allclose(blur_reflect(image, psf).numpy(), expected, atol=1e-12)


# --- field size -----------------------------------------------------------------------------------
def test_any_field_size_gives_the_same_measurement_per_site():
    d, k = 4, 2
    p = d * k
    big_x = _specimen((1, 3 * p, 5 * p), seed=7)
    small_x = big_x[:, : 2 * p, : 2 * p]
    sites = 2 * p // d
    enc = _encoder(n=3, d=d, k=k, ex=GAUSS_EX).eval()
    torch.testing.assert_close(enc(big_x)[..., :sites, :sites], enc(small_x), rtol=1e-5, atol=1e-6)
    # with an emission PSF the sites beyond its reach from the small field's cut edges agree
    enc_em = _encoder(n=3, d=d, k=k, ex=GAUSS_EX, em=GAUSS_EM).eval()
    reach = -(-(enc_em.emission_psf.shape[0] // 2) // d)  # in sites
    inner = sites - reach
    assert inner >= 2
    torch.testing.assert_close(enc_em(big_x)[..., :inner, :inner], enc_em(small_x)[..., :inner, :inner],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 4"):
        enc(_specimen((1, 30, 32)))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        enc(_specimen((30, 32)))


# --- physics round trip ---------------------------------------------------------------------------
def test_a_complete_hadamard_set_determines_the_field_exactly():
    d = 4
    enc = _encoder(n=d * d, d=d, init="hadamard").eval()  # T = P², compression 1
    h = hadamard_patterns(d, d * d) * 2 - 1
    np.testing.assert_array_equal(h.reshape(d * d, -1) @ h.reshape(d * d, -1).T, d * d * np.eye(d * d))
    x = _specimen((2, 3 * d, 5 * d), seed=8).double()
    meas = enc(x.float()).double()  # (2, T, 3, 5)
    a = enc.patterns().double().reshape(d * d, d * d)  # row t: e·H_t over one site
    sites = meas.permute(0, 2, 3, 1).reshape(-1, d * d).T  # (T, sites)
    solved = torch.linalg.solve(a, sites).T.reshape(2, 3, 5, d, d).permute(0, 1, 3, 2, 4).reshape(x.shape)
    torch.testing.assert_close(solved, x, rtol=0, atol=1e-5)


# --- the authors' O1: pattern gradients accumulated over two decoder states -------------------------
def test_pattern_gradient_is_the_gradient_of_the_current_loss_only():
    d, n = 4, 4
    enc = _encoder(n=n, d=d, seed=1).train()
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Conv2d(n, d * d, 1), torch.nn.PixelShuffle(d))
    params = list(enc.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=0.05)
    x = _specimen((2, 16, 16))

    def loss_now():
        return (decoder(enc(x)) - x[:, None]).abs().mean()

    logits = enc.illumination.logits
    for _ in range(2):  # our step: zero all gradients, one backward, one step
        expected = torch.autograd.grad(loss_now(), logits)[0]
        opt.zero_grad(set_to_none=True)
        loss_now().backward()
        torch.testing.assert_close(logits.grad, expected, rtol=1e-6, atol=1e-9)
        opt.step()
    # the authors' step (decoder step, then a second forward/backward for H without zeroing) differs
    opt.zero_grad(set_to_none=True)
    loss_now().backward()
    opt.step()
    loss_now().backward()
    current = torch.autograd.grad(loss_now(), logits)[0]
    assert float((logits.grad - current).abs().max()) > 0.1 * float(current.abs().max())
