"""A lab's data in the napari widgets (Xvfb): hologram import at the right µm scale, sampling never guessed,
the reader preference, and phase shown background-referenced everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_dmicro.phantoms import make_field

pytestmark = pytest.mark.gui

TIMEOUT_MS = 300_000  # a bound for a busy machine, not the expected time
HL60_PIXEL_UM, HL60_WAVELENGTH_UM = 0.107, 0.633  # PROVENANCE.txt of qpimage_hl60_oah_hologram


def _wait(qtbot, worker, timeout=TIMEOUT_MS):
    assert worker is not None
    qtbot.waitUntil(lambda: worker.done, timeout=timeout)


def test_import_widget_turns_the_measured_hl60_hologram_into_field_layers_at_its_scale(
        make_napari_viewer, qtbot, tmp_path, realdata, notifications):
    from napari_dmicro.io.fields import read_field
    from napari_dmicro.widgets.importer import ImportWidget
    from napari_dmicro.widgets.layers import scale_bar

    viewer = make_napari_viewer()
    widget = ImportWidget(viewer)
    viewer.window.add_dock_widget(widget)
    hologram = realdata / "qpimage_hl60_oah_hologram" / "hologram_cell.npz"
    widget.path_edit.setText(str(hologram))
    # pixel size and wavelength are required: without them nothing runs and the notification says so
    assert widget.pixel_size.isEnabled() and widget.wavelength.isEnabled()
    assert widget.run() is None
    assert any("pixel size" in m and "never guessed" in m for m in notifications.errors())
    widget.pixel_size.setValue(HL60_PIXEL_UM)
    widget.wavelength.setValue(HL60_WAVELENGTH_UM)
    widget.output_edit.setText(str(tmp_path / "hl60.zarr"))
    _wait(qtbot, widget.run())
    assert len(notifications.errors()) == 1, notifications.errors()
    amp, phase = widget.last_layers
    assert phase.name == "hologram_cell phase" and tuple(phase.scale) == pytest.approx((HL60_PIXEL_UM,) * 2)
    # the field qpimage retrieved from the same hologram (its phase unwrapped, tilt-corrected)
    ref = np.load(realdata / "qpimage_hl60_oah_hologram" / "hologram_cell_retrieved_field.npz")["phase"]
    shown = np.asarray(phase.data)
    centre = (slice(20, -20), slice(20, -20))
    diff = shown[centre] - ref[centre]
    rms = float(np.sqrt(np.mean((diff - np.median(diff)) ** 2)))
    assert rms < 0.1, rms  # rad, after removing the global offset no camera sees
    assert shown.max() > 4.0  # the nucleus reads ~5 rad, not wrapped to −1.3
    assert phase.colormap.name == "viridis" and phase.colorbar.visible and scale_bar(viewer).visible
    stored = read_field(tmp_path / "hl60.zarr")
    assert stored.pixel_size_um == pytest.approx(HL60_PIXEL_UM) and stored.wavelength_um == pytest.approx(0.633)
    assert stored.attrs["hologram_background_file"].endswith(":bg_data")
    assert np.abs(np.asarray(stored.data)).mean() == pytest.approx(float(np.asarray(amp.data).mean()), rel=1e-4)


def test_load_widget_asks_for_the_sampling_of_a_foreign_field_and_shows_the_values_in_use(
        make_napari_viewer, qtbot, tmp_path, notifications):
    from napari_dmicro.widgets.load import LoadWidget

    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    viewer.window.add_dock_widget(widget)
    np.save(tmp_path / "foreign.npy", make_field(seed=2, size_px=(48, 48)))
    assert widget.pixel_size.isEnabled() and widget.wavelength.isEnabled()  # editable for fields too
    _wait(qtbot, widget.load(str(tmp_path / "foreign.npy")))
    assert not viewer.layers and any("pixel size" in m and "never guessed" in m for m in notifications.errors())
    widget.pixel_size.setValue(0.139)
    widget.wavelength.setValue(0.6328)
    _wait(qtbot, widget.load(str(tmp_path / "foreign.npy")))
    phase = viewer.layers["foreign phase"]
    assert tuple(phase.scale) == pytest.approx((0.139, 0.139))
    assert "pixel 0.139 µm (entered)" in widget.status.text() and "λ 0.6328 µm (entered)" in widget.status.text()


def test_field_phase_layers_are_background_referenced_not_wrapped(make_napari_viewer, tmp_path):
    from napari_dmicro.io.fields import write_field
    from napari_dmicro.widgets.layers import reference_phase

    yy, xx = np.mgrid[-32:32, -32:32]
    phase = 5.0 * np.exp(-(xx**2 + yy**2) / 12.0**2) + 1.0  # a 5 rad nucleus on a background at 1 rad
    store = write_field(tmp_path / "nucleus.zarr", np.exp(1j * phase).astype(np.complex64), pixel_size_um=0.2,
                        wavelength_um=0.6)
    viewer = make_napari_viewer()
    layers = viewer.open(str(store), plugin="napari-dmicro")
    shown = np.asarray(layers[1].data)
    assert shown[32, 32] == pytest.approx(5.0, abs=0.1) and shown[2, 2] == pytest.approx(0.0, abs=0.1)  # rad
    assert layers[1].colormap.name == "viridis"
    lo, hi = layers[1].contrast_limits  # 0..2π, widened to the data's 0.1 percentile (background noise below 0)
    assert -0.1 < lo <= 0.0 and hi == pytest.approx(2 * math.pi)
    np.testing.assert_allclose(reference_phase(layers[1])[32, 32], shown[32, 32], atol=1e-6)
    # a field phase layer from elsewhere (angle in (−π, π]) is referenced by the same rule
    viewer.add_image(np.angle(np.exp(1j * phase)).astype(np.float32), name="raw phase",
                     metadata={"napari_dmicro": {"kind": "field", "component": "phase"}})
    np.testing.assert_allclose(reference_phase(viewer.layers["raw phase"])[32, 32], 5.0, atol=0.1)


def test_the_plugin_is_napari_s_reader_for_zarr_and_explains_a_foreign_store(make_napari_viewer, tmp_path):
    import zarr
    from napari.settings import get_settings

    from napari_dmicro._preferences import prefer_plugin_reader
    from napari_dmicro.io.fields import write_field

    get_settings().plugins.extension2reader = {}
    viewer = make_napari_viewer()
    store = write_field(tmp_path / "f.zarr", make_field(seed=1, size_px=(32, 32)), pixel_size_um=0.3,
                        wavelength_um=0.6)
    prefer_plugin_reader()
    assert get_settings().plugins.extension2reader["*.zarr/"] == "napari-dmicro"  # napari matches folders as "x/"
    layers = viewer.open(str(store), plugin=None)  # as File ▸ Open does: the preferred reader, no dialog
    assert [layer.name for layer in layers] == ["f amplitude", "f phase"]
    zarr.open_array(str(tmp_path / "u16.zarr"), mode="w", shape=(8, 8), dtype="uint16")
    with pytest.raises(Exception) as info:
        viewer.open(str(tmp_path / "u16.zarr"), plugin=None)
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or getattr(exc, "original_error", None)
    assert any("napari-dmicro cannot open u16.zarr" in m for m in chain), chain
    get_settings().plugins.extension2reader = {"*.zarr": "other-plugin"}
    assert prefer_plugin_reader() == {}  # the user's choice is kept


def test_a_time_lapse_goes_through_simulate_and_reconstruct_as_3d_layers(make_napari_viewer, qtbot, tmp_path,
                                                                        tiny_checkpoints, monkeypatch):
    from napari_dmicro import api, model_registry
    from napari_dmicro.config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
    from napari_dmicro.io.fields import write_field
    from napari_dmicro.widgets.load import LoadWidget
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import SimulateWidget

    registry = model_registry.ModelRegistry()
    monkeypatch.setattr(model_registry, "_REGISTRY", registry)
    registry.add_checkpoint(tiny_checkpoints["lff"])
    stack = np.stack([make_field(seed=s, size_px=(64, 64)) for s in (1, 2)])
    store = write_field(tmp_path / "tl.zarr", stack, pixel_size_um=DEFAULT_PIXEL_SIZE_UM,
                        wavelength_um=DEFAULT_WAVELENGTH_UM, stack_axis="t")
    viewer = make_napari_viewer()
    load, sim, rec = LoadWidget(viewer), SimulateWidget(viewer), ReconstructWidget(viewer)
    _wait(qtbot, load.load(str(store)))
    sim.model_combo.select("lff")
    _wait(qtbot, sim.run())
    meas = sim.last_layer
    model = api.load_model(tiny_checkpoints["lff"])
    expected_meas = np.asarray(api.simulate(stack, model))  # (planes, camera rows, cols): the engine's rule
    assert meas.data.shape == expected_meas.shape and meas.data.ndim == 3
    assert tuple(meas.scale)[0] == 1.0  # planes on a slider
    # the layers hold the field up to its background phase (unseen by a camera) and float32 rounding
    np.testing.assert_allclose(meas.data, expected_meas, rtol=0, atol=1e-3 * float(expected_meas.max()))
    assert rec.model_combo.currentText() == "lff"
    _wait(qtbot, rec.run())
    phase = rec.last_layer
    assert phase.data.shape == (2, 64, 64) and tuple(phase.scale)[1:] == pytest.approx((DEFAULT_PIXEL_SIZE_UM,) * 2)
    # the same as the API on the stack, plane by plane
    expected = api.reconstruct(api.simulate(stack, model), model)
    # rad: the layers rebuild the field up to its background phase (float32 rounding of exp(i·φ)), a few mrad
    np.testing.assert_allclose(phase.data, expected, atol=0.01)


def _fit_zoom(viewer, layers=None) -> float:
    """napari's zoom (screen px per µm) that fits ``layers`` (default: every layer) in one grid tile, 5 % margin."""
    _, scene_size, _ = viewer._get_scene_parameters(layers=layers)
    return float(viewer._get_2d_camera_zoom(scene_size, 0.95))


