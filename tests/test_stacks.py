"""Stacks and folders (issue 11, item 3): (T|P, Y, X) fields and measurements through the API and the CLI, plane by
plane; 3-D stores with the stack axis named (OME-Zarr validated); folders and globs give one output per input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

import napari_dmicro as dm
from napari_dmicro.cli import main
from napari_dmicro.io.fields import read_image, write_field
from napari_dmicro.io.ome import validate_ome
from napari_dmicro.phantoms import make_fields

PS, WL = 0.3164, 0.6328


def _stack(n=3, size=96, seed=5) -> np.ndarray:
    return np.stack(list(make_fields(n, seed=seed, size_px=(size, size))))


class _PlaneReader:
    """A (planes, rows, cols) array-like that records what is read (to show reading is one plane at a time)."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index]


def test_a_stack_is_three_2d_calls_plane_by_plane(tiny_checkpoints):
    model = dm.load_model(tiny_checkpoints["lff"])
    fields = _stack()
    reader = _PlaneReader(fields)
    stack = dm.simulate(reader, model, photons=1e3, read_noise=2.0, seed=7, stack_axis="t")
    assert reader.reads == [0, 1, 2]  # one whole plane per read, never the stack
    assert isinstance(stack, dm.MeasurementStack) and stack.shape[0] == 3 and stack.axis == "t"
    phases = dm.reconstruct(stack, model)
    assert phases.shape == fields.shape
    for k in range(3):
        plane = dm.simulate(fields[k], model, photons=1e3, read_noise=2.0, seed=7 + k)  # plane k: seed + k
        np.testing.assert_allclose(stack[k].image, plane.image, rtol=1e-6, atol=1e-7)
        assert stack[k].record == plane.record
        np.testing.assert_allclose(phases[k], dm.reconstruct(plane, model), atol=1e-5)  # radians
    # a bare 3-D camera stack (a lab time-lapse) is reconstructed plane by plane too
    bare = dm.reconstruct(da.from_array(np.asarray(stack), chunks=(1, -1, -1)), model)
    b = model.encoder.config.detector.binning
    assert bare.shape == (3, stack.shape[1] * b, stack.shape[2] * b)
    np.testing.assert_allclose(bare[1], dm.reconstruct(np.asarray(stack)[1], model), atol=1e-5)


def test_a_stack_on_another_grid_keeps_each_planes_background(tiny_checkpoints):
    model = dm.load_model(tiny_checkpoints["lff"])
    fields = _stack(2, 64)
    fields[1] = fields[0] * np.exp(0.8j)  # the same specimen, its background phase 0.8 rad higher
    stack = dm.simulate(fields, model, pixel_size_um=0.25, stack_axis="p")
    bgs = [r.background_phase_rad for r in stack.records]
    assert bgs[1] - bgs[0] == pytest.approx(0.8, abs=1e-4)
    attrs = stack.to_attrs()
    assert attrs["stack_axis"] == "p" and [p["background_phase_rad"] for p in attrs["planes"]] == bgs
    from napari_dmicro.measurement import stack_records

    assert stack_records(attrs, 2) == stack.records  # the store's attributes give the records back
    assert dm.reconstruct(stack, model).shape == fields.shape


