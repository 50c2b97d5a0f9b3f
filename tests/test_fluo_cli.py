"""dmicro simulate → reconstruct → segment → evaluate with fluorescence models: the measurement store carries
its metadata and patterns, every step keeps the pixel sizes, bad scales and mismatched models are refused, the
napari reader shows the stores with their µm scales."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_dmicro as dm
from napari_dmicro._reader import napari_get_reader
from napari_dmicro.cli import main
from napari_dmicro.inference.fluorescence import binary_patterns
from napari_dmicro.io.fields import read_image
from napari_dmicro.io.fluorescence import read_fluorescence, read_fluorescence_measurement
from napari_dmicro.training.fluo_data import normalise_unit_range

PS_UM = 0.325  # the phantoms' and the tiny models' specimen pixel
BIN = 8


@pytest.fixture(scope="module")
def nuclei(tmp_path_factory) -> Path:
    """One generated 96² nuclei field with instance labels (dmicro phantom --modality fluorescence)."""
    out = tmp_path_factory.mktemp("nuclei")
    assert main(["phantom", "--modality", "fluorescence", "--out", str(out), "--count", "1", "--size", "96",
                 "--seed", "5", "--style", "confluent"]) == 0
    return out / "nuclei_0000.zarr"


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_round_trip_carries_the_metadata_and_matches_the_api(tmp_path, capsys, nuclei, tiny_fluorescence_checkpoints):
    model_path = tiny_fluorescence_checkpoints["fluo-seg"]
    meas_path, rec_path, seg_path = tmp_path / "meas.zarr", tmp_path / "rec.zarr", tmp_path / "seg.zarr"
    code, out, err = _run(capsys, "simulate", nuclei, "-o", meas_path, "--model", model_path, "--photons", "300",
                          "--read-noise", "2", "--background-photons", "5", "--seed", "3")
    assert code == 0, err
    assert "96×96 px at 0.325 µm (metadata)" in out and "4×12×12 measurement" in out

    store = read_image(meas_path)  # the measurement store: a T-stack at the camera pixel
    assert store.kind == "measurement" and store.shape == (4, 12, 12) and store.attrs["stack_axis"] == "pattern"
    assert abs(store.pixel_size_um - BIN * PS_UM) < 1e-9 and abs(store.wavelength_um - 0.52) < 1e-9
    a = store.attrs
    assert a["modality"] == "fluorescence" and a["n_patterns"] == 4 and a["bin_px"] == BIN
    assert abs(a["specimen_pixel_size_um"] - PS_UM) < 1e-9 and abs(a["camera_pixel_size_um"] - BIN * PS_UM) < 1e-9
    assert (a["photons_per_unit"], a["read_noise_e"], a["background_photons"], a["seed"]) == (300, 2, 5, 3)
    assert a["patterns"] == "binary" and a["image_shape"] == [96, 96] and a["model"] == str(model_path)
    assert a["model_file"] == str(model_path) and a["source_image"] == str(nuclei)

    model = dm.load_model(model_path)
    meas = read_fluorescence_measurement(meas_path)
    assert np.array_equal(meas.patterns, binary_patterns(model))  # self-describing: the patterns that made it
    image = read_fluorescence(nuclei)
    again = dm.simulate(image, model, photons=300, read_noise=2, background_photons=5, seed=3)
    assert np.array_equal(again.data, meas.data)  # the CLI is dm.simulate, seeded

    code, out, err = _run(capsys, "reconstruct", meas_path, "-o", rec_path, "--model", model_path)
    assert code == 0, err
    rec = read_fluorescence(rec_path)
    assert rec.image.shape == (96, 96) and abs(rec.pixel_size_um - PS_UM) < 1e-9 and rec.labels is None
    assert np.array_equal(rec.image, dm.reconstruct(meas, model))
    assert read_image(rec_path).attrs["simulated_by"] == str(model_path)

    code, out, err = _run(capsys, "segment", meas_path, "-o", seg_path, "--model", model_path)
    assert code == 0, err
    seg = read_fluorescence(seg_path)
    assert abs(seg.pixel_size_um - PS_UM) < 1e-9 and seg.labels.dtype == np.int32
    assert np.array_equal(seg.labels, dm.segment(meas, model)) and np.array_equal(seg.image, rec.image)

    code, out, err = _run(capsys, "evaluate", seg_path, "--reference", nuclei)
    assert code == 0, err
    report = json.loads(out)
    truth = normalise_unit_range(image.image)  # PSNR of the normalised image, data range 1, recomputed here
    mse = float(np.mean((np.clip(seg.image, 0, 1) - truth) ** 2))
    assert report["psnr_db"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-3)
    assert 0 < report["ssim"] <= 1
    fg_pred, fg_true = seg.labels > 0, image.labels > 0
    dice = 2 * (fg_pred & fg_true).sum() / max(fg_pred.sum() + fg_true.sum(), 1)
    assert report["dice"] == pytest.approx(dice, abs=1e-4) and 0 <= report["f1"] <= 1
    assert report["n_reference"] == int(image.labels.max()) and report["iou_threshold"] == 0.5


def test_scale_is_never_guessed_and_far_pitches_are_refused(tmp_path, capsys, tiny_fluorescence_checkpoints):
    model = tiny_fluorescence_checkpoints["fluo-recon"]
    tifffile.imwrite(tmp_path / "cells.tif", np.random.default_rng(0).random((64, 64)).astype(np.float32))
    code, _, err = _run(capsys, "simulate", tmp_path / "cells.tif", "-o", tmp_path / "m.zarr", "--model", model)
    assert code == 2 and "give --pixel-size-um" in err and "never guessed" in err and not (tmp_path / "m.zarr").exists()
    code, _, err = _run(capsys, "simulate", tmp_path / "cells.tif", "-o", tmp_path / "m.zarr", "--model", model,
                        "--pixel-size-um", "8")
    assert code == 2 and "more than 16× apart" in err and "0.325 µm" in err
    code, _, err = _run(capsys, "simulate", tmp_path / "cells.tif", "-o", tmp_path / "m.zarr")
    assert code == 2 and "give --model" in err


def test_mismatched_models_are_refused_naming_both(tmp_path, capsys, nuclei, tiny_fluorescence_checkpoints,
                                                   tiny_checkpoints):
    ck = tiny_fluorescence_checkpoints
    meas = tmp_path / "meas.zarr"
    assert main(["simulate", str(nuclei), "-o", str(meas), "--model", str(ck["fluo-seg"])]) == 0
    code, _, err = _run(capsys, "reconstruct", meas, "-o", tmp_path / "r.zarr", "--model", ck["fluo-seg-other"])
    assert code == 2 and "illumination patterns of" in err
    assert str(ck["fluo-seg"]) in err and str(ck["fluo-seg-other"]) in err and "mirrors differ" in err
    code, _, err = _run(capsys, "reconstruct", meas, "-o", tmp_path / "r.zarr", "--model", ck["fluo-bin16"])
    assert code == 2 and "bin_px 8 vs 16" in err and str(ck["fluo-bin16"]) in err
    code, _, err = _run(capsys, "reconstruct", meas, "-o", tmp_path / "r.zarr", "--model", tiny_checkpoints["lff"])
    assert code == 2 and "is a fluorescence measurement" in err and "phase model" in err
    # a reconstruction-only model cannot segment: the message names the task-aware models
    simulated = tmp_path / "recon_meas.zarr"
    assert main(["simulate", str(nuclei), "-o", str(simulated), "--model", str(ck["fluo-recon"])]) == 0
    code, _, err = _run(capsys, "segment", simulated, "-o", tmp_path / "s.zarr", "--model", ck["fluo-recon"])
    assert code == 2 and "fluo-seg-x256" in err and "fluo-seg-x1024" in err and not (tmp_path / "s.zarr").exists()


def test_dsb2018_through_simulate_at_a_stated_pixel_size(tmp_path, capsys, realdata, tiny_fluorescence_checkpoints):
    model = tiny_fluorescence_checkpoints["fluo-seg"]
    source = realdata / "fluo_stardist_dsb2018_nuclei"
    meas, rec, labels = tmp_path / "dsb.zarr", tmp_path / "dsb_rec.zarr", tmp_path / "dsb_labels.tif"
    code, out, err = _run(capsys, "simulate", source / "img2d.tif", "-o", meas, "--model", model,
                          "--pixel-size-um", "0.5", "--photons", "100", "--read-noise", "2")
    assert code == 0, err
    assert "512×512 px at 0.5 µm (given)" in out and "resampled 512×512 px at 0.5 µm → 788×788 px at 0.325 µm" in out
    a = read_image(meas).attrs
    assert a["source_image_shape"] == [512, 512] and abs(a["source_pixel_size_um"] - 0.5) < 1e-9
    assert a["image_shape"] == [788, 788] and "resample_image" in a["resampling"]
    assert read_image(meas).shape == (4, 99, 99)  # 788 mirrored to whole 8-px bins
    assert main(["reconstruct", str(meas), "-o", str(rec), "--model", str(model)]) == 0
    back = read_fluorescence(rec)
    assert back.image.shape == (512, 512) and abs(back.pixel_size_um - 0.5) < 1e-9
    assert main(["segment", str(meas), "-o", str(labels), "--model", str(model)]) == 0
    with tifffile.TiffFile(labels) as tif:
        assert tif.asarray().shape == (512, 512) and tif.asarray().dtype == np.int32
        per_cm = tif.pages[0].tags["XResolution"].value
        assert abs(1e4 * per_cm[1] / per_cm[0] - 0.5) < 1e-6  # 0.5 µm pixels
    capsys.readouterr()
    code, out, err = _run(capsys, "evaluate", rec, "--reference", source / "img2d.tif", "--reference-mask",
                          source / "mask2d.tif", "--pixel-size-um", "0.5")
    assert code == 0, err
    report = json.loads(out)
    assert "psnr_db" in report and "masks not scored" in report["labels"]  # a reconstruction store has no labels
    code, _, err = _run(capsys, "evaluate", rec, "--reference", source / "img2d.tif", "--pixel-size-um", "0.4")
    assert code == 2 and "0.5 µm pixels but the reference 0.4 µm" in err


def test_reader_opens_measurements_images_and_labels_with_their_scales(tmp_path, nuclei,
                                                                       tiny_fluorescence_checkpoints):
    model = str(tiny_fluorescence_checkpoints["fluo-seg"])
    meas, seg = tmp_path / "meas.zarr", tmp_path / "seg.zarr"
    assert main(["simulate", str(nuclei), "-o", str(meas), "--model", model]) == 0
    assert main(["segment", str(meas), "-o", str(seg), "--model", model]) == 0

    (data, kwargs, kind), = napari_get_reader(str(meas))(str(meas))
    assert kind == "image" and np.asarray(data).shape == (4, 12, 12)
    assert kwargs["axis_labels"] == ("pattern", "y", "x")
    assert kwargs["scale"][0] == 1.0 and all(abs(s - BIN * PS_UM) < 1e-9 for s in kwargs["scale"][1:])

    layers = napari_get_reader(str(seg))(str(seg))
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    (image, image_kwargs, _), (labels, label_kwargs, _) = layers
    assert np.asarray(labels).dtype == np.int32 and np.asarray(labels).shape == np.asarray(image).shape == (96, 96)
    for kw in (image_kwargs, label_kwargs):
        assert all(abs(s - PS_UM) < 1e-9 for s in kw["scale"]) and kw["units"] == ("micrometer", "micrometer")
    assert label_kwargs["name"] == "seg labels"

    (_, kwargs, kind), = napari_get_reader(str(nuclei))(str(nuclei))[:1]
    assert kind == "image" and len(napari_get_reader(str(nuclei))(str(nuclei))) == 2  # a phantom has labels


def test_the_measurement_store_refuses_what_does_not_describe_it(tmp_path):
    from napari_dmicro.inference.fluorescence import FluorescenceMeasurement
    from napari_dmicro.io import FieldFormatError, UnitError
    from napari_dmicro.io.fluorescence import write_fluorescence_measurement
    from napari_dmicro.io.store import write_fluorescence_measurement as write_store
    from napari_dmicro.io.store import write_image

    frames, patterns = np.ones((2, 4, 4), np.float32), np.eye(8, dtype=np.uint8)[None].repeat(2, 0)
    store = dict(camera_pixel_size_um=2.6, emission_wavelength_um=0.52)
    with pytest.raises(FieldFormatError, match="binary"):
        write_store(tmp_path / "a.zarr", frames, patterns * 0.5, **store)
    with pytest.raises(FieldFormatError, match="needs \\(2, P, P\\)"):
        write_store(tmp_path / "a.zarr", frames, patterns[:1], **store)
    with pytest.raises(FieldFormatError, match="'t' \\(time-lapse\\) or 'p'"):  # the pattern axis is not a QPM stack
        write_image(tmp_path / "a.zarr", frames, kind="measurement", pixel_size_um=2.6, wavelength_um=0.52,
                    stack_axis="pattern")
    attrs = {"modality": "fluorescence", "pixel_size_um": 0.325, "camera_pixel_size_um": 2.6, "bin_px": 8,
             "emission_wavelength_um": None}
    with pytest.raises(UnitError, match="emission wavelength is unknown"):
        write_fluorescence_measurement(tmp_path / "a.zarr", FluorescenceMeasurement(frames, attrs, patterns))
    assert not (tmp_path / "a.zarr").exists()
    # a store whose camera pixel is not bin × the specimen pixel is refused on reading
    write_store(tmp_path / "b.zarr", frames, patterns, camera_pixel_size_um=3.0, emission_wavelength_um=0.52,
                attrs={"specimen_pixel_size_um": 0.325, "bin_px": 8})
    with pytest.raises(FieldFormatError, match="not bin_px × the specimen pixel"):
        read_fluorescence_measurement(tmp_path / "b.zarr")
