"""Engine tests for napari_dmicro.io.fields: round trips, foreign inputs, bad inputs, atomic writes."""

from __future__ import annotations

import json
import math
import os
import tracemalloc

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_dmicro.config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from napari_dmicro.io import store
from napari_dmicro.io.errors import FieldFormatError, MissingArrayError, NotAZarrStoreError, UnitError
from napari_dmicro.io.fields import (
    ImageData,
    read_field,
    read_image,
    validate_field,
    write_field,
    write_image,
    write_measurement,
    write_phase,
)

PS, WL = 0.3164, 0.6328


def _field(shape=(64, 48), seed=0, dtype=np.complex64):
    rng = np.random.default_rng(seed)
    amp = 0.5 + rng.random(shape)
    phase = rng.uniform(0, 2 * np.pi, shape)
    return (amp * np.exp(1j * phase)).astype(dtype)


def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


# ----------------------------------------------------------------------------------------------- round trips


def test_complex64_round_trip_exact_with_attrs(tmp_path):
    f = _field()
    attrs = {"model": {"kind": "lff", "filter_size_px": 256}, "compression": 64, "photons": 1e4,
             "read_noise_e": np.float32(6.0), "seed": np.int64(7), "source": tmp_path / "x.zarr"}
    out = write_field(tmp_path / "f.zarr", f, pixel_size_um=PS, wavelength_um=WL, attrs=attrs)
    assert out == (tmp_path / "f.zarr").absolute()
    img = read_image(out)
    assert img.kind == "field" and img.is_lazy
    assert img.data.dtype == np.complex64
    np.testing.assert_array_equal(img.data.compute(), f)
    assert img.pixel_size_um == PS and img.wavelength_um == WL
    assert img.attrs["model"] == {"kind": "lff", "filter_size_px": 256}
    assert img.attrs["compression"] == 64 and img.attrs["photons"] == 1e4 and img.attrs["seed"] == 7
    assert img.attrs["read_noise_e"] == 6.0 and img.attrs["source"] == str(tmp_path / "x.zarr")
    assert img.attrs["units"]["phase"] == "rad" and img.attrs["units"]["pixel_size"] == "micrometer"
    assert img.attrs["software_version"]
    eager = read_field(out, lazy=False)
    assert isinstance(eager.data, np.ndarray)
    np.testing.assert_array_equal(eager.data, f)
    # the raw layout: namespaced attrs + exact array
    meta = json.loads((out / "zarr.json").read_text())["attributes"]
    assert meta["napari_dmicro"]["format_version"] == 1 and meta["napari_dmicro"]["kind"] == "field"
    assert zarr.open_group(str(out), mode="r")["field"].dtype == np.complex64


def test_complex128_is_stored_as_complex64(tmp_path):
    f = _field(dtype=np.complex128)
    out = write_field(tmp_path / "f", f, pixel_size_um=PS, wavelength_um=WL)
    assert out.name == "f.zarr"
    img = read_field(out, lazy=False)
    assert img.data.dtype == np.complex64
    np.testing.assert_array_equal(img.data, f.astype(np.complex64))


def test_measurement_and_phase_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    meas = rng.poisson(50, (30, 20)).astype(np.uint16)
    m = read_image(write_measurement(tmp_path / "m.zarr", meas, pixel_size_um=PS * 8, wavelength_um=WL,
                                     attrs={"compression": 64, "binning": 8}), lazy=False)
    assert m.kind == "measurement" and m.data.dtype == np.float32 and m.pixel_size_um == pytest.approx(PS * 8)
    np.testing.assert_array_equal(m.data, meas.astype(np.float32))
    assert m.attrs["binning"] == 8
    phase = rng.uniform(0, 2 * np.pi, (40, 40)).astype(np.float32)
    p = read_image(write_phase(tmp_path / "p.zarr", phase, pixel_size_um=PS, wavelength_um=WL), lazy=False)
    assert p.kind == "phase"
    np.testing.assert_array_equal(p.data, phase)
    with pytest.raises(FieldFormatError, match="holds a phase, not a complex field"):
        read_field(tmp_path / "p.zarr")