def test_a_stack_store_names_its_axis_in_valid_ome_zarr(tmp_path):
    fields = _stack(2, 600)
    path = write_field(tmp_path / "positions.zarr", fields, pixel_size_um=PS, wavelength_um=WL, stack_axis="p")
    group = zarr.open_group(str(path), mode="r")
    validate_ome(group, str(path))  # ome-zarr-models
    axes = group.attrs["ome"]["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["p", "c", "y", "x"] and axes[0]["type"] == "position"
    assert group["field"].chunks == (1, 600, 600) and group["1"].shape == (2, 2, 300, 300)
    image = read_image(path)
    assert image.attrs["stack_axis"] == "p" and image.data.chunks[0] == (1, 1)
    np.testing.assert_array_equal(np.asarray(image.data), fields)
    with pytest.raises(ValueError, match="give stack_axis='t'"):
        write_field(tmp_path / "x.zarr", fields, pixel_size_um=PS, wavelength_um=WL)
    with pytest.raises(ValueError, match="stack_axis='z'"):
        write_field(tmp_path / "x.zarr", fields, pixel_size_um=PS, wavelength_um=WL, stack_axis="z")


def test_the_cli_takes_a_time_lapse_through_simulate_and_reconstruct(tiny_checkpoints, tmp_path, capsys):
    model = str(tiny_checkpoints["lff"])
    fields = _stack(3, 96)
    write_field(tmp_path / "tl.zarr", fields, pixel_size_um=PS / 2, wavelength_um=WL, stack_axis="t")
    assert main(["simulate", str(tmp_path / "tl.zarr"), "-o", str(tmp_path / "m.zarr"), "--model", model,
                 "--seed", "4"]) == 0
    assert "stack of 3 (t) × 96×96 px at 0.1582 µm (from the file)" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "m.zarr")]) == 0
    assert "measurement, 3×32×32 px (t × y × x)" in capsys.readouterr().out
    meas = read_image(tmp_path / "m.zarr")
    assert meas.shape[0] == 3 and meas.attrs["stack_axis"] == "t" and len(meas.attrs["planes"]) == 3
    api = dm.simulate(fields, model, seed=4, pixel_size_um=PS / 2)
    np.testing.assert_allclose(np.asarray(meas.data), np.asarray(api), rtol=1e-6, atol=1e-7)
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "p.zarr"), "--model", model]) == 0
    phase = read_image(tmp_path / "p.zarr")
    assert phase.shape == fields.shape and phase.attrs["stack_axis"] == "t" and phase.pixel_size_um == PS / 2
    np.testing.assert_allclose(np.asarray(phase.data), dm.reconstruct(api, model), atol=1e-5)
    # a foreign 3-D array does not name its axis: --stack-axis does (t by default)
    np.save(tmp_path / "pos.npy", fields)
    assert main(["simulate", str(tmp_path / "pos.npy"), "-o", str(tmp_path / "mp.zarr"), "--model", model,
                 "--pixel-size-um", str(PS), "--wavelength-um", str(WL), "--stack-axis", "p"]) == 0
    assert read_image(tmp_path / "mp.zarr").attrs["stack_axis"] == "p"


def test_the_cli_writes_one_output_per_input_of_a_folder_or_glob(tiny_checkpoints, tmp_path, capsys):
    model = str(tiny_checkpoints["lff"])
    folder = tmp_path / "fields"
    for k, field in enumerate(_stack(3, 64)):
        write_field(folder / f"cell_{k}.zarr", field, pixel_size_um=PS, wavelength_um=WL)
    (folder / "notes.txt").write_text("not a field")
    assert main(["simulate", str(folder), "-o", str(tmp_path / "meas"), "--model", model]) == 0
    assert sorted(p.name for p in (tmp_path / "meas").iterdir()) == ["cell_0.zarr", "cell_1.zarr", "cell_2.zarr"]
    assert "wrote 3 measurements" in capsys.readouterr().out
    np.testing.assert_allclose(read_image(tmp_path / "meas" / "cell_1.zarr").data,
                               dm.simulate(read_image(folder / "cell_1.zarr"), model), atol=1e-7)
    assert main(["reconstruct", str(tmp_path / "meas" / "cell_[02].zarr"), "-o", str(tmp_path / "phase"),
                 "--model", model]) == 0
    assert sorted(p.name for p in (tmp_path / "phase").iterdir()) == ["cell_0.zarr", "cell_2.zarr"]
    # every output is checked before any work: one existing output stops the whole batch, nothing written
    (tmp_path / "again").mkdir()
    write_field(tmp_path / "again" / "cell_2.zarr", _stack(1, 16)[0], pixel_size_um=PS, wavelength_um=WL)
    assert main(["simulate", str(folder / "cell_*.zarr"), "-o", str(tmp_path / "again"), "--model", model]) == 2
    assert "exists" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["cell_2.zarr"]
    # every input's scale too: a file without one (or too far from the model's) stops the batch before any work
    np.save(folder / "z_bare.npy", _stack(1, 64)[0])
    assert main(["simulate", str(folder), "-o", str(tmp_path / "batch"), "--model", model]) == 2
    assert "z_bare.npy does not record its pixel size" in capsys.readouterr().err
    assert not (tmp_path / "batch").exists()
    (folder / "z_bare.npy").unlink()
    write_field(folder / "z_far.zarr", _stack(1, 64)[0], pixel_size_um=0.01, wavelength_um=WL)
    assert main(["simulate", str(folder), "-o", str(tmp_path / "batch"), "--model", model]) == 2
    assert "z_far.zarr: the field's pixels are 0.01 µm" in capsys.readouterr().err
    assert not (tmp_path / "batch").exists()
    assert main(["simulate", str(folder / "none_*.zarr"), "-o", str(tmp_path / "x"), "--model", model]) == 2
    assert "no field files (.zarr, .npy, .npz) match" in capsys.readouterr().err


