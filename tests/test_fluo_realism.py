"""The generator's optional realism terms (chromatin texture, PSF wing, out-of-focus nuclei) and the camera
reference: each checked against what its option promises; the default fields untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from napari_dmicro.cli import main as cli_main
from napari_dmicro.io import read_fluorescence, read_image
from napari_dmicro.phantoms import (
    FLUO_STYLES,
    FluorescencePhantomConfig,
    camera_reference,
    chromatin_texture,
    make_fluorescence_field,
)
from napari_dmicro.phantoms.fluorescence import _out_of_focus

#: a bare rendering: no blur, background, haze or illumination change, so the image is the object / its maximum
BARE = {"blur_um": (0.0, 0.0), "background": (0.0, 0.0), "haze": (0.0, 0.0), "illumination_variation": 0.0,
        "size_px": (256, 256), "pixel_size_um": 0.5}


def _radial_power(z: np.ndarray, pixel_size_um: float):
    w = np.outer(np.hanning(z.shape[0]), np.hanning(z.shape[1]))
    p = np.abs(np.fft.fft2(z * w)) ** 2
    f = np.hypot(np.fft.fftfreq(z.shape[0], pixel_size_um)[:, None], np.fft.fftfreq(z.shape[1], pixel_size_um))
    return f, p


def test_chromatin_texture_is_unit_std_band_limited_with_the_stated_slope():
    ps, band = 0.25, (1.0, 8.0)  # periods, µm: frequencies 0.125 … 1.0 cycles/µm
    z = chromatin_texture(np.random.default_rng(3), (512, 512), ps, band, 3.0)
    assert abs(float(z.mean())) < 1e-6 and float(z.std()) == pytest.approx(1.0, rel=1e-5)
    f, p = _radial_power(z - z.mean(), ps)
    inside = (f >= 0.8 / band[1]) & (f <= 1.2 / band[0])
    assert p[inside].sum() / p[f > 0].sum() > 0.97  # the power is in the band (window leakage aside)
    assert p[f > 1.5 / band[0]].sum() / p.sum() < 0.005  # nothing finer than the shortest period
    # power density ∝ f^-3 in the band: log-log slope of the ring means between 0.2 and 0.8 cycles/µm
    edges = np.geomspace(0.2, 0.8, 7)
    centres = np.sqrt(edges[1:] * edges[:-1])
    dens = [p[(f >= lo) & (f < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    slope = np.polyfit(np.log(centres), np.log(dens), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.4)
    with pytest.raises(ValueError, match="two pixels"):
        chromatin_texture(np.random.default_rng(0), (64, 64), 0.5, (0.5, 4.0), 3.0)


def test_chromatin_amplitude_is_the_relative_std_of_the_nuclei():
    amp = 0.2
    plain = make_fluorescence_field(4, 0, config=FluorescencePhantomConfig(**BARE))
    textured = make_fluorescence_field(4, 0, config=FluorescencePhantomConfig(**BARE, chromatin_amplitude=(amp, amp)))
    assert np.array_equal(plain.labels, textured.labels)  # the same nuclei: the option has its own random stream
    inside = plain.labels > 0
    ratio = textured.image[inside] / plain.image[inside]  # (1 + amp · texture) up to the two maxima
    assert float(np.std(ratio / ratio.mean())) == pytest.approx(amp, rel=0.15)
    assert np.all(textured.image[~inside] == 0)  # chromatin only inside nuclei


def test_psf_wing_moves_the_stated_fraction_of_light_out_of_the_nuclei():
    wing, sigma_um = 0.3, 1.5
    plain = make_fluorescence_field(6, 1, config=FluorescencePhantomConfig(**BARE))
    winged = make_fluorescence_field(6, 1, config=FluorescencePhantomConfig(**BARE, psf_wing=(wing, wing),
                                                                            psf_wing_um=sigma_um))
    outside = plain.labels == 0
    spread = ndimage.gaussian_filter(plain.image.astype(np.float64), sigma_um / 0.5, mode="reflect", truncate=4.0)
    expected = wing * spread[outside].sum() / spread.sum()  # energy conserving: (1 − w)·obj + w·G⊛obj
    measured = winged.image[outside].sum() / winged.image.sum()
    assert plain.image[outside].sum() == 0
    assert measured == pytest.approx(expected, rel=0.01)
    assert 0.02 < measured < wing


def test_out_of_focus_nuclei_cover_the_stated_area_smoothly_and_unlabelled():
    cfg = FluorescencePhantomConfig(**{**BARE, "size_px": (384, 384)}, out_of_focus_cover=(0.1, 0.1),
                                    out_of_focus_blur_um=(3.0, 3.0), out_of_focus_brightness=(0.5, 0.5))
    light = _out_of_focus(np.random.default_rng(2), cfg, cfg.size_px, 1.0)
    # energy of blurred discs of brightness 0.5 over 10 % of the field (less what falls off the edges)
    assert light.sum() / (0.1 * light.size * 0.5) == pytest.approx(0.9, abs=0.15)
    f, p = _radial_power(light - light.mean(), 0.5)  # blurred by σ = 3 µm: nothing finer than ~2 µm
    assert p[f > 0.5].sum() / p[f > 0].sum() < 1e-4
    plain = make_fluorescence_field(9, 0, config=FluorescencePhantomConfig(**BARE))
    hazy = make_fluorescence_field(9, 0, config=cfg.model_copy(update={"size_px": (256, 256)}))
    assert np.array_equal(plain.labels, hazy.labels)
    inside = plain.labels > 0
    assert plain.image[~inside].sum() == 0
    # light where no nucleus is labelled: on average brightness × cover = 0.05 of a typical nucleus
    assert hazy.image[~inside].mean() / np.median(hazy.image[inside]) == pytest.approx(0.05, abs=0.015)


def test_hard_styles_keep_the_nuclei_and_are_seeded():
    assert not any(FluorescencePhantomConfig.style(s).realism for s in ("sparse", "confluent", "mixed", "dsb"))
    assert all(FluorescencePhantomConfig.style(s).realism for s in ("hard", "dsb-hard"))
    for base, hard in (("mixed", "hard"), ("dsb", "dsb-hard")):
        assert {k: v for k, v in FLUO_STYLES[hard].items() if k in FLUO_STYLES[base]} == FLUO_STYLES[base]
        a = make_fluorescence_field(12, 1, style=base, size_px=160)
        b = make_fluorescence_field(12, 1, style=hard, size_px=160)
        again = make_fluorescence_field(12, 1, style=hard, size_px=160)
        other = make_fluorescence_field(12, 2, style=hard, size_px=160)
        assert np.array_equal(a.labels, b.labels)  # same nuclei; only the rendering differs
        assert np.abs(a.image - b.image).mean() > 0.005
        assert np.array_equal(b.image, again.image)
        assert np.abs(other.image - b.image).mean() > 0.01
        assert b.image.min() >= 0 and b.image.max() == pytest.approx(1.0)


def test_camera_reference_has_poisson_plus_read_noise_in_image_units():
    photons, read = 400.0, 5.0
    image = np.full((200, 200), 0.5, np.float32)
    image[0, 0] = 1.0  # the maximum: photons_at_max
    noisy = camera_reference(image, photons, read, seed=1)[1:, :].ravel()
    lam = 0.5 * photons
    var = (lam + read ** 2) / photons ** 2  # image units: counts / photons_at_max
    n = noisy.size
    assert abs(noisy.mean() - 0.5) < 5 * math.sqrt(var / n)
    assert noisy.var() == pytest.approx(var, rel=5 * math.sqrt(2 / n))
    assert np.array_equal(noisy, camera_reference(image, photons, read, seed=1)[1:, :].ravel())
    with pytest.raises(ValueError, match="photons_at_max"):
        camera_reference(image, 0.0)


def test_cli_phantom_hard_style(tmp_path):
    out = tmp_path / "hard"
    assert cli_main(["phantom", "--modality", "fluorescence", "--style", "dsb-hard", "--out", str(out),
                     "--count", "1", "--size", "96", "--seed", "3"]) == 0
    stored = read_fluorescence(out / "nuclei_0000.zarr")
    assert read_image(out / "nuclei_0000.zarr").attrs["style"] == "dsb-hard"
    assert np.array_equal(stored.labels, make_fluorescence_field(3, 0, style="dsb-hard", size_px=96).labels)