def test_dask_field_written_blockwise_with_pyramid(tmp_path):
    f = _field((1100, 1030), seed=2)
    src = da.from_array(f, chunks=(700, 600))
    out = write_field(tmp_path / "big.zarr", src, pixel_size_um=PS, wavelength_um=WL)
    img = read_field(out)
    np.testing.assert_array_equal(img.data.compute(), f)
    g = zarr.open_group(str(out), mode="r")
    assert g["field"].chunks == (1024, 1024)
    assert [g[str(k)].shape for k in range(3)] == [(2, 1100, 1030), (2, 550, 515), (2, 275, 257)]
    assert "3" not in set(g.array_keys())
    lvl0, lvl1 = g["0"][...], g["1"][...]
    np.testing.assert_allclose(lvl0[0], np.abs(f), rtol=1e-6)
    np.testing.assert_allclose(lvl0[1], np.angle(f), atol=1e-6)
    # level 1: 2x2 mean amplitude, phase = angle of the mean phasor (circular mean)
    a = np.abs(f[:1100, :1030]).reshape(550, 2, 515, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(lvl1[0], a, rtol=1e-5)
    z = (lvl0[0] * np.exp(1j * lvl0[1])).reshape(550, 2, 515, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(np.exp(1j * lvl1[1]), np.exp(1j * np.angle(z)), atol=1e-4)


def test_ome_zarr_parses_store(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    out = write_field(tmp_path / "f.zarr", _field((600, 520)), pixel_size_um=PS, wavelength_um=WL)
    nodes = list(Reader(parse_url(str(out)))())
    node = nodes[0]
    assert any(isinstance(s, Multiscales) for s in node.specs)
    assert node.metadata["channel_names"] == ["amplitude", "phase"]
    assert [ax["name"] for ax in node.metadata["axes"]] == ["c", "y", "x"]
    assert node.metadata["axes"][1]["unit"] == "micrometer"
    scales = [next(t["scale"] for t in ts if t["type"] == "scale") for ts in node.metadata["coordinateTransformations"]]
    assert scales[0] == [1.0, PS, PS] and scales[1] == [1.0, 2 * PS, 2 * PS]
    assert [d.shape for d in node.data] == [(2, 600, 520), (2, 300, 260)]
    assert node.data[0].dtype == np.float32

    m = write_measurement(tmp_path / "m.zarr", np.ones((20, 30), np.float32), pixel_size_um=2.5, wavelength_um=WL)
    node = list(Reader(parse_url(str(m)))())[0]
    assert node.metadata["channel_names"] == ["intensity"]
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [1.0, 2.5, 2.5]
    assert len(node.data) == 1


# ----------------------------------------------------------------------------------------------- foreign inputs


def test_foreign_root_complex_array_defaults_and_units(tmp_path):
    f = _field()
    z = zarr.create_array(str(tmp_path / "plain.zarr"), shape=f.shape, dtype=f.dtype, chunks=(32, 32))
    z[...] = f
    img = read_field(tmp_path / "plain.zarr")
    np.testing.assert_array_equal(img.data.compute(), f)
    assert (img.pixel_size_um, img.wavelength_um) == (DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM)
    assert img.attrs["defaults_used"] == ["pixel_size_um", "wavelength_um"]
    # metre values with an explicit unit are converted; zarr v2 works too
    z2 = zarr.create_array(str(tmp_path / "v2.zarr"), shape=f.shape, dtype=np.complex128, zarr_format=2)
    z2[...] = f
    z2.attrs.update({"pixel_size": 3.164e-07, "pixel_size_unit": "m", "wavelength_nm": 632.8})
    img = read_field(tmp_path / "v2.zarr", lazy=False)
    assert img.pixel_size_um == pytest.approx(0.3164) and img.wavelength_um == pytest.approx(0.6328)
    assert img.data.dtype == np.complex64 and img.attrs["source_dtype"] == "complex128"
    assert "defaults_used" not in img.attrs


def test_amplitude_phase_group(tmp_path):
    rng = np.random.default_rng(3)
    amp = rng.random((40, 30)).astype(np.float32)
    phase = rng.uniform(-3, 3, (40, 30)).astype(np.float32)
    g = zarr.open_group(str(tmp_path / "ap.zarr"), mode="w")
    g.create_array("amplitude", data=amp)
    g.create_array("phase", data=phase[None])  # leading singleton axis is dropped on reading
    g.attrs.update({"pixel_size_um": 0.2, "wavelength_um": 0.532})
    img = read_field(tmp_path / "ap.zarr")
    assert img.is_lazy and img.pixel_size_um == 0.2 and img.wavelength_um == 0.532
    np.testing.assert_allclose(img.data.compute(), amp * np.exp(1j * phase), rtol=1e-5, atol=1e-6)
    assert img.attrs["source_format"] == "zarr-amplitude-phase"


def test_npy_and_npz(tmp_path):
    f = _field()
    np.save(tmp_path / "f.npy", f)
    img = read_field(tmp_path / "f.npy")
    assert isinstance(img.data, np.ndarray)
    np.testing.assert_array_equal(img.data, f)
    lazy = read_field(tmp_path / "f.npy", lazy=True)
    assert lazy.is_lazy
    np.testing.assert_array_equal(lazy.data.compute(), f)

    np.savez(tmp_path / "single.npz", something=f.astype(np.complex128))
    np.testing.assert_array_equal(read_field(tmp_path / "single.npz").data, f)
    np.savez(tmp_path / "named.npz", field=f, other=np.zeros(3), pixel_size_um=0.25, wavelength_um=0.5)
    img = read_field(tmp_path / "named.npz")
    np.testing.assert_array_equal(img.data, f)
    assert (img.pixel_size_um, img.wavelength_um) == (0.25, 0.5)
    np.savez(tmp_path / "ap.npz", amplitude=np.abs(f), phase=np.angle(f))
    np.testing.assert_allclose(read_field(tmp_path / "ap.npz").data, f, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "array, pattern",
    [
        (np.ones((8, 8), np.float32), "real-valued"),
        (np.ones((2, 8, 8), np.complex64), "must be 2-D.*give stack_axis='t'"),
        (np.ones((1, 8, 8), np.complex64), "leading singleton axis is not accepted"),
        (np.ones(8, np.complex64), "must be 2-D"),
        (np.ones((0, 8), np.complex64), "empty"),
        (np.array([[1, np.nan], [1, 1]], np.complex64), "non-finite.*1 NaN"),
        (np.array([[1, np.inf], [1, 1]], np.complex64), "non-finite.*1 inf"),
    ],
)
def test_validate_field_rejects(array, pattern, tmp_path):
    with pytest.raises(FieldFormatError, match=pattern):
        validate_field(array)
    with pytest.raises(FieldFormatError, match=pattern):
        write_field(tmp_path / "x.zarr", array, pixel_size_um=PS, wavelength_um=WL)
    assert os.listdir(tmp_path) == []


def test_complex128_overflow_and_other_kinds(tmp_path):
    with pytest.raises(FieldFormatError, match="complex.*must be real"):
        write_phase(tmp_path / "p.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    with pytest.raises(FieldFormatError, match="real numeric"):
        write_measurement(tmp_path / "m.zarr", np.ones((4, 4), bool), pixel_size_um=PS, wavelength_um=WL)
    with pytest.raises(FieldFormatError, match="suffix"):
        write_field(tmp_path / "f.tif", _field(), pixel_size_um=PS, wavelength_um=WL)
    with pytest.raises(FieldFormatError, match="cannot be stored as JSON"):
        write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL, attrs={"bad": object()})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"pixel_size_um": 3.164e-07}, "looks like metres"),
        ({"wavelength_um": 632.8}, "looks like nanometres"),
        ({"wavelength_um": 6.328e-07}, "looks like metres"),
        ({"pixel_size_um": -1.0}, "positive"),
        ({"pixel_size_um": float("nan")}, "positive finite"),
        ({"wavelength_um": "0.6"}, "not a number"),
    ],
)
def test_write_rejects_bad_units(kwargs, pattern, tmp_path):
    args = {"pixel_size_um": PS, "wavelength_um": WL, **kwargs}
    with pytest.raises(UnitError, match=pattern):
        write_field(tmp_path / "f.zarr", _field(), **args)
    assert os.listdir(tmp_path) == []


