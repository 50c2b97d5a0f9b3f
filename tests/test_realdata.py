"""Measured fields (../shared/realdata): resampled to a model's grid, then through the API and the CLI."""


import numpy as np
import pytest

import napari_dmicro as dm
from napari_dmicro.cli import main
from napari_dmicro.io.fields import read_image
from napari_dmicro.io.resample import resample_amplitude_phase, resample_field, set_background_phase
from napari_dmicro.model_grid import model_window_px, plan_grid


def test_resampling_keeps_a_tilted_plane_wave_and_the_field_of_view():
    # a tilt of 1.3 rad/µm over 40 µm wraps ~8 times; resampled from 0.139 µm to 0.3164 µm
    px, target = 0.139, 0.3164
    x = np.arange(288) * px
    phase = 1.3 * x[None, :] + 0.4 * x[:, None]
    field = (0.9 * np.exp(1j * phase)).astype(np.complex64)
    out = resample_field(field, px, target)
    assert out.shape == (round(288 * px / target),) * 2
    got = np.unwrap(np.unwrap(np.angle(out), axis=1), axis=0)
    interior = (slice(3, -3), slice(3, -3))
    slope_x = np.diff(got, axis=1)[interior].mean() / target
    slope_y = np.diff(got, axis=0)[interior].mean() / target
    assert slope_x == pytest.approx(1.3, rel=1e-3) and slope_y == pytest.approx(0.4, rel=1e-3)
    np.testing.assert_allclose(np.abs(out), 0.9, rtol=1e-5)
    # same pixel size: unchanged
    np.testing.assert_allclose(resample_field(field, px, px), field, atol=1e-5)


def test_resampling_refuses_bad_input_with_the_fix():
    with pytest.raises(ValueError, match="complex"):
        resample_field(np.ones((8, 8)), 0.1, 0.3)
    with pytest.raises(ValueError, match="positive pixel size"):
        resample_field(np.ones((8, 8), np.complex64), 0.0, 0.3)
    with pytest.raises(ValueError, match="same shape"):
        resample_amplitude_phase(np.ones((8, 8)), np.ones((8, 9)), 0.1, 0.3)


def test_background_convention_changes_only_a_global_phase_the_camera_cannot_see():
    rng = np.random.default_rng(0)
    field = np.exp(1j * (2.0 + rng.normal(0, 0.05, (64, 64)))).astype(np.complex64)
    field[20:40, 20:40] *= np.exp(1j * 1.5)  # a "cell"
    shifted = set_background_phase(field)
    assert np.median(np.angle(shifted[:3])) == pytest.approx(0.15, abs=0.03)
    ratio = shifted / field
    np.testing.assert_allclose(ratio, ratio[0, 0], atol=1e-5)  # one global factor
    model = dm.load_model("lff-x64")
    np.testing.assert_allclose(dm.simulate(shifted, model), dm.simulate(field, model), rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def hl60_field(realdata):
    field = np.load(realdata / "nrefocus_hl60_qlsi_field" / "HL60_field_complex128.npy")
    field = resample_field(field / np.median(np.abs(field)), 0.139, 0.3164)  # wrapped source: unwrapped first
    return set_background_phase(field)  # the models' convention: background at 0.15 rad


def test_a_measured_hl60_field_goes_through_simulate_reconstruct_evaluate(hl60_field):
    assert hl60_field.shape == (49, 49)  # the measured 112² px at 139 nm = 15.6 µm
    model = dm.load_model("lff-x64")
    meas = dm.simulate(hl60_field, model, photons=1e4, read_noise=6.0, seed=0)
    # smaller than the decoder's window: padded (mirrored, the encoder's rule) to the window + the optics' context
    padded = plan_grid(hl60_field, model).padded_shape
    assert min(padded) >= model_window_px(model) > 49
    assert meas.shape == tuple(-(-n // 8) for n in padded) and meas.dtype == np.float32
    assert meas.record.source_field_shape == (49, 49)
    phase = dm.reconstruct(meas, model)
    assert phase.shape == hl60_field.shape and np.isfinite(phase).all()
    report = dm.evaluate(phase, hl60_field)
    assert np.isfinite(report.psnr_db) and 0 < report.ssim <= 1 and report.ssim_map.shape == hl60_field.shape


def test_the_cli_runs_on_a_measured_field(hl60_field, tmp_path, capsys):
    np.save(tmp_path / "hl60.npy", hl60_field)
    assert main(["simulate", str(tmp_path / "hl60.npy"), "-o", str(tmp_path / "m.zarr"), "--model", "lff-x64",
                 "--pixel-size-um", "0.3164", "--wavelength-um", "0.6328"]) == 0
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "p.zarr"), "--model", "lff-x64"]) == 0
    assert main(["evaluate", str(tmp_path / "p.zarr"), "--reference", str(tmp_path / "hl60.npy")]) == 0
    assert '"psnr_db"' in capsys.readouterr().out
    phase = read_image(tmp_path / "p.zarr")
    assert phase.shape == (49, 49) and phase.pixel_size_um == pytest.approx(0.3164)


@pytest.mark.parametrize("name,margin_db", [("lff-x64", 4.0), ("d2nn-x64", 1.0)])
def test_a_measured_cell_in_a_field_of_view_is_reconstructed_better_than_a_flat_guess(hl60_field, name, margin_db):
    # the cell in the middle of 256² of empty background, as a microscope with a larger field sees it;
    # measured (benchmarks/bench_realdata.py): lff-x64 20.1 dB, d2nn-x64 14.3 dB, flat guess 12.3 dB
    side = 256
    fov = np.full((side, side), np.exp(1j * 0.15), np.complex64)
    r0, c0 = (side - 49) // 2, (side - 49) // 2
    fov[r0:r0 + 49, c0:c0 + 49] = hl60_field
    model = dm.load_model(name)
    phase = dm.reconstruct(dm.simulate(fov, model), model)[r0:r0 + 49, c0:c0 + 49]
    report = dm.evaluate(phase, hl60_field)
    flat = dm.evaluate(np.full((49, 49), 0.15, np.float32), hl60_field)
    assert report.psnr_db > flat.psnr_db + margin_db