def test_the_napari_reader_gives_a_stack_store_as_3d_layers_with_the_axis_named(tmp_path):
    from napari_dmicro._reader import napari_get_reader

    fields = _stack(2, 64)
    path = write_field(tmp_path / "tl.zarr", fields, pixel_size_um=PS, wavelength_um=WL, stack_axis="t")
    layers = napari_get_reader(str(path))(str(path))
    (amp, amp_kw, _), (phase, phase_kw, _) = layers
    assert amp.shape == phase.shape == fields.shape and phase_kw["axis_labels"] == ("t", "y", "x")
    assert phase_kw["scale"] == (1.0, PS, PS) and phase_kw["units"] == ("pixel", "micrometer", "micrometer")
    bg = phase_kw["metadata"]["napari_dmicro"]["phase_background_rad"]  # shown relative to the background
    np.testing.assert_allclose(np.exp(1j * (np.asarray(phase) + bg)), np.exp(1j * np.angle(fields)), atol=1e-5)


def test_a_lab_tiff_time_lapse_is_reconstructed_plane_by_plane(tiny_checkpoints, tmp_path, capsys):
    import tifffile

    model = dm.load_model(tiny_checkpoints["lff"])
    camera = np.asarray(dm.simulate(_stack(3, 64), model))  # (3, 32, 32): what a camera would record
    tifffile.imwrite(tmp_path / "tl.tif", camera, photometric="minisblack")  # 3 pages
    out = tmp_path / "tl_phase.zarr"
    assert main(["reconstruct", str(tmp_path / "tl.tif"), "-o", str(out), "--model",
                 str(tiny_checkpoints["lff"]), "--pixel-size-um", "1.2656", "--stack-axis", "p"]) == 0
    phase = read_image(out)
    assert phase.shape == (3, 128, 128) and phase.attrs["stack_axis"] == "p"
    for k in range(3):
        np.testing.assert_allclose(np.asarray(phase.data[k]), dm.reconstruct(camera[k], model), atol=1e-5)
    # the camera pitch is checked (a camera image cannot be resampled), and a store's axis cannot be renamed
    assert main(["reconstruct", str(tmp_path / "tl.tif"), "-o", str(tmp_path / "x.zarr"), "--model",
                 str(tiny_checkpoints["lff"]), "--pixel-size-um", "2.0"]) == 2
    assert "a camera image cannot be resampled" in capsys.readouterr().err
    from napari_dmicro.io.fields import write_measurement

    write_measurement(tmp_path / "m.zarr", camera, pixel_size_um=1.2656, wavelength_um=WL, stack_axis="p")
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "y.zarr"), "--model",
                 str(tiny_checkpoints["lff"]), "--stack-axis", "t"]) == 2
    assert "is a stack along 'p' but --stack-axis t was given" in capsys.readouterr().err


def test_a_phase_stack_is_evaluated_plane_by_plane(tiny_checkpoints, tmp_path, capsys):
    import json

    from napari_dmicro.io.fields import write_phase

    fields = _stack(2, 64)
    phases = np.angle(fields).astype(np.float32)
    phases[1] += np.random.default_rng(0).normal(0, 0.3, phases[1].shape).astype(np.float32)  # plane 1 worse
    reports = dm.evaluate(phases, fields)
    assert [r.psnr_db for r in reports] == [dm.evaluate(phases[k], fields[k]).psnr_db for k in range(2)]
    assert reports[0].psnr_db > reports[1].psnr_db + 10
    write_phase(tmp_path / "p.zarr", phases, pixel_size_um=PS, wavelength_um=WL, stack_axis="t")
    write_field(tmp_path / "f.zarr", fields, pixel_size_um=PS, wavelength_um=WL, stack_axis="t")
    assert main(["evaluate", str(tmp_path / "p.zarr"), "--reference", str(tmp_path / "f.zarr"),
                 "--ssim-map", str(tmp_path / "s.zarr")]) == 0
    printed = json.loads(capsys.readouterr().out.split("wrote the SSIM map")[0])
    assert printed["stack_axis"] == "t" and len(printed["planes"]) == 2
    assert printed["planes"][1]["psnr_db"] == pytest.approx(reports[1].psnr_db, abs=1e-3)
    ssim = read_image(tmp_path / "s.zarr")
    assert ssim.shape == phases.shape and ssim.attrs["stack_axis"] == "t"
    with pytest.raises(ValueError, match="compared plane by plane with a reference stack of the same shape"):
        dm.evaluate(phases, fields[0])
