"""The dmicro command line: help with examples, readable errors with exit codes, the demo's outputs."""

from pathlib import Path

import numpy as np
import pytest

from napari_dmicro.cli import main
from napari_dmicro.io.fields import read_field, read_image
from napari_dmicro.phantoms import make_fields

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("demo", "phantom", "simulate", "info", "train", "examples:"):
        assert word in out


def test_phantom_simulate_info_round_trip(tmp_path, capsys):
    assert main(["phantom", "--out", str(tmp_path / "f"), "--count", "2", "--size", "96x80", "--seed", "4"]) == 0
    fields = sorted((tmp_path / "f").glob("*.zarr"))
    assert len(fields) == 2
    first = read_field(fields[0])
    assert first.shape == (96, 80) and first.attrs["seed"] == 4
    out = tmp_path / "m.zarr"
    assert main(["simulate", str(fields[0]), "-o", str(out), "--compression", "16", "--photons", "1000",
                 "--read-noise", "2", "--seed", "3"]) == 0
    meas = read_image(out)
    assert meas.kind == "measurement" and meas.shape == (24, 20)
    assert meas.pixel_size_um == pytest.approx(0.3164 * 4)
    assert meas.attrs["max_photons"] == 1000 and meas.attrs["compression"] == 16
    assert main(["info", str(out)]) == 0
    assert "measurement, 24×20 px" in capsys.readouterr().out


def test_errors_are_readable_with_nonzero_exit_codes(tmp_path, capsys):
    np.save(tmp_path / "real.npy", np.ones((64, 64), np.float32))
    assert main(["simulate", str(tmp_path / "real.npy"), "-o", str(tmp_path / "m.zarr")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "complex" in err and "Traceback" not in err
    np.save(tmp_path / "f.npy", np.ones((64, 64), np.complex64))
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr"), "--compression", "32"]) == 2
    assert "power of 4" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing.zarr"), "-o", str(tmp_path / "m.zarr")]) == 2
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr")]) == 0
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr")]) == 2
    assert "exists" in capsys.readouterr().err


def test_demo_writes_field_measurement_and_figure(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "256"]) == 0
    field = read_field(tmp_path / "demo" / "field.zarr")
    meas = read_image(tmp_path / "demo" / "measurement.zarr")
    assert field.shape == (256, 256) and meas.shape == (32, 32)
    assert meas.attrs["compression"] == 64 and meas.attrs["max_photons"] == 1e4 and meas.attrs["read_noise_e"] == 6
    png = (tmp_path / "demo" / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_shipped_sample_data_is_what_its_command_regenerates():
    stored = sorted((REPO / "sample_data").glob("phantom_*.zarr"))
    assert len(stored) == 3
    for path, fresh in zip(stored, make_fields(3, seed=100, size_px=(256, 256))):
        np.testing.assert_array_equal(np.asarray(read_field(path).data), fresh)
