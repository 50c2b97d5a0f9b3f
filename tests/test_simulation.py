"""simulate_measurement: validation, geometry of the camera, reproducible noise, tiled PhaseD2NN."""

import numpy as np
import pytest
import torch

from napari_dmicro.config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.optics import Encoder
from napari_dmicro.simulation import simulate_measurement, with_detector


def _encoder(compression=64, **det):
    cfg = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32),
                        detector=DetectorConfig(compression=compression, **det))
    return Encoder(cfg, generator=torch.Generator().manual_seed(0))


def _field(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (np.exp(1j * rng.uniform(0, 2 * np.pi, shape))).astype(np.complex64)


def test_camera_covers_the_largest_binnable_region_from_the_top_left():
    enc = _encoder()
    field = _field((100, 90))
    meas = simulate_measurement(field, enc)
    assert meas.data.shape == (12, 11) and meas.data.dtype == np.float32
    assert meas.object_region_px == (96, 88)
    assert meas.camera_pixel_size_um == pytest.approx(0.3164 * 8)
    # the optics see the whole field (mirrored beyond its edges); the camera covers the top-left 96×88
    with torch.no_grad():
        det = enc.full_field_detector(torch.from_numpy(field))[:96, :88]
        direct = enc.detector(det).numpy()
    np.testing.assert_allclose(meas.data, direct, rtol=1e-5, atol=1e-6)


def test_noise_is_seeded_and_follows_the_detector_config():
    enc = _encoder(max_photons=1e3, read_noise_e=6.0)
    field = _field((64, 64))
    a = simulate_measurement(field, enc, seed=1).data
    b = simulate_measurement(field, enc, seed=1).data
    c = simulate_measurement(field, enc, seed=2).data
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    enc_clean = Encoder(with_detector(enc.config, max_photons=None, read_noise_e=0.0))
    assert not enc_clean.config.detector.noisy
    enc_clean.load_state_dict(enc.state_dict())
    clean = simulate_measurement(field, enc_clean).data
    rel = np.abs(a - clean).mean() / clean.max()
    assert 1e-3 < rel < 0.1  # ~ 1/sqrt(1000) relative noise at the brightest pixel


@pytest.mark.parametrize("bad,match", [
    (np.ones((8, 8), np.float32), "real dtype"),
    (np.ones((2, 8, 8), np.complex64), "2-D"),
    (np.ones((0, 8), np.complex64), "empty"),
    (np.full((8, 8), np.nan + 0j, np.complex64), "NaN"),
    (np.ones((4, 4), np.complex64), "smaller than one camera pixel"),
])
def test_bad_fields_are_refused_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        simulate_measurement(bad, _encoder())


def test_phase_d2nn_images_the_field_tile_by_tile():
    cfg = EncoderConfig(optics=DiffractiveConfig(n_layers=2, n_neurons=32, pad_factor=2),
                        detector=DetectorConfig(compression=16))
    enc = Encoder(cfg, generator=torch.Generator().manual_seed(0))
    field = _field((70, 100))
    meas = simulate_measurement(field, enc)
    assert meas.object_region_px == (64, 96) and meas.data.shape == (16, 24)
    assert "tiled" in meas.attrs["acquisition"]
    with torch.no_grad():
        tile = enc(torch.from_numpy(field[32:64, 64:96])).numpy()
    np.testing.assert_allclose(meas.data[8:16, 16:24], tile, rtol=1e-5, atol=1e-6)