def test_write_rejects_inconsistent_attrs(tmp_path):
    with pytest.raises(UnitError, match="disagrees"):
        write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL, attrs={"pixel_size_um": 0.5})
    for key, value in (("pixel_size_nm", 316.4), ("wavelength_unit", "nm"), ("pixel_size", 0.3164)):
        with pytest.raises(UnitError, match="another unit"):
            write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL, attrs={key: value})
    with pytest.raises(UnitError, match="unknown or inconsistent unit for phase"):
        write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL,
                    attrs={"units": {"phase": "deg"}})
    assert os.listdir(tmp_path) == []


def _foreign_array(path, attrs):
    z = zarr.create_array(str(path), shape=(8, 8), dtype=np.complex64)
    z[...] = 1
    z.attrs.update(attrs)
    return path


@pytest.mark.parametrize(
    "attrs, pattern",
    [
        ({"pixel_size_um": 0.3, "pixel_size_nm": 400.0}, "inconsistent pixel size"),
        ({"pixel_size": 0.3}, "has no unit"),
        ({"pixel_size": 0.3, "pixel_size_unit": "furlong"}, "unknown unit"),
        ({"wavelength_um": 632.8}, "looks like nanometres"),
        ({"pixel_size_um": 3.164e-07}, "looks like metres"),
        ({"wavelength_unit": "nm"}, "no 'wavelength' attribute"),
        ({"pixel_size_um": 0.0}, "positive"),
    ],
)
def test_read_rejects_bad_units(tmp_path, attrs, pattern):
    path = _foreign_array(tmp_path / "u.zarr", attrs)
    with pytest.raises(UnitError, match=pattern):
        read_image(path)