def test_grid_tiles_are_sized_by_the_shown_layers_not_by_hidden_large_ones(make_napari_viewer, qtbot):
    from napari_dmicro.widgets.compare import CompareWidget, grid_model

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    # a 126 µm camera image (as Simulate adds) left in the viewer; the 21 µm field phase and its reconstruction
    camera = viewer.add_image(np.zeros((400, 400), np.float32), scale=(0.3164, 0.3164), name="camera image")
    ref = viewer.add_image(rng.random((200, 210), np.float32), scale=(HL60_PIXEL_UM,) * 2, name="cell phase",
                           metadata={"napari_dmicro": {"kind": "field", "component": "phase"}})
    rec = viewer.add_image(rng.random((200, 210), np.float32), scale=(HL60_PIXEL_UM,) * 2, name="cell recon",
                           metadata={"napari_dmicro": {"kind": "phase", "attrs": {"model": "m"}}})
    widget = CompareWidget(viewer)
    assert widget.ref_combo.current_layer() is ref and widget.reconstructions() == [rec]
    widget.set_grid(True)
    assert not camera.visible and grid_model(viewer).actual_shape(viewer.layers) == (1, 2)
    shown_zoom, all_zoom = _fit_zoom(viewer, [ref, rec]), _fit_zoom(viewer)
    assert shown_zoom > 5 * all_zoom  # 22.5 µm tiles against the hidden 126.6 µm camera image
    assert viewer.scene.camera.zoom == pytest.approx(shown_zoom, rel=1e-6)
    viewer.reset_view()  # Home / Ctrl+R: napari spans every layer, the hidden camera image too
    assert viewer.scene.camera.zoom == pytest.approx(shown_zoom, rel=1e-6)  # was all_zoom: cells a fifth
    viewer.fit_to_view()  # View ▸ Fit to view
    assert viewer.scene.camera.zoom == pytest.approx(shown_zoom, rel=1e-6)
    widget.set_grid(False)
    assert camera.visible
    viewer.reset_view()  # outside the grid napari's own fit of every layer again
    assert viewer.scene.camera.zoom == pytest.approx(_fit_zoom(viewer), rel=1e-6)


