"""Nothing of the user's lost and one clear line per fault, through the `dmicro` command line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from napari_dmicro import cli
from napari_dmicro.cli import main
from napari_dmicro.io import read_field, read_image, store, write_field, write_measurement

PS, WL = 0.3164, 0.6328
SRC = str(Path(__file__).resolve().parents[1] / "src")
CAMERA_PS = PS * 8  # x64: a camera pixel bins 8 × 8 object pixels


def _field(shape=(64, 64), value=1.0):
    return np.full(shape, value * np.exp(0.5j), np.complex64)


def _hidden(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _phase_store(path):
    return store.write_phase(path, np.ones((64, 64), np.float32), pixel_size_um=PS, wavelength_um=WL)


# ----------------------------------------------------------------------------------------- inputs as outputs


@pytest.mark.parametrize("command", [
    ["simulate", "{F}", "-o", "{F}", "--overwrite"],
    ["simulate", "{F}", "-o", "{Fstem}", "--overwrite"],  # -o NAME means NAME.zarr: the input
    ["simulate", "{F}", "-o", "{F}/inner.zarr", "--overwrite"],  # inside the input
    ["simulate", "{nested}", "-o", "{F}", "--overwrite", "--overwrite-foreign"],  # contains the input
    ["reconstruct", "{M}", "-o", "{M}", "--model", "lff-x64", "--overwrite"],
    ["evaluate", "{P}", "--reference", "{F}", "--ssim-map", "{P}", "--overwrite"],
    ["evaluate", "{P}", "--reference", "{F}", "--ssim-map", "{F}", "--overwrite"],
])
def test_an_output_that_is_contains_or_lies_inside_an_input_is_refused_before_any_work(
        tmp_path, capsys, monkeypatch, command):
    paths = {"F": write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL),
             "M": write_measurement(tmp_path / "m.zarr", np.ones((8, 8), np.float32), pixel_size_um=CAMERA_PS,
                                    wavelength_um=WL),
             "P": _phase_store(tmp_path / "p.zarr")}
    paths["Fstem"] = tmp_path / "f"
    paths["nested"] = write_field(paths["F"] / "nested.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    before = {k: sorted(os.listdir(p)) for k, p in paths.items() if p.exists()}
    for name in ("simulate", "load_model", "evaluate"):
        monkeypatch.setattr(f"napari_dmicro.api.{name}", lambda *a, **k: pytest.fail("work started"))
    assert main([part.format(**{k: str(v) for k, v in paths.items()}) for part in command]) == 2
    err = capsys.readouterr().err
    assert "would destroy the input" in err and "Traceback" not in err
    assert {k: sorted(os.listdir(p)) for k, p in paths.items() if p.exists()} == before


# ----------------------------------------------------------------------------------------- what --overwrite may replace


def test_overwrite_replaces_only_our_stores_a_foreign_one_needs_its_own_flag(tmp_path, capsys):
    src = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    foreign = tmp_path / "theirs.zarr"
    zarr.create_array(str(foreign), shape=(4, 4), dtype=np.float32)[...] = 7
    args = ["simulate", str(src), "-o", str(foreign), "--compression", "16"]
    assert main([*args, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "did not write" in err and "--overwrite-foreign" in err
    assert np.asarray(zarr.open_array(str(foreign), mode="r"))[0, 0] == 7
    assert main([*args, "--overwrite-foreign"]) == 0
    assert read_image(foreign).kind == "measurement"
    assert main([*args, "--overwrite"]) == 0  # now it is ours
    assert _hidden(tmp_path) == []


def test_overwrite_never_deletes_a_regular_file_named_zarr(tmp_path, capsys):
    src = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    notes = tmp_path / "notes.zarr"
    notes.write_text("my notes")
    assert main(["simulate", str(src), "-o", str(notes), "--compression", "16", "--overwrite"]) == 2
    assert "a regular file" in capsys.readouterr().err and notes.read_text() == "my notes"
    assert main(["simulate", str(src), "-o", str(notes), "--compression", "16", "--overwrite-foreign"]) == 0
    assert read_image(notes).kind == "measurement"


def test_an_existing_name_zarr_for_o_name_is_refused_before_the_simulation(tmp_path, capsys, monkeypatch):
    src = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    _phase_store(tmp_path / "out.zarr")
    monkeypatch.setattr("napari_dmicro.api.simulate", lambda *a, **k: pytest.fail("simulated first"))
    assert main(["simulate", str(src), "-o", str(tmp_path / "out"), "--compression", "16"]) == 2
    assert "out.zarr already exists; pass --overwrite" in capsys.readouterr().err


def test_demo_refuses_a_foreign_store_in_its_folder_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "phase.zarr").write_text("not the demo's")
    monkeypatch.setattr("napari_dmicro.demo.run_demo", lambda *a, **k: pytest.fail("work started"))
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert "phase.zarr already exists and is a regular file" in capsys.readouterr().err


def test_phantom_checks_every_name_before_writing_any(tmp_path, capsys):
    out = tmp_path / "fields"
    _phase_store(out / "phantom_0001.zarr")
    assert main(["phantom", "--out", str(out), "--count", "3", "--size", "32"]) == 2
    assert "phantom_0001.zarr already exists" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["phantom_0001.zarr"]
    assert main(["phantom", "--out", str(out), "--count", "3", "--size", "32", "--overwrite"]) == 0
    assert read_field(out / "phantom_0001.zarr").shape == (32, 32)


# ----------------------------------------------------------------------------------------- faults: one line, exit ≠ 0


def test_a_missing_chunk_is_refused_not_read_as_zeros(tmp_path, capsys):
    src = write_field(tmp_path / "f.zarr", _field((2048, 64)), pixel_size_um=PS, wavelength_um=WL)
    (src / "field" / "c" / "1" / "0").unlink()
    assert main(["simulate", str(src), "-o", str(tmp_path / "m.zarr"), "--compression", "16"]) == 2
    err = capsys.readouterr().err
    assert "is incomplete: 1 of 2 chunks missing (first: chunk 'c/1/0' at pixel (1024, 0))" in err
    assert not (tmp_path / "m.zarr").exists()


def test_broken_pipe_ends_quietly(tmp_path):
    big_attrs = {f"note_{k}": "x" * 100 for k in range(2000)}  # ~250 KB of `info` output: more than a pipe holds
    path = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL, attrs=big_attrs)
    proc = subprocess.Popen([sys.executable, "-m", "napari_dmicro.cli", "info", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": SRC})
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "field, 64×64 px" in first.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""
    assert proc.returncode == 141


def test_terminal_control_characters_in_metadata_are_escaped(tmp_path, capsys):
    evil = "\x1b]0;pwned\x07\x1b[2J\u202e"
    meas = write_measurement(tmp_path / "m.zarr", np.full((32, 32), 0.5, np.float32), pixel_size_um=CAMERA_PS,
                             wavelength_um=WL, attrs={"model": evil, "optics": "lff", "compression": 64,
                                    "flat_field_corrected": True})
    assert main(["reconstruct", str(meas), "-o", str(tmp_path / "p.zarr"), "--model", "lff-x64"]) == 0
    err = capsys.readouterr().err
    assert "warning: this measurement was simulated with model \\x1b]0;pwned\\x07\\x1b[2J\\u202e" in err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err


def test_a_bare_2d_camera_image_is_reconstructed(tmp_path, capsys):
    import tifffile

    camera = np.random.default_rng(0).uniform(0.2, 1.0, (32, 32)).astype(np.float32)
    np.save(tmp_path / "camera.npy", camera)
    tifffile.imwrite(tmp_path / "camera.tif", camera)
    for name in ("camera.npy", "camera.tif"):
        out = tmp_path / f"{name}.phase.zarr"
        assert main(["reconstruct", str(tmp_path / name), "-o", str(out), "--model", "lff-x64"]) == 0
        assert "does not record its pixel size" in capsys.readouterr().err
        phase = read_image(out)
        assert phase.kind == "phase" and phase.shape == (256, 256) and phase.pixel_size_um == pytest.approx(PS)
    # a 3-D array is a stack of camera images (issue 11): plane by plane; a 4-D array is refused
    np.save(tmp_path / "stack.npy", np.ones((2, 32, 32), np.float32))
    assert main(["reconstruct", str(tmp_path / "stack.npy"), "-o", str(tmp_path / "s.zarr"), "--model", "lff-x64"]) == 0
    assert read_image(tmp_path / "s.zarr").shape == (2, 256, 256)
    np.save(tmp_path / "hyper.npy", np.ones((2, 2, 32, 32), np.float32))
    assert main(["reconstruct", str(tmp_path / "hyper.npy"), "-o", str(tmp_path / "h.zarr"), "--model", "lff-x64"]) == 2
    assert "2-D" in capsys.readouterr().err


def test_read_only_folder_and_full_disk_are_one_line_and_leave_nothing(tmp_path, capsys, monkeypatch):
    src = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "ome_metadata", full)
    assert main(["simulate", str(src), "-o", str(tmp_path / "m.zarr"), "--compression", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.zarr: the disk is full; free some space" in err and "Errno" not in err
    assert _hidden(tmp_path) == [] and not (tmp_path / "m.zarr").exists()
    monkeypatch.undo()
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "open", read_only)
    assert main(["simulate", str(src), "-o", str(tmp_path / "ro" / "m.zarr"), "--compression", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the file system is read-only" in err
    assert os.listdir(tmp_path / "ro") == []


def test_bad_output_names_are_one_line(tmp_path, capsys):
    src = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    for bad in ("out.png", "..", "bad\0name.zarr"):
        assert main(["simulate", str(src), "-o", bad, "--compression", "16"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("not a valid output name" in err or "zarr stores only" in err)


def test_a_programming_error_keeps_its_traceback_memory_exhaustion_is_one_line(monkeypatch, capsys):
    def bug(args):
        raise TypeError("a bug, not a user error")

    monkeypatch.setattr(cli, "cmd_info", bug)
    with pytest.raises(TypeError, match="a bug"):
        main(["info", "x"])

    def too_big(args):
        raise MemoryError

    monkeypatch.setattr(cli, "cmd_info", too_big)
    assert main(["info", "x"]) == 2
    assert capsys.readouterr().err == ("dmicro info: error: not enough memory for this input; use a smaller field "
                                       "or a machine with more memory\n")
