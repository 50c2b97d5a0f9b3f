"""Scale is never guessed (issue 11, item 2): a field on another grid is resampled to the model's and back, another
wavelength is the same optical path at the model's wavelength, a small field sits alone in a dish of its own
background; what cannot be done is refused with the reason."""

from __future__ import annotations

import re

import numpy as np
import pytest

import napari_dmicro as dm
from napari_dmicro.cli import main
from napari_dmicro.io.fields import read_field, read_image, write_field
from napari_dmicro.io.resample import resample_image
from napari_dmicro.model_grid import model_window_px, plan_grid, plan_on_grid, to_model_grid

MODEL_PX, MODEL_WL = 0.3164, 0.6328
FOV_UM = 121.5


def opd_um(y, x):
    """A smooth specimen: three Gaussian cells, optical path difference in µm (positions in µm)."""
    out = np.zeros_like(y)
    for cy, cx, r, h in ((40, 45, 8, 0.45), (70, 80, 10, 0.3), (95, 40, 6, 0.55)):
        out += h * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r ** 2))
    return out


def sampled(pixel_size_um: float, wavelength_um: float):
    """The specimen sampled at ``pixel_size_um`` over the same field of view; (field, true phase rad)."""
    n = int(round(FOV_UM / pixel_size_um))
    c = (np.arange(n) - (n - 1) / 2) * pixel_size_um + FOV_UM / 2
    y, x = np.meshgrid(c, c, indexing="ij")
    phase = 0.15 + 2 * np.pi * opd_um(y, x) / wavelength_um
    return np.exp(1j * phase).astype(np.complex64), phase


def rms_rad(a, b) -> float:
    d = np.asarray(a, np.float64) - b
    d -= np.median(d)  # a global phase offset is unobservable
    return float(np.sqrt(np.mean(d ** 2)))


@pytest.fixture(scope="module")
def lff():
    return dm.load_model("lff-x64")


@pytest.fixture(scope="module")
def on_model_grid(lff):
    field, truth = sampled(MODEL_PX, MODEL_WL)
    meas = dm.simulate(field, lff)
    return field, truth, meas, dm.reconstruct(meas, lff)


def test_a_field_at_half_the_model_pitch_is_reconstructed_on_its_own_grid(lff, on_model_grid):
    _, truth_a, meas_a, phase_a = on_model_grid
    field, truth = sampled(MODEL_PX / 2, MODEL_WL)  # 768² px at 0.1582 µm: the same 121.5 µm
    meas = dm.simulate(field, lff, pixel_size_um=MODEL_PX / 2)
    record = meas.record
    plan = plan_grid(field, lff, pixel_size_um=MODEL_PX / 2)
    assert record.source_field_shape == field.shape and plan.resampled_shape == (384, 384)
    assert record.field_shape == plan.padded_shape
    assert record.source_pixel_size_um == pytest.approx(MODEL_PX / 2) and record.phase_scale == 1.0
    assert "anti-aliased" in record.provenance["resampling"]
    # the camera sees the same specimen (measured: 0.06 % of the brightest pixel)
    assert np.abs(meas.image - meas_a.image).max() < 5e-3 * meas_a.image.max()
    phase = dm.reconstruct(meas, lff)
    assert phase.shape == field.shape and dm.reconstruction_grid(meas, lff) == pytest.approx((MODEL_PX / 2, MODEL_WL))
    # resampled simulate → reconstruct stays within 0.005 rad rms (measured 0.0002) of the same specimen given on the
    # model's grid (its reconstruction interpolated to 0.1582 µm by the same rule)
    assert rms_rad(phase, resample_image(phase_a, MODEL_PX, MODEL_PX / 2, shape=field.shape)) < 5e-3
    # and is as close to the truth as on the model's grid (both 0.33 rad rms, retrained lff-x64: its own error)
    assert rms_rad(phase, truth) == pytest.approx(rms_rad(phase_a, truth_a), abs=0.01)


