"""Flat-field normalisation (DetectorConfig.flat_field): the measurement does not depend on the field's
global amplitude (the illumination), the flat is the blank field's image through the same optics, and
the option is off by default (the shipped models' measurements are unchanged)."""

import numpy as np
import pytest
import torch

import napari_dmicro as dm
from napari_dmicro.optics.acquisition import Acquisition, illumination_intensity
from napari_dmicro.system import Microscope, SystemConfig


def _flat_system(tiny_system, optics: str, flat: bool = True) -> SystemConfig:
    system = tiny_system(optics)
    detector = system.encoder.detector.model_copy(update={"flat_field": flat})
    return SystemConfig(encoder=system.encoder.model_copy(update={"detector": detector}), decoder=system.decoder)


def _microscope(tiny_system, optics: str, flat: bool = True) -> Microscope:
    torch.manual_seed(0)
    return Microscope(_flat_system(tiny_system, optics, flat), generator=torch.Generator().manual_seed(0)).eval()


def _cell_field(shape=(128, 128), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    phase = 3.0 * np.clip(1 - ((yy - 60) ** 2 + (xx - 70) ** 2) / 30.0 ** 2, 0, None) + rng.normal(0, 0.05, shape)
    amp = 1 + rng.normal(0, 0.05, shape)
    return (amp * np.exp(1j * phase)).astype(np.complex64)


@pytest.mark.parametrize("optics", ["lff", "d2nn"])
@pytest.mark.parametrize("scale", [0.25, 4.0])
def test_amplitude_scale_leaves_the_noise_free_measurement_unchanged(tiny_system, optics, scale):
    model = _microscope(tiny_system, optics)
    field = _cell_field()
    base = np.asarray(dm.simulate(field, model))
    scaled = np.asarray(dm.simulate(field * np.float32(scale), model))
    np.testing.assert_allclose(scaled, base, rtol=2e-5, atol=1e-6)
    # the batch path (training crops) too
    acq = Acquisition(model.encoder)
    x = torch.from_numpy(field[None, :64, :64])
    with torch.no_grad():
        np.testing.assert_allclose(acq(x * scale).numpy(), acq(x).numpy(), rtol=2e-5, atol=1e-6)
    # without the flat field the camera reads the absolute intensity (a² times brighter)
    plain = _microscope(tiny_system, optics, flat=False)
    raw, raw_scaled = np.asarray(dm.simulate(field, plain)), np.asarray(dm.simulate(field * np.float32(scale), plain))
    np.testing.assert_allclose(raw_scaled, raw * scale ** 2, rtol=1e-4, atol=1e-6)


def test_the_flat_of_a_fourier_filter_is_its_dc_transmission(tiny_system):
    """A plane wave through a 4f filter is a plane wave times t(0): the flat is |t(0)|² everywhere."""
    model = _microscope(tiny_system, "lff")
    optics = model.encoder.optics
    n = optics.config.filter_size_px
    with torch.no_grad():
        dc = optics.transmission()[n // 2, n // 2]
        flat = Acquisition(model.encoder).flat_camera()
    assert flat.shape == (1, 1)
    assert float(flat) == pytest.approx(float(dc.abs() ** 2), rel=1e-4)


def test_a_blank_field_measures_one_and_the_record_says_so(tiny_system):
    for optics in ("lff", "d2nn"):
        model = _microscope(tiny_system, optics)
        meas = dm.simulate(np.full((128, 128), 2.0, np.complex64), model)
        np.testing.assert_allclose(np.asarray(meas), 1.0, rtol=1e-4)
        assert meas.record.flat_field_corrected
    assert not dm.simulate(_cell_field(), _microscope(tiny_system, "lff", flat=False)).record.flat_field_corrected


def test_the_flat_keeps_its_gradient_to_the_optics(tiny_system):
    model = _microscope(tiny_system, "lff").train()
    flat = Acquisition(model.encoder).flat_camera()
    flat.sum().backward()
    assert float(model.encoder.optics.phase_rad.grad.abs().sum()) > 0


def test_noise_is_on_the_raw_exposure(tiny_system):
    """The photon budget refers to the raw exposure: after division by the flat, a blank field's
    measurement has relative std 1/sqrt(K) (K photons at the brightest = every pixel)."""
    model = _microscope(tiny_system, "lff")
    meas = dm.simulate(np.ones((256, 256), np.complex64), model, photons=1e4, seed=3)
    image = np.asarray(meas)
    assert float(image.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(image.std()) == pytest.approx(0.01, rel=0.15)


def test_illumination_is_the_median_intensity_and_scales_exactly():
    field = _cell_field((300, 200))
    assert illumination_intensity(field) == pytest.approx(float(np.median(np.abs(field) ** 2)), rel=1e-6)
    assert illumination_intensity(field * np.float32(3)) == pytest.approx(9 * illumination_intensity(field),
                                                                          rel=1e-5)


def test_reconstruction_of_a_flat_field_model_ignores_the_illumination(tiny_system):
    model = _microscope(tiny_system, "lff")
    field = _cell_field()
    base = dm.reconstruct(dm.simulate(field, model), model)
    for scale in (0.25, 4.0):
        other = dm.reconstruct(dm.simulate(field * np.float32(scale), model), model)
        assert float(np.sqrt(np.mean((other - base) ** 2))) < 0.02


def test_a_measurement_without_the_flat_is_refused_by_a_flat_field_model(tiny_system):
    flat_model, plain = _microscope(tiny_system, "lff"), _microscope(tiny_system, "lff", flat=False)
    with pytest.raises(ValueError, match="flat"):
        dm.reconstruct(dm.simulate(_cell_field(), plain), flat_model)