def test_read_rejects_bad_inputs(tmp_path):
    (tmp_path / "plain_dir.zarr").mkdir()
    with pytest.raises(NotAZarrStoreError, match="not a zarr store"):
        read_image(tmp_path / "plain_dir.zarr")
    g = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    g.create_array("image", data=np.ones((4, 4), np.float32))
    with pytest.raises(MissingArrayError, match=r"without the expected arrays.*\['image'\]"):
        read_image(tmp_path / "other.zarr")
    z = zarr.create_array(str(tmp_path / "real.zarr"), shape=(4, 4), dtype=np.float32)
    z[...] = 1
    with pytest.raises(FieldFormatError, match="real-valued"):
        read_image(tmp_path / "real.zarr")
    z = zarr.create_array(str(tmp_path / "nan.zarr"), shape=(4, 4), dtype=np.complex64)
    z[...] = np.nan
    with pytest.raises(FieldFormatError, match="non-finite"):
        read_image(tmp_path / "nan.zarr")
    np.save(tmp_path / "real.npy", np.ones((4, 4)))
    with pytest.raises(FieldFormatError, match="real-valued"):
        read_image(tmp_path / "real.npy")
    np.save(tmp_path / "stack.npy", np.ones((3, 4, 4), np.complex64))  # a stack, its axis not named
    stack = read_image(tmp_path / "stack.npy")
    assert stack.shape == (3, 4, 4) and "stack_axis" not in stack.attrs
    np.save(tmp_path / "4d.npy", np.ones((2, 3, 4, 4), np.complex64))
    with pytest.raises(FieldFormatError, match="must be 2-D.*at most 3-D"):
        read_image(tmp_path / "4d.npy")
    np.save(tmp_path / "empty.npy", np.ones((0, 4), np.complex64))
    with pytest.raises(FieldFormatError, match="empty"):
        read_image(tmp_path / "empty.npy")
    np.savez(tmp_path / "two.npz", a=np.ones((4, 4)), b=np.ones((4, 4)))
    with pytest.raises(MissingArrayError, match=r"found \['a', 'b'\]"):
        read_image(tmp_path / "two.npz")
    np.savez(tmp_path / "mismatch.npz", amplitude=np.ones((4, 4)), phase=np.ones((4, 5)))
    with pytest.raises(FieldFormatError, match="must match"):
        read_image(tmp_path / "mismatch.npz")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(FieldFormatError, match="unsupported file type"):
        read_image(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.zarr")


def _edit_attrs(path, fn):
    meta_path = path / "zarr.json"
    meta = json.loads(meta_path.read_text())
    fn(meta["attributes"])
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "edit, error, pattern",
    [
        (lambda a: a["napari_dmicro"].update(format_version=2), FieldFormatError, "newer"),
        (lambda a: a["napari_dmicro"].update(kind="hologram"), FieldFormatError, "unknown kind"),
        (lambda a: a["napari_dmicro"].pop("pixel_size_um"), UnitError, "pixel_size_um is missing"),
        (lambda a: a["napari_dmicro"]["units"].update(pixel_size="nanometer"), UnitError,
         "unknown or inconsistent unit"),
        (lambda a: a["napari_dmicro"].update(pixel_size_nm=100.0), UnitError, "inconsistent pixel size"),
        (lambda a: a["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
         .update(scale=[1, 0.5, 0.5]),
         UnitError, "OME-Zarr scale"),
        (lambda a: a["napari_dmicro"].update(kind="measurement"), MissingArrayError, "no 'measurement' array"),
    ],
)
def test_read_rejects_broken_own_store(tmp_path, edit, error, pattern):
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    _edit_attrs(out, edit)
    with pytest.raises(error, match=pattern):
        read_image(out)


# ----------------------------------------------------------------------------------------------- atomic writes


def test_existing_target(tmp_path):
    f = _field()
    out = write_field(tmp_path / "f.zarr", f, pixel_size_um=PS, wavelength_um=WL)
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        write_field(out, f, pixel_size_um=PS, wavelength_um=WL)
    write_field(out, 2 * f, pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    np.testing.assert_array_equal(read_field(out, lazy=False).data, 2 * f)
    (tmp_path / "notzarr.zarr").mkdir()
    (tmp_path / "notzarr.zarr" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        write_field(tmp_path / "notzarr.zarr", f, pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    assert (tmp_path / "notzarr.zarr" / "precious.txt").exists()
    assert _leftovers(tmp_path) == []


def test_injected_failure_leaves_nothing(tmp_path, monkeypatch):
    f = _field((600, 40))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(store, "ome_metadata", boom)
    with pytest.raises(RuntimeError, match="injected"):
        write_field(tmp_path / "f.zarr", f, pixel_size_um=PS, wavelength_um=WL)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    # an existing store survives a failed overwrite untouched
    out = write_field(tmp_path / "f.zarr", f, pixel_size_um=PS, wavelength_um=WL)
    monkeypatch.setattr(store, "ome_metadata", boom)
    with pytest.raises(RuntimeError, match="injected"):
        write_field(out, 3 * f, pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    np.testing.assert_array_equal(read_field(out, lazy=False).data, f)
    assert os.listdir(tmp_path) == ["f.zarr"]


def test_nan_in_dask_block_aborts_write(tmp_path):
    f = _field((300, 200))
    f[250, 150] = np.nan
    with pytest.raises(FieldFormatError, match=r"non-finite values in rows 0–299, cols 0–199 \(1 NaN"):
        write_field(tmp_path / "f.zarr", da.from_array(f, chunks=100), pixel_size_um=PS, wavelength_um=WL)
    assert os.listdir(tmp_path) == []


def test_image_data_compute_and_generic_writer(tmp_path):
    img = ImageData(da.from_array(np.ones((5, 6), np.float32)), "amplitude", PS, WL, {"note": "x"})
    out = write_image(tmp_path / "a.zarr", img, kind="amplitude", pixel_size_um=PS, wavelength_um=WL, attrs=img.attrs)
    back = read_image(out).compute()
    assert back.kind == "amplitude" and isinstance(back.data, np.ndarray) and back.attrs["note"] == "x"


# ----------------------------------------------------------------------------------------------- large, lazy


def test_big_field_opens_lazily(big_field_store):
    huge = tuple(zarr.open_array(str(big_field_store), mode="r").shape)  # 20000², see conftest
    from napari_dmicro._reader import napari_get_reader

    tracemalloc.start()
    try:
        img = read_field(big_field_store)
        assert img.is_lazy and img.shape == huge
        layers = napari_get_reader(str(big_field_store))(str(big_field_store))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 500e6, f"peak traced memory {peak / 1e6:.0f} MB while opening a 3.2 GB field"
    assert [kw["name"] for _, kw, _ in layers] == ["big amplitude", "big phase"]
    for data, kw, _ in layers:
        assert kw["multiscale"] is True and isinstance(data, list) and len(data) > 3
        assert all(isinstance(lv, da.Array) for lv in data)
        assert data[0].shape == huge and max(data[-1].shape) <= 1024
        assert kw["scale"] == (PS, PS)
    assert layers[1][1]["contrast_limits"][0] <= 0.0 and layers[1][1]["contrast_limits"][1] >= 2 * math.pi