def test_a_field_at_another_wavelength_is_the_same_optical_path_at_the_models(lff, on_model_grid):
    _, _, meas_a, phase_a = on_model_grid
    field, truth = sampled(MODEL_PX, 0.532)  # the same cells seen at 532 nm: 1.19× the phase
    meas = dm.simulate(field, lff, wavelength_um=0.532)
    assert meas.record.phase_scale == pytest.approx(0.532 / MODEL_WL)
    assert "thin, non-dispersive" in meas.record.provenance["wavelength_assumption"]
    # thin non-dispersive specimen: the model's camera sees the same image (measured: 0.3 % of the brightest
    # pixel, from the background estimated at each wavelength for the padding of the lff-x64 window)
    assert np.abs(meas.image - meas_a.image).max() < 1e-2 * meas_a.image.max()
    phase = dm.reconstruct(meas, lff)  # back at 532 nm: the model-wavelength phase × 0.6328/0.532
    assert dm.reconstruction_grid(meas, lff) == pytest.approx((MODEL_PX, 0.532))
    assert rms_rad(phase, 0.15 + (phase_a - 0.15) * MODEL_WL / 0.532) < 1e-3
    assert rms_rad(phase, truth) < 0.45  # measured 0.39 rad (0.33 at 632.8 nm, ×1.19) with the retrained lff-x64


def _one_cell(n=100, seed=1):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n]
    phase = 0.15 + 3.0 * np.sqrt(np.clip(1 - ((y - n / 2) ** 2 + (x - n / 2) ** 2) / 30.0 ** 2, 0, None))
    phase = phase + rng.normal(0, 0.02, (n, n))
    return np.exp(1j * phase).astype(np.complex64), phase


def _cut_cell(n=100, seed=1):
    """A 100² field whose cell the right edge cuts (the cell continues beyond the field of view)."""
    field, phase = _one_cell(n + 60, seed)
    return field[30:30 + n, 60:60 + n], phase[30:30 + n, 60:60 + n]


