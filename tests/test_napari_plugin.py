"""npe2 manifest, napari reader/writer/sample-data contributions, and the plugin inside a viewer."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_dmicro._reader import napari_get_reader
from napari_dmicro._sample_data import SKIMAGE_CELL_PIXEL_SIZE_UM, phantom_sample, skimage_cell_sample
from napari_dmicro._writer import write_field_layers, write_single_image
from napari_dmicro.io.errors import FieldFormatError
from napari_dmicro.io.fields import read_field, read_image, write_field, write_measurement, write_phase

PS, WL = 0.3164, 0.6328
PLUGIN = "napari-dmicro"


def _field(shape=(64, 48), seed=0):
    rng = np.random.default_rng(seed)
    return ((0.5 + rng.random(shape)) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(np.complex64)


# ----------------------------------------------------------------------------------------------- manifest


def test_manifest_valid():
    import npe2

    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    assert manifest.name == PLUGIN and manifest.display_name == PLUGIN
    manifest.validate_imports()
    import napari_dmicro

    from_file = npe2.PluginManifest.from_file(Path(napari_dmicro.__file__).parent / "napari.yaml")
    from_file.validate_imports()
    contrib = from_file.contributions
    assert {"*.zarr", "*.npy", "*.npz"} == set(contrib.readers[0].filename_patterns)
    assert contrib.readers[0].accepts_directories
    assert len(contrib.writers) == 2 and {s.key for s in contrib.sample_data} == {"phantom", "skimage_cell"}
    assert {w.display_name for w in contrib.widgets} == {"Import acquisition", "Load", "Simulate compression",
                                                         "Reconstruct", "Compare", "Train"}
    assert from_file.on_activate == "napari_dmicro._preferences:activate"


# ----------------------------------------------------------------------------------------------- reader


def test_get_reader_declines_foreign_things(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    np.save(tmp_path / "real.npy", np.ones((4, 4)))
    (tmp_path / "dir.zarr").mkdir()
    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    np.savez(tmp_path / "real.npz", a=np.ones(3), b=np.ones(3))
    for name in ("a.txt", "real.npy", "real.npz", "missing.zarr"):
        assert napari_get_reader(str(tmp_path / name)) is None, name
    for name in ("dir.zarr", "empty.zarr"):  # a zarr folder we cannot read: a reader that says why
        with pytest.raises(ValueError, match=f"napari-dmicro cannot open {name}"):
            napari_get_reader(str(tmp_path / name))(str(tmp_path / name))
    np.save(tmp_path / "f.npy", _field())
    assert callable(napari_get_reader(str(tmp_path / "f.npy")))
    assert napari_get_reader([str(tmp_path / "f.npy"), str(tmp_path / "a.txt")]) is None


def test_reader_field_layers(tmp_path):
    f = _field()
    out = write_field(tmp_path / "cells.zarr", f, pixel_size_um=PS, wavelength_um=WL, attrs={"seed": 3})
    reader = napari_get_reader(str(out) + "/")
    layers = reader(str(out))
    assert [(kw["name"], t) for _, kw, t in layers] == [("cells amplitude", "image"), ("cells phase", "image")]
    (amp, amp_kw, _), (ph, ph_kw, _) = layers
    np.testing.assert_allclose(amp, np.abs(f), rtol=1e-6)
    # phase relative to the field's background (phase_reference), recorded so the field comes back exactly
    bg = ph_kw["metadata"]["napari_dmicro"]["phase_background_rad"]
    np.testing.assert_allclose(np.exp(1j * (ph + bg)), np.exp(1j * np.angle(f)), atol=1e-5)
    assert amp_kw["colormap"] == "gray" and ph_kw["colormap"] == "viridis"
    lo, hi = ph_kw["contrast_limits"]
    assert lo <= 0.0 and hi >= 2 * math.pi
    # display range: 0.1–99.9 percentiles of the amplitude (robust to hot pixels)
    assert amp_kw["contrast_limits"] == pytest.approx(tuple(np.percentile(np.abs(f), [0.1, 99.9])), rel=1e-4)
    assert amp_kw["scale"] == ph_kw["scale"] == (PS, PS)
    md = ph_kw["metadata"]["napari_dmicro"]
    assert md["kind"] == "field" and md["component"] == "phase"
    assert md["pixel_size_um"] == PS and md["wavelength_um"] == WL and md["source"] == str(out)
    assert md["attrs"]["seed"] == 3


def test_reader_measurement_and_phase_map(tmp_path):
    m = write_measurement(tmp_path / "m.zarr", np.arange(12, dtype=np.float32).reshape(3, 4),
                          pixel_size_um=2.5, wavelength_um=WL)
    (data, kw, _), = napari_get_reader(str(m))(str(m))
    assert kw["name"] == "m measurement" and kw["colormap"] == "gray"
    assert kw["contrast_limits"] == pytest.approx((0.011, 10.989))
    assert kw["scale"] == (2.5, 2.5)
    p = write_phase(tmp_path / "p.zarr", np.full((5, 5), 1.0, np.float32), pixel_size_um=PS, wavelength_um=WL)
    (data, kw, _), = napari_get_reader(str(p))(str(p))
    assert kw["name"] == "p phase" and kw["contrast_limits"] == (0.0, 2 * math.pi)
    assert kw["colormap"] == "viridis"  # the one phase colormap


def test_reader_raises_on_broken_own_store(tmp_path):
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    g = zarr.open_group(str(out), mode="r+")
    block = dict(g.attrs["napari_dmicro"])
    block["wavelength_um"] = 632.8
    g.attrs["napari_dmicro"] = block
    reader = napari_get_reader(str(out))
    assert reader is not None
    with pytest.raises(FieldFormatError, match="looks like nanometres"):
        reader(str(out))
    # metadata that is not even valid JSON, but names us: still ours, and reading says what is wrong
    (out / "zarr.json").write_text('{"napari_dmicro": ')
    reader = napari_get_reader(str(out))
    assert reader is not None
    with pytest.raises(FieldFormatError, match="could not be opened as a zarr store"):
        reader(str(out))


def test_reader_large_own_store_is_multiscale(tmp_path, monkeypatch):
    import napari_dmicro._reader as r

    monkeypatch.setattr(r, "EAGER_DISPLAY_PIXELS", 100 * 100)  # treat a 1100×1030 field as "large"
    out = write_field(tmp_path / "f.zarr", _field((1100, 1030)), pixel_size_um=PS, wavelength_um=WL)
    (amp, kw, _), (ph, ph_kw, _) = napari_get_reader(str(out))(str(out))
    assert kw["multiscale"] and [lv.shape for lv in amp] == [(1100, 1030), (550, 515), (275, 257)]
    assert all(isinstance(lv, da.Array) for lv in amp + ph)
    assert ph_kw["contrast_limits"][0] <= 0.0 and ph_kw["contrast_limits"][1] >= 2 * math.pi


# ----------------------------------------------------------------------------------------------- writer


def test_writers_direct(tmp_path):
    f = _field()
    out = write_field(tmp_path / "f.zarr", f, pixel_size_um=PS, wavelength_um=WL, attrs={"seed": 5})
    layers = napari_get_reader(str(out))(str(out))
    # the two layers back into a field
    (written,) = write_field_layers(str(tmp_path / "again.zarr"), layers[::-1])
    img = read_field(written, lazy=False)
    np.testing.assert_allclose(img.data, f, rtol=1e-5, atol=1e-6)
    assert img.pixel_size_um == PS and img.wavelength_um == WL and img.attrs["seed"] == 5
    # one phase layer of the field -> a phase store
    data, kw, _ = layers[1]
    (p,) = write_single_image(str(tmp_path / "phase"), data, kw)
    ph = read_image(p, lazy=False)
    assert p.endswith("phase.zarr") and ph.kind == "phase" and ph.pixel_size_um == PS
    bg = kw["metadata"]["napari_dmicro"]["phase_background_rad"]
    np.testing.assert_allclose(np.exp(1j * (ph.data + bg)), np.exp(1j * np.angle(f)), atol=1e-5)
    # a plain float layer without metadata: phase map, default sampling recorded
    (q,) = write_single_image(str(tmp_path / "plain.zarr"), np.ones((4, 4)), {"name": "x", "scale": [1.0, 1.0]})
    plain = read_image(q)
    assert plain.kind == "phase" and plain.attrs["defaults_used"] == ["pixel_size_um", "wavelength_um"]
    # an integer layer with a calibrated scale: measurement
    (c,) = write_single_image(str(tmp_path / "cam.zarr"), np.ones((4, 4), np.uint16),
                              {"name": "cam", "scale": [5.0, 5.0]})
    cam = read_image(c)
    assert cam.kind == "measurement" and cam.pixel_size_um == 5.0


def test_writer_errors(tmp_path):
    a = np.ones((4, 4), np.float32)
    with pytest.raises(FieldFormatError, match="cannot tell which"):
        write_field_layers(str(tmp_path / "f.zarr"), [(a, {"name": "x"}, "image"), (a, {"name": "y"}, "image")])
    with pytest.raises(FieldFormatError, match="must match"):
        write_field_layers(str(tmp_path / "f.zarr"), [(a, {"name": "x amplitude"}, "image"),
                                                      (np.ones((4, 5)), {"name": "x phase"}, "image")])
    with pytest.raises(FieldFormatError, match="anisotropic"):
        write_single_image(str(tmp_path / "p.zarr"), a, {"name": "p", "scale": [1.0, 2.0]})
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- sample data


def test_skimage_cell_sample():
    (data, kw, t), = skimage_cell_sample()
    assert t == "image" and data.shape == (660, 550) and data.dtype == np.float32
    assert 0 <= data.min() and data.max() < 2 * math.pi
    assert kw["scale"] == (SKIMAGE_CELL_PIXEL_SIZE_UM,) * 2 and "relative phase" in kw["name"]
    assert "2*pi/256" in kw["metadata"]["napari_dmicro"]["attrs"]["description"]


def test_phantom_sample():
    layers = phantom_sample()
    assert [kw["name"].split()[-1] for _, kw, _ in layers] == ["amplitude", "phase"]
    assert layers[0][0].shape == (512, 512) and layers[1][1]["colormap"] == "viridis"


# ----------------------------------------------------------------------------------------------- in a viewer


@pytest.mark.gui
def test_viewer_open_save_and_samples(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    f = _field((80, 60))
    out = write_field(tmp_path / "cells.zarr", f, pixel_size_um=PS, wavelength_um=WL)
    layers = viewer.open(str(out), plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["cells amplitude", "cells phase"]
    amp, phase = layers
    assert tuple(amp.scale) == tuple(phase.scale) == (PS, PS)
    assert phase.contrast_limits[0] <= 0.0 and phase.contrast_limits[1] >= 2 * math.pi
    assert phase.colormap.name == "viridis"
    # save both layers back through napari's writer machinery
    saved = viewer.layers.save(str(tmp_path / "saved.zarr"), plugin=PLUGIN)
    assert [Path(p).name for p in saved] == ["saved.zarr"]
    np.testing.assert_allclose(read_field(saved[0], lazy=False).data, f, rtol=1e-5, atol=1e-6)
    viewer.layers.selection = {phase}
    saved = viewer.layers.save(str(tmp_path / "phase_only.zarr"), selected=True, plugin=PLUGIN)
    assert read_image(saved[0]).kind == "phase"
    viewer.layers.clear()
    viewer.open_sample(PLUGIN, "skimage_cell")
    assert viewer.layers[-1].data.shape == (660, 550)
    viewer.open_sample(PLUGIN, "phantom")
    assert [layer.name for layer in viewer.layers[-2:]] == ["phantom (seed 0) amplitude", "phantom (seed 0) phase"]


@pytest.mark.gui
def test_viewer_big_lazy_field(make_napari_viewer, big_field_store):
    """A 20000² complex64 field (3.2 GB in memory) opens and renders as lazy multiscale layers."""
    path = big_field_store
    viewer = make_napari_viewer()
    tracemalloc.start()
    try:
        layers = viewer.open(str(path), plugin=PLUGIN)
        screenshot = viewer.screenshot(canvas_only=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 500e6, f"peak traced memory {peak / 1e6:.0f} MB"
    assert [layer.multiscale for layer in layers] == [True, True]
    assert all(isinstance(lv, da.Array) for layer in layers for lv in layer.data)
    assert layers[0].data[0].shape == (20000, 20000)
    assert layers[1].contrast_limits[0] <= 0.0 and layers[1].contrast_limits[1] >= 2 * math.pi
    assert screenshot.ndim == 3 and screenshot.std() > 0
