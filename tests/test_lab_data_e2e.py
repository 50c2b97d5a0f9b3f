"""Issue 11's route on the command line: a measured off-axis hologram (../shared/realdata, qpimage's HL60 cell)
→ ``dmicro import`` → ``dmicro simulate`` → ``dmicro reconstruct`` → ``dmicro evaluate``, with the sample's
0.107 µm pixels and 633 nm recorded at every step and the printed metrics recomputed here from the stores.

Nothing is asserted about the model's quality (the shipped models are being retrained): only scale,
provenance and that the numbers printed are the numbers of the arrays written."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_dmicro.cli import main

PIXEL_UM, WAVELENGTH_UM = 0.107, 0.633  # PROVENANCE.txt of qpimage_hl60_oah_hologram
MODEL = "lff-x64"
MODEL_GRID_UM, MODEL_CAMERA_UM = 0.3164, 0.3164 * 8  # lff-x64: 0.3164 µm object grid, 8×8 binning


def test_measured_hologram_to_evaluation_keeps_the_sample_scale_end_to_end(tmp_path, capsys, realdata):
    from napari_dmicro.io.fields import read_field, read_image, read_measurement

    source = realdata / "qpimage_hl60_oah_hologram" / "hologram_cell.npz"
    with np.load(source) as npz:  # a hologram and its reference as two camera files, as a lab has them
        np.save(tmp_path / "hologram.npy", npz["data"])
        np.save(tmp_path / "background.npy", npz["bg_data"])
    field_path, meas_path, phase_path = tmp_path / "field.zarr", tmp_path / "meas.zarr", tmp_path / "phase.zarr"

    # 1. hologram → field, with the scale given (never guessed)
    assert main(["import", str(tmp_path / "hologram.npy"), "-o", str(field_path), "--pixel-size-um", str(PIXEL_UM),
                 "--wavelength-um", str(WAVELENGTH_UM), "--background", str(tmp_path / "background.npy")]) == 0
    out = capsys.readouterr().out
    assert "200×210 field (0.107 µm pixels, λ 0.633 µm" in out
    field = read_field(field_path)
    assert field.data.shape == (200, 210)
    assert field.pixel_size_um == pytest.approx(PIXEL_UM) and field.wavelength_um == pytest.approx(WAVELENGTH_UM)
    assert field.attrs["hologram_background_file"].endswith("background.npy")
    assert field.attrs["hologram_background"] == "reference hologram"
    field_data = np.asarray(field.data)
    assert np.ptp(np.unwrap(np.angle(field_data[100]))) > 3.0  # the cell is in it (≈ 5 rad nucleus)

    # 2. field → camera measurement through the shipped model: resampled to its grid, recorded
    assert main(["simulate", str(field_path), "-o", str(meas_path), "--model", MODEL]) == 0
    out = capsys.readouterr().out
    assert "200×210 px at 0.107 µm (from the file), λ 0.633 µm (from the file)" in out
    meas = read_measurement(meas_path)
    assert meas.pixel_size_um == pytest.approx(MODEL_CAMERA_UM, rel=1e-4)  # the camera's pitch at the sample
    assert meas.attrs["source_pixel_size_um"] == pytest.approx(PIXEL_UM)
    assert meas.attrs["source_wavelength_um"] == pytest.approx(WAVELENGTH_UM)
    assert list(meas.attrs["source_field_shape"]) == [200, 210]
    assert "0.107" in meas.attrs["grid_adaptation"] and "0.3164" in meas.attrs["grid_adaptation"]
    # 633 nm against the model's 632.8 nm: within the 0.1 % the grid rule (model_grid.REL_TOL) takes as one λ
    assert meas.attrs["phase_scale"] == 1.0 and meas.attrs["source_wavelength_um"] == pytest.approx(0.633)
    assert meas.attrs["source_field"] == str(field_path)

    # 3. measurement → phase map, back on the field's own 0.107 µm grid
    assert main(["reconstruct", str(meas_path), "-o", str(phase_path), "--model", MODEL]) == 0
    out = capsys.readouterr().out
    assert "phase written at 0.107 µm, λ 0.633 µm; back to the field's grid" in out
    phase = read_image(phase_path)
    assert phase.kind == "phase" and phase.data.shape == (200, 210)
    assert phase.pixel_size_um == pytest.approx(PIXEL_UM) and phase.wavelength_um == pytest.approx(WAVELENGTH_UM)
    assert phase.attrs["model"] == MODEL and phase.attrs["grid_adaptation"] == meas.attrs["grid_adaptation"]
    phase_data = np.asarray(phase.data, np.float64)
    assert np.isfinite(phase_data).all()

    # 4. evaluate against the field: the printed numbers are the arrays' numbers
    assert main(["evaluate", str(phase_path), "--reference", str(field_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(math.isfinite(report[k]) for k in ("psnr_db", "ssim", "offset_rad", "reference_background_rad"))
    assert 0.0 < report["ssim"] <= 1.0 and report["reference_convention"] == "background"
    # docs/physics.md convention, written out here: the reference is the field's phase relative to its
    # background, wrapped into [−0.5, 2π − 0.5) rad and scored with the background at 0.15 rad; the
    # prediction minus the median offset, both as φ/2π, the prediction clipped to [−0.35 rad, 2π]
    reference = (np.mod(np.angle(field_data).astype(np.float64) - report["reference_background_rad"] + 0.5,
                        2 * np.pi) - 0.5 + 0.15)
    offset = float(np.median(phase_data - reference))
    assert report["offset_rad"] == pytest.approx(offset, abs=2e-3)  # rad (the CLI's median: a fine histogram)
    prediction = np.clip((phase_data - report["offset_rad"]) / (2 * np.pi), -0.35 / (2 * np.pi), 1.0)
    mse = float(np.mean((prediction - reference / (2 * np.pi)) ** 2))
    assert report["psnr_db"] == pytest.approx(10 * math.log10(1.0 / mse), abs=0.05)  # dB