def test_a_small_field_continues_beyond_its_edges_by_the_encoders_rule(lff):
    from napari_dmicro.optics.grids import crop_with_surroundings

    field, truth = _cut_cell()
    plan = plan_grid(field, lff)  # 100² < the decoder window: padded to the window + the optics' context
    r0, c0, rows, cols = plan.region
    assert min(plan.padded_shape) >= model_window_px(lff) and (rows, cols) == (100, 100)
    assert abs(r0 - (plan.padded_shape[0] - 100 - r0)) <= 8 and plan.outside_field == "reflect"
    padded = to_model_grid(field, plan)
    # the encoder's outside_field rule, the one that continues every field and every training crop: mirrored
    np.testing.assert_array_equal(padded, np.pad(field, ((r0, padded.shape[0] - 100 - r0),
                                                         (c0, padded.shape[1] - 100 - c0)), mode="reflect"))
    dark = plan_on_grid(field, pixel_size_um=None, wavelength_um=None, model_pixel_size_um=MODEL_PX,
                        model_wavelength_um=MODEL_WL, window_px=256, unit_px=8, outside_field="dark")
    in_dark = to_model_grid(field, dark)
    assert np.abs(in_dark).sum() == pytest.approx(np.abs(field).sum(), rel=1e-6)  # a field stop: no light outside
    np.testing.assert_array_equal(crop_with_surroundings(in_dark, dark.offset[0], dark.offset[1], 100, 100, "dark"),
                                  field)
    assert "continued mirrored beyond its edges" in plan.describe()
    with pytest.raises(ValueError, match="unknown outside_field mode 'empty'"):
        plan_on_grid(field, pixel_size_um=None, wavelength_um=None, model_pixel_size_um=MODEL_PX,
                     model_wavelength_um=MODEL_WL, window_px=256, outside_field="empty")

    meas = dm.simulate(field, lff)
    assert meas.record.specimen_region == plan.region and meas.shape == tuple(-(-n // 8) for n in plan.padded_shape)
    assert meas.record.provenance["outside_field"] == "reflect"
    phase = dm.reconstruct(meas, lff)
    assert phase.shape == field.shape
    # the same field cropped out of a larger specimen that continues the same way: the size of the field
    # given no longer changes what the camera sees around it
    m = 512
    within = dm.reconstruct(dm.simulate(np.pad(field, m, mode="reflect"), lff), lff)[m:m + 100, m:m + 100]
    # the empty-dish padding used before 2026-12-07: the cut cell ends in a phase step no specimen has
    dish = np.full((612, 612), np.exp(0.15j), np.complex64)
    dish[256:356, 256:356] = field
    in_dish = dm.reconstruct(dm.simulate(dish, lff), lff)[256:356, 256:356]
    # measured with lff-x64: 0.047 rad rms from the larger specimen (the camera grid falls differently); to
    # the truth 0.098 (the larger specimen 0.101, the empty dish 0.102: on one cut cell the step costs little;
    # on 512² fields of many cut cells it cost 3.5 dB, benchmarks/results/field_edges.json)
    assert rms_rad(phase, within) < 0.08
    assert rms_rad(phase, truth) < 0.15 and rms_rad(in_dish, truth) < 0.15


def test_a_small_field_fills_one_aperture_of_tiled_optics_by_the_encoders_rule():
    model = dm.load_model("d2nn-x64")
    field, truth = _cut_cell()
    plan = plan_grid(field, model)
    meas = dm.simulate(field, model)
    assert meas.record.specimen_region == (78, 78, 100, 100) and meas.shape == (32, 32)  # one 256² aperture
    np.testing.assert_array_equal(to_model_grid(field, plan), np.pad(field, 78, mode="reflect"))
    phase = dm.reconstruct(meas, model)
    dish = np.full((256, 256), np.exp(0.15j), np.complex64)
    dish[78:178, 78:178] = field
    in_dish = dm.reconstruct(dm.simulate(dish, model), model)[78:178, 78:178]
    # measured with d2nn-x64: 0.180 rad rms to the truth mirrored, 0.138 in an empty dish: a field smaller
    # than one 81 µm aperture mirrors into a lattice of copies that the D2NN reads less well than an empty
    # dish; the rule is kept the same for all optics and field sizes (docs/lab-data.md says how to image a
    # lone specimen in a dish)
    assert rms_rad(phase, truth) < 0.25 and rms_rad(in_dish, truth) < 0.25


def test_what_cannot_be_resampled_is_refused_with_the_reason(tiny_checkpoints, tmp_path):
    model = dm.load_model(tiny_checkpoints["lff"])
    field, _ = _one_cell(64)
    with pytest.raises(ValueError, match=r"0.01582 µm, 0.05× the model's 0.3164 µm: more than 16× apart.*discard"):
        dm.simulate(field, model, pixel_size_um=0.01582)
    with pytest.raises(ValueError, match=r"λ 1.9 µm.*\(3×\): a wavelength cannot be resampled.*thin, non-dispersive"):
        dm.simulate(field, model, wavelength_um=1.9)
    with pytest.raises(ValueError, match="would be 1×1 px on the model's 0.3164 µm grid: too small"):
        dm.simulate(field[:4, :4], model, pixel_size_um=0.05)
    np.save(tmp_path / "bare.npy", field)
    with pytest.raises(ValueError, match=r"bare.npy does not record its pixel size; give pixel_size_um=…"):
        dm.simulate(read_field(tmp_path / "bare.npy"), model)
    with pytest.raises(ValueError, match="does not record its wavelength; give wavelength_um"):
        dm.simulate(read_field(tmp_path / "bare.npy"), model, pixel_size_um=0.2)
    meas = dm.simulate(read_field(tmp_path / "bare.npy"), model, pixel_size_um=0.2, wavelength_um=0.6)
    assert meas.record.source_pixel_size_um == 0.2 and meas.record.source_wavelength_um == 0.6
    write_field(tmp_path / "f.zarr", field, pixel_size_um=0.2, wavelength_um=0.6)
    with pytest.raises(ValueError, match="records a pixel size of 0.2 µm but pixel_size_um=0.3 was given"):
        dm.simulate(read_field(tmp_path / "f.zarr"), model, pixel_size_um=0.3)
    with pytest.raises(ValueError, match="a camera image cannot be resampled"):
        dm.reconstruct(np.asarray(meas), model, pixel_size_um=2.0)
    attrs = {**meas.to_attrs()}
    del attrs["phase_scale"]
    with pytest.raises(ValueError, match=r"lacks \['phase_scale'\]"):
        dm.AcquisitionRecord.from_attrs(attrs)


def test_the_cli_takes_a_measured_field_at_its_own_scale_end_to_end(realdata, tmp_path, capsys):
    # the HL60 QLSI field: 112² px at 0.139 µm, 647 nm (nrefocus' metadata); never resampled by hand
    raw = np.load(realdata / "nrefocus_hl60_qlsi_field" / "HL60_field_complex128.npy")
    np.save(tmp_path / "hl60.npy", (raw / np.median(np.abs(raw))).astype(np.complex64))
    field, meas, phase = (str(tmp_path / n) for n in ("hl60.npy", "m.zarr", "p.zarr"))
    assert main(["simulate", field, "-o", meas, "--model", "lff-x64"]) == 2
    assert "does not record its pixel size" in capsys.readouterr().err
    assert main(["simulate", field, "-o", meas, "--model", "lff-x64", "--pixel-size-um", "0.139",
                 "--wavelength-um", "0.647"]) == 0
    out = capsys.readouterr().out
    assert "112×112 px at 0.139 µm (from --pixel-size-um), λ 0.647 µm (from --wavelength-um)" in out
    assert "resampled 112×112 px at 0.139 µm → 49×49 px at 0.3164 µm (anti-aliased)" in out
    assert "phase ×1.022" in out and re.search(r"padded to \d+×\d+ px, the specimen continued mirrored", out)
    stored = read_image(meas)
    assert stored.attrs["source_pixel_size_um"] == 0.139 and stored.attrs["source_field_shape"] == [112, 112]
    assert main(["reconstruct", meas, "-o", phase, "--model", "lff-x64"]) == 0
    assert "phase written at 0.139 µm, λ 0.647 µm; back to the field's grid" in capsys.readouterr().out
    result = read_image(phase)
    assert result.shape == (112, 112) and result.pixel_size_um == 0.139 and result.wavelength_um == 0.647
    assert main(["evaluate", phase, "--reference", field]) == 0


def test_training_brings_fields_to_the_model_grid_by_the_same_rule(tmp_path):
    from napari_dmicro.training import data as D

    field, _ = sampled(MODEL_PX / 2, 0.532)  # 768² at 0.1582 µm, 532 nm
    write_field(tmp_path / "fine.zarr", field, pixel_size_um=MODEL_PX / 2, wavelength_um=0.532)
    load = dict(pixel_size_um=MODEL_PX, wavelength_um=MODEL_WL, min_side_px=64)
    fs = D.load_fieldset([tmp_path / "fine.zarr"], **load)
    assert fs.fields[0].shape == (384, 384)
    assert "0.1582 µm → 384×384 px at 0.3164 µm" in fs.adaptations[str(tmp_path / "fine.zarr")]
    expected = to_model_grid(field, plan_grid(field, dm.untrained_model(compression=64), pixel_size_um=MODEL_PX / 2,
                                              wavelength_um=0.532))
    np.testing.assert_allclose(fs.fields[0], expected, atol=1e-6)  # the rule of dm.simulate
    write_field(tmp_path / "ir.zarr", field, pixel_size_um=MODEL_PX, wavelength_um=1.9)
    with pytest.raises(ValueError, match="ir.zarr: .*a wavelength cannot be resampled"):
        D.load_fieldset([tmp_path / "ir.zarr"], **load)


def test_training_records_files_read_on_the_model_grid_for_want_of_a_scale(phantom_folder):
    from napari_dmicro.training import data as D

    paths = D.discover_fields(phantom_folder(3))  # bare .npy files: no recorded scale
    fs = D.load_fieldset(paths, pixel_size_um=MODEL_PX, wavelength_um=MODEL_WL, min_side_px=32)
    note = fs.adaptations[str(paths[0])]
    assert note == "records no pixel_size_um or wavelength_um: read as on the model's grid (0.3164 µm, λ 0.6328 µm)"