def test_measured_hologram_to_comparison_in_napari_at_0_107_um_throughout(make_napari_viewer, qtbot, realdata,
                                                                          notifications):
    """Issue 11's route in the widgets: Import (hologram) → Simulate (shipped lff-x64) → Reconstruct → Compare."""
    from napari_dmicro.widgets.compare import CELL, CompareWidget, grid_model
    from napari_dmicro.widgets.importer import ImportWidget
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import SimulateWidget

    def scale_um(layer):
        return tuple(float(s) for s in layer.scale[-2:])

    viewer = make_napari_viewer()
    imp = ImportWidget(viewer)
    imp.path_edit.setText(str(realdata / "qpimage_hl60_oah_hologram" / "hologram_cell.npz"))
    imp.pixel_size.setValue(HL60_PIXEL_UM)
    imp.wavelength.setValue(HL60_WAVELENGTH_UM)
    _wait(qtbot, imp.run())
    amp, field_phase = imp.last_layers
    assert scale_um(amp) == pytest.approx((HL60_PIXEL_UM,) * 2) and scale_um(field_phase) == scale_um(amp)

    sim = SimulateWidget(viewer)
    assert sim.phase_combo.current_layer() is field_phase and sim.amp_combo.current_layer() is amp
    assert sim.model_combo.currentText() == "lff-x64"  # a shipped trained model, not random optics
    _wait(qtbot, sim.run())
    meas = sim.last_layer
    attrs = meas.metadata["napari_dmicro"]["attrs"]
    # the field was resampled to the model's 0.3164 µm grid for the optics, and the record says so
    assert attrs["source_pixel_size_um"] == pytest.approx(HL60_PIXEL_UM)
    assert attrs["source_wavelength_um"] == pytest.approx(HL60_WAVELENGTH_UM)
    assert list(attrs["source_field_shape"]) == [200, 210] and "0.107" in attrs["grid_adaptation"]
    assert scale_um(meas) == pytest.approx((0.3164 * 8,) * 2, rel=1e-3)  # x64: 8×8 binned camera pixels

    rec = ReconstructWidget(viewer)
    assert rec.meas_combo.current_layer() is meas and rec.model_combo.currentText() == "lff-x64"  # as recorded
    _wait(qtbot, rec.run())
    recon = rec.last_layer
    assert recon.data.shape == (200, 210) and scale_um(recon) == pytest.approx((HL60_PIXEL_UM,) * 2)
    assert recon.metadata["napari_dmicro"]["wavelength_um"] == pytest.approx(HL60_WAVELENGTH_UM)

    cmp_ = CompareWidget(viewer)
    assert cmp_.ref_combo.current_layer() is field_phase  # the ground truth, not the newest reconstruction
    assert cmp_.reconstructions() == [recon] and cmp_.region_combo.currentText() == CELL
    _wait(qtbot, cmp_.compare())
    full, cell = cmp_.results[recon.name], cmp_.region_results[recon.name]
    assert all(math.isfinite(v) for v in (full.psnr_db, full.ssim, cell.psnr_db, cell.ssim))
    assert cmp_.table.rowCount() == 1 and cmp_.table.item(0, 0).text() == recon.name
    assert float(cmp_.table.item(0, 1).text()) == pytest.approx(full.psnr_db, abs=0.005)
    assert float(cmp_.table.item(0, 3).text()) == pytest.approx(cell.psnr_db, abs=0.005)
    assert cell.extra["region_pixels"] > 5000 and f"{cell.extra['region_pixels']} px" in cmp_.summary.text()
    ssim_layer = cmp_.ssim_layers[recon.name]
    assert ssim_layer.visible and scale_um(ssim_layer) == pytest.approx((HL60_PIXEL_UM,) * 2)

    cmp_.set_grid(True)  # the 100 µm camera image stays in the viewer, hidden: tiles fit the 22 µm cell
    tiles = [layer for layer in viewer.layers if layer.visible]
    assert tiles == [field_phase, recon] and grid_model(viewer).actual_shape(viewer.layers) == (1, 2)
    assert all(layer.name_overlay.visible for layer in tiles) and not meas.visible
    assert viewer.scene.camera.zoom == pytest.approx(_fit_zoom(viewer, tiles), rel=1e-6)
    assert notifications.errors() == []
