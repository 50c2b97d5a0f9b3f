"""The napari widgets in a real viewer (Xvfb): load, simulate → reconstruct → compare, line profiles,
training with Cancel, the shared model list, error notifications and a rendered screenshot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from napari_dmicro._reader import image_layers
from napari_dmicro.config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from napari_dmicro.io.fields import ImageData
from napari_dmicro.phantoms import make_field

pytestmark = pytest.mark.gui

PS = DEFAULT_PIXEL_SIZE_UM
TIMEOUT_MS = 300_000  # a bound for a busy machine, not the expected time


@pytest.fixture
def registry(monkeypatch):
    """A fresh session model list for each test (the widgets use the module-level one)."""
    from napari_dmicro import model_registry

    fresh = model_registry.ModelRegistry()
    monkeypatch.setattr(model_registry, "_REGISTRY", fresh)
    return fresh


def _add_field(viewer, seed=1, size=(128, 128), name="cell"):
    field = make_field(seed=seed, size_px=size)
    img = ImageData(field, "field", PS, DEFAULT_WAVELENGTH_UM, {"seed": seed})
    layers = [viewer.add_image(data, **kw) for data, kw, _ in image_layers(img, name=name, source=f"phantom {seed}")]
    return field, layers  # amplitude, phase


def _wait(qtbot, worker, timeout=TIMEOUT_MS):
    """Wait until a widget's worker has finished and its result slots have run."""
    assert worker is not None
    qtbot.waitUntil(lambda: worker.done, timeout=timeout)


# ------------------------------------------------------------------------------------------------ load


def test_load_widget_opens_a_field_store_and_a_raw_detector_image(make_napari_viewer, qtbot, tmp_path,
                                                                   notifications):
    from napari_dmicro.io.fields import write_field
    from napari_dmicro.widgets.load import LoadWidget

    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    viewer.window.add_dock_widget(widget)
    field = make_field(seed=2, size_px=(64, 80))
    store = write_field(tmp_path / "cells.zarr", field, pixel_size_um=PS, wavelength_um=DEFAULT_WAVELENGTH_UM)
    _wait(qtbot, widget.load(str(store)))
    assert [layer.name for layer in viewer.layers] == ["cells amplitude", "cells phase"]
    phase = viewer.layers["cells phase"]  # background-referenced: the field up to its background phase
    bg = phase.metadata["napari_dmicro"]["phase_background_rad"]
    np.testing.assert_allclose(np.exp(1j * (np.asarray(phase.data) + bg)), np.exp(1j * np.angle(field)), atol=1e-5)
    assert tuple(viewer.layers["cells phase"].scale) == pytest.approx((PS, PS))

    raw = np.random.default_rng(0).random((16, 20)).astype(np.float32)
    np.save(tmp_path / "camera.npy", raw)
    widget.set_kind("measurement")
    widget.camera_ps.setValue(PS * 4)
    _wait(qtbot, widget.load(str(tmp_path / "camera.npy")))  # no wavelength: refused, never guessed
    assert "camera measurement" not in viewer.layers
    assert any("records no wavelength" in m for m in notifications.errors())
    widget.wavelength.setValue(DEFAULT_WAVELENGTH_UM)
    _wait(qtbot, widget.load(str(tmp_path / "camera.npy")))
    layer = viewer.layers["camera measurement"]
    np.testing.assert_array_equal(np.asarray(layer.data), raw)
    assert tuple(layer.scale) == pytest.approx((PS * 4, PS * 4))
    assert layer.metadata["napari_dmicro"]["component"] == "measurement"

    # a raw real .npy is not a field: the error is a notification and the widget stays usable
    widget.set_kind("field")
    _wait(qtbot, widget.load(str(tmp_path / "camera.npy")))
    assert any("not a field" in m for m in notifications.errors())
    assert widget.load_button.isEnabled()


# ------------------------------------------------------------------------------------------------ pipeline


def test_simulate_reconstruct_compare_and_profiles(make_napari_viewer, qtbot, tiny_checkpoints, registry,
                                                   notifications):
    from napari_dmicro.widgets.compare import CompareWidget
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import SimulateWidget
    from napari_dmicro.widgets.workers import UNTRAINED_LFF

    viewer = make_napari_viewer()
    field, (amp_layer, phase_layer) = _add_field(viewer)
    sim, rec, cmp_ = SimulateWidget(viewer), ReconstructWidget(viewer), CompareWidget(viewer)
    for w in (sim, rec, cmp_):
        viewer.window.add_dock_widget(w)
    assert sim.model_combo.currentText() == "lff-x64"  # a shipped trained model, not random optics
    assert cmp_.ref_combo.current_layer() is phase_layer  # the ground truth
    entries = [registry.add_checkpoint(tiny_checkpoints[name]) for name in ("lff", "lff-seed1")]
    assert [e.name for e in entries] == ["lff", "lff-seed1"]
    # both combos learnt about the models at once
    assert {"lff", "lff-seed1"} <= {rec.model_combo.itemText(i) for i in range(rec.model_combo.count())}
    assert sim.model_combo.itemText(0) == UNTRAINED_LFF

    # the compression choice is for the untrained filter only
    sim.model_combo.select(UNTRAINED_LFF)
    assert sim.compression.isEnabled()
    sim.model_combo.select("lff")
    assert not sim.compression.isEnabled() and sim.compression.currentData() == 16
    assert sim.phase_combo.current_layer() is phase_layer and sim.amp_combo.current_layer() is amp_layer
    sim.photons.setValue(1e4)
    sim.read_noise.setValue(2.0)
    sim.seed.setValue(3)
    _wait(qtbot, sim.run())
    meas = sim.last_layer
    assert meas is not None and meas.data.shape == (32, 32)
    assert tuple(meas.scale) == pytest.approx((PS * 4, PS * 4))
    md = meas.metadata["napari_dmicro"]
    assert md["component"] == "measurement" and md["attrs"]["field_shape"] == [128, 128]
    assert md["attrs"]["max_photons"] == 1e4 and md["attrs"]["seed"] == 3
    assert sim.progress.value() == 100

    # reconstruct each model's measurement → two phase layers on the field's grid
    assert rec.meas_combo.current_layer() is meas
    assert rec.model_combo.currentText() == "lff" and "recorded with lff" in rec.recorded.text()
    rec.model_combo.select("lff-seed1")  # another model's decoder: refused, with the fix
    assert rec.run() is None
    assert any("recorded with model 'lff'" in m and "choose 'lff'" in m for m in notifications.errors())
    rec.model_combo.select("lff")
    phases = []
    for name in ("lff", "lff-seed1"):
        if name != "lff":
            sim.model_combo.select(name)
            _wait(qtbot, sim.run())
            rec.meas_combo.set_layer(sim.last_layer)
        assert rec.model_combo.currentText() == name  # the model the measurement records
        assert "tiny test" in rec.card.text() and "PSNR 12.50" in rec.card.text()
        rec.overlap.setValue(2)
        _wait(qtbot, rec.run())
        layer = rec.last_layer
        assert layer.name == f"{name} phase"
        assert layer.data.shape == field.shape and tuple(layer.scale) == pytest.approx((PS, PS))
        assert tuple(layer.translate) == pytest.approx((0.0, 0.0))
        assert layer.colormap.name == "viridis" and tuple(layer.contrast_limits)[1] >= 2 * math.pi - 1e-6
        info = layer.metadata["napari_dmicro"]["attrs"]
        assert info["model"] == name and info["overlap_camera_px"] == 2 and info["device"] == "cpu"
        phases.append(layer)

    # compare: reference = the field's phase, both reconstructions ticked by default
    cmp_.set_reference(phase_layer)
    assert [layer.name for layer in cmp_.reconstructions()] == ["lff phase", "lff-seed1 phase"]
    _wait(qtbot, cmp_.compare())
    assert set(cmp_.results) == {"lff phase", "lff-seed1 phase"}
    from napari_dmicro import api

    # the widget's reference is the field's phase layer, background-referenced (widgets.layers.reference_phase)
    from napari_dmicro.widgets.layers import reference_phase

    expected = api.evaluate(phases[0].data, reference_phase(phase_layer))
    assert cmp_.results["lff phase"].ssim == pytest.approx(expected.ssim, abs=1e-6)
    assert cmp_.table.rowCount() == 2 and cmp_.table.item(0, 2).text() == f"{expected.ssim:.3f}"
    assert "region = cell mask" in cmp_.summary.text() and "best SSIM" in cmp_.summary.text()
    ssim_layer = viewer.layers["lff phase SSIM"]
    assert ssim_layer.data.shape == field.shape and ssim_layer.colormap.name == "magma"
    assert ssim_layer.opacity == pytest.approx(0.5) and tuple(ssim_layer.scale) == pytest.approx((PS, PS))
    # one SSIM overlay shown at a time, toggled; the region (cell mask) scored beside the full field
    cmp_.overlay_combo.setCurrentText("lff phase")
    assert ssim_layer.visible and not viewer.layers["lff-seed1 phase SSIM"].visible
    cmp_.overlay_combo.setCurrentText("(none)")
    assert not ssim_layer.visible and not viewer.layers["lff-seed1 phase SSIM"].visible
    from napari_dmicro.regions import cell_mask, evaluate_region

    region = evaluate_region(phases[0].data, reference_phase(phase_layer), cell_mask(reference_phase(phase_layer)))
    assert cmp_.region_results["lff phase"].psnr_db == pytest.approx(region.psnr_db, abs=1e-6)
    assert cmp_.table.item(0, 3).text() == f"{region.psnr_db:.2f}"
    cmp_.overlay_combo.setCurrentText("lff phase")

    # side by side in grid mode, and back
    from napari_dmicro.widgets.compare import grid_model

    cmp_.set_grid(True)
    assert grid_model(viewer).enabled and cmp_.grid_button.isChecked()
    assert not ssim_layer.visible and not amp_layer.visible and phases[1].visible
    assert phases[1].name_overlay.visible and phase_layer.name_overlay.visible  # tiles labelled
    cmp_.set_grid(False)
    assert not grid_model(viewer).enabled and ssim_layer.visible and amp_layer.visible

    # line profile: one curve per layer (reference + 2), following the line when it moves
    line = cmp_.add_profile_line()
    qtbot.waitUntil(lambda: len(cmp_.profiles) == 3, timeout=5000)
    assert len(cmp_.ax.get_lines()) == 3
    dist, ref_values = cmp_.profiles["cell phase"]
    assert dist[-1] == pytest.approx(0.8 * 128 * PS, rel=0.02)
    row = int(round(line.data[0][0][0] / PS))
    assert line.data[0][0][0] == line.data[0][1][0]  # a horizontal line through the busiest row
    cols = np.linspace(0.1 * 128, 0.9 * 128, len(ref_values))
    expected = np.interp(cols, np.arange(128), np.asarray(phase_layer.data)[row])
    np.testing.assert_allclose(ref_values, expected, atol=1e-4)
    line.data = [np.array([[10 * PS, 10 * PS], [100 * PS, 100 * PS]])]
    qtbot.waitUntil(lambda: cmp_.profiles["cell phase"][0][-1] == pytest.approx(90 * math.sqrt(2) * PS, rel=0.02),
                    timeout=5000)
    assert len(cmp_.ax.get_lines()) == 3


def test_untrained_filter_and_errors_become_notifications(make_napari_viewer, qtbot, registry, notifications):
    from napari_dmicro.widgets.compare import CompareWidget
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import UNIT_AMPLITUDE, SimulateWidget
    from napari_dmicro.widgets.workers import UNTRAINED_LFF

    viewer = make_napari_viewer()
    rec = ReconstructWidget(viewer)
    viewer.window.add_dock_widget(rec)
    assert rec.run() is None  # nothing to reconstruct: a notification, not a crash
    assert any("no measurement layer" in m for m in notifications.errors())
    assert rec.run_button.isEnabled()
    assert rec.open_checkpoint(__file__) is None  # not a checkpoint
    assert any("Open checkpoint" in m for m in notifications.errors())
    assert CompareWidget(viewer).compare() is None
    assert any("reference" in m for m in notifications.errors())

    # a phase layer alone: unit amplitude, random seeded filter at x64
    _, (amp_layer, phase_layer) = _add_field(viewer, size=(96, 96))
    viewer.layers.remove(amp_layer)
    sim = SimulateWidget(viewer)
    assert sim.amp_combo.currentText() == UNIT_AMPLITUDE and "amplitude 1" in sim.amp_note.text()
    sim.model_combo.select(UNTRAINED_LFF)
    sim.compression.setCurrentIndex(sim.compression.findData(64))
    _wait(qtbot, sim.run())
    meas = sim.last_layer
    assert meas.data.shape == (12, 12) and tuple(meas.scale) == pytest.approx((PS * 8, PS * 8))
    assert meas.metadata["napari_dmicro"]["attrs"]["amplitude"] == "unit (phase only)"
    # read noise without photons is refused by the detector model → notification, widget usable
    n_errors = len(notifications.errors())
    sim.photons.setValue(0)
    sim.read_noise.setEnabled(True)
    sim.read_noise.setValue(3.0)
    _wait(qtbot, sim.run())  # read noise is ignored when noise free
    assert len(notifications.errors()) == n_errors
    # an LFF measurement handed to a PhaseD2NN model (same x64 camera) is refused, not decoded into nonsense
    rec.meas_combo.set_layer(meas)
    rec.model_combo.select("d2nn-x64")
    n_layers = len(viewer.layers)
    _wait(qtbot, rec.run())
    assert any("lff optics" in m and "d2nn optics" in m for m in notifications.errors())
    assert len(viewer.layers) == n_layers and rec.run_button.isEnabled()
    # the shipped models are offered at once, each with its card (how it was trained, test metrics)
    assert {"lff-x64", "lff-x256", "d2nn-x64"} <= set(registry.names())
    rec.model_combo.select("lff-x64")
    assert "reproduce: dmicro phantom" in rec.card.text() and "test (mean of 54 256² patches)" in rec.card.text()
    # Cancel stops a running task at its next progress report: no layer, a note, the widget ready again
    n_layers = len(viewer.layers)
    worker = sim.run()
    sim.cancel()
    _wait(qtbot, worker)
    assert len(viewer.layers) == n_layers and sim.status.text() == "cancelled"
    assert any(n.message == "Simulate: cancelled" for n in notifications)
    assert sim.run_button.isEnabled() and not sim.cancel_button.isEnabled()


# ------------------------------------------------------------------------------------------------ train


def _tiny_hook(system, stages_steps: dict[str, int], val_every: int = 1000):
    from napari_dmicro.training import DataConfig, StageConfig, TrainConfig

    def hook(config):
        stages = []
        for s in config.stages:  # keep the stages ticked in the widget, shrink everything else
            steps = stages_steps[s.name]
            stages.append(StageConfig(name=s.name, steps=steps, batch_size=2, lr=1e-3 if s.name != "optics" else 0.05,
                                      val_every=val_every, select_on="l1" if s.name == "optics" else "psnr",
                                      loss="l1" if s.name != "end_to_end" else "l1_ssim",
                                      freeze_optics=s.freeze_optics))
        return TrainConfig(preset=None, system=system, stages=tuple(stages), seed=config.seed,
                           data=DataConfig(patch_px=64, val_patches_per_side=1), checkpoint_every_steps=50)
    return hook


def test_train_cancel_stops_within_one_step(make_napari_viewer, qtbot, tmp_path, phantom_folder, tiny_system,
                                            registry):
    from napari_dmicro.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.stage_boxes[1].setChecked(False)
    widget.stage_boxes[3].setChecked(False)
    widget.config_hook = _tiny_hook(tiny_system(), {"decoder": 5000})
    widget.data_edit.setText(str(phantom_folder(6)))
    widget.out_edit.setText(str(tmp_path / "run"))

    def on_event(event):
        if event.kind == "step" and event.step >= 3 and not widget._cancel.is_set():
            widget.cancel()

    widget.event_received.connect(on_event)
    worker = widget.start()
    assert worker is not None and widget.running and not widget.start_button.isEnabled()
    _wait(qtbot, worker, timeout=2 * TIMEOUT_MS)
    kinds = [e.kind for e in widget.events]
    assert kinds[-1] == "cancelled"
    # the trainer saw the cancel request during at most one further step
    after = [u for u in widget.updates if u.cancel_requested]
    assert sum(u.event.kind == "step" for u in after) <= 1
    last_step = max(e.step for e in widget.events if e.kind == "step")
    assert last_step < 50 and widget.events[-1].step == last_step
    assert widget.stage_bars[2].maximum() == 5000 and widget.stage_bars[2].value() == last_step
    assert widget.loss_points() == last_step  # one point per step in the live plot
    assert not widget.running and widget.start_button.isEnabled() and widget.cancel_button.text() == "Cancel"
    assert (tmp_path / "run" / "train_state.safetensors").exists()  # resumable
    # stage 2 validated at step 0, so a best model exists and joins the model list
    assert "run (partly trained)" in registry  # stopped in stage 2: honest about it
    assert "partly trained" in registry.get("run (partly trained)").summary()


def test_a_run_stopped_in_stage_1_is_listed_as_decoder_untrained_and_resumes(
        make_napari_viewer, qtbot, tmp_path, phantom_folder, tiny_system, registry):
    from napari_dmicro.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.stage_boxes[3].setChecked(False)
    widget.step_boxes[1].setValue(7)  # steps per stage reach the configuration
    assert [s.steps for s in widget.build_config().stages][0] == 7
    widget.config_hook = _tiny_hook(tiny_system(), {"optics": 6, "decoder": 2}, val_every=1)
    widget.data_edit.setText(str(phantom_folder(6)))
    run = tmp_path / "run1"
    widget.out_edit.setText(str(run))

    def on_event(event):
        if event.kind == "step" and event.stage_number == 1 and event.step >= 2 and not widget._cancel.is_set():
            widget.cancel()

    widget.event_received.connect(on_event)
    _wait(qtbot, widget.start(), timeout=2 * TIMEOUT_MS)
    widget.event_received.disconnect(on_event)
    assert widget.events[-1].kind == "cancelled"
    assert "run1 (decoder untrained)" in registry and "run1 (trained)" not in registry
    assert "decoder UNTRAINED" in registry.get("run1 (decoder untrained)").summary()
    # the status names only files that exist
    status = widget.status.text()
    paths = [word.strip(";,()") for word in status.split() if word.startswith(str(tmp_path))]
    assert paths and all(Path(p).exists() for p in paths), status
    assert "continue with --resume" in status
    # resume the run with its own settings (run.json), under a time limit of this session
    widget.max_minutes.setValue(5)
    _wait(qtbot, widget.resume_run(run), timeout=2 * TIMEOUT_MS)
    assert widget.events[-1].kind == "done"
    assert "run1 (trained)" in registry and "run1 (decoder untrained)" not in registry


def test_the_loss_plot_redraw_stays_cheap_with_a_long_run(make_napari_viewer):
    import time

    from napari_dmicro.widgets.train import PLOT_POINTS, TrainWidget

    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    rng = np.random.default_rng(0)
    n = 200_000  # a long paper-budget run
    for stage, offset in ((1, 0), (2, n)):
        xs, ys = widget._loss[stage]
        xs.extend(range(offset, offset + n))
        ys.extend((0.5 * np.exp(-np.arange(n) / n * 3) + 0.01 * rng.random(n)).tolist())
    widget._plot_dirty = True
    widget._redraw()
    widget.canvas.draw()  # the canvas's first draw builds its caches (fonts, ticks) once: not a recurring stall
    costs = []
    for _ in range(3):
        widget._plot_dirty = True
        t0 = time.thread_time()  # the GUI thread's own time (not the time it waits for a busy CPU)
        widget._redraw()
        widget.canvas.draw()  # the deferred draw, done now
        costs.append(time.thread_time() - t0)
    assert widget.ax.get_yscale() == "log" and widget.loss_points() == 2 * n
    assert all(len(line.get_xdata()) <= PLOT_POINTS for line in widget._lines.values())
    assert max(costs) < 0.2, costs  # s: the GUI never stalls on the plot


def test_train_from_layers_lists_the_model_for_reconstruct(make_napari_viewer, qtbot, tmp_path, registry,
                                                           tiny_checkpoints, tiny_system):
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    rec = ReconstructWidget(viewer)
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(rec)
    viewer.window.add_dock_widget(train)
    phases = [_add_field(viewer, seed=s, size=(96, 96), name=f"f{s}")[1][1] for s in range(4)]
    train.set_training_layers(phases)
    train.config_hook = _tiny_hook(tiny_system(), {"optics": 2, "decoder": 3, "end_to_end": 2}, val_every=2)
    train.out_edit.setText(str(tmp_path / "layers-run"))
    ready = []
    train.model_ready.connect(ready.append)
    _wait(qtbot, train.start(), timeout=2 * TIMEOUT_MS)
    assert [e.kind for e in train.events][-1] == "done"
    assert len(list((tmp_path / "layers-run" / "training_fields").glob("*.npz"))) == 4
    assert ready == [str(tmp_path / "layers-run" / "model.safetensors")]
    items = [rec.model_combo.itemText(i) for i in range(rec.model_combo.count())]
    assert "layers-run (trained)" in items  # at once, without reopening the widget
    assert all(bar.value() == bar.maximum() for bar in train.stage_bars.values())
    assert "test" in train.val_label.text()
    saved = train.save_model(tmp_path / "copy.safetensors")
    assert saved is not None and saved.exists() and registry.by_path(saved) is not None
    # fine-tuning: a listed checkpoint is offered as the starting point
    train.load_checkpoint(tiny_checkpoints["lff"])
    assert train.init_combo.currentText() == "lff"


# ------------------------------------------------------------------------------------------------ screenshot


def test_screenshot_shows_the_reconstruction(make_napari_viewer, qtbot, tiny_checkpoints, registry):
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import SimulateWidget

    viewer = make_napari_viewer(show=True)
    _add_field(viewer)
    registry.add_checkpoint(tiny_checkpoints["lff"])
    sim, rec = SimulateWidget(viewer), ReconstructWidget(viewer)
    viewer.window.add_dock_widget(sim)
    viewer.window.add_dock_widget(rec)
    sim.model_combo.select("lff")
    _wait(qtbot, sim.run())
    rec.model_combo.select("lff")
    _wait(qtbot, rec.run())
    phase = rec.last_layer
    for layer in viewer.layers:
        layer.visible = layer is phase
    lo, hi = np.percentile(phase.data, [1, 99])
    phase.contrast_limits = (float(lo), float(hi))
    phase.colormap = "gray"
    # the colorbar and scale bar every phase layer shows would enter the footprint measured below
    phase.colorbar.visible = False
    viewer.scale_bar.visible = False
    viewer.reset_view()
    qtbot.wait(50)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    lum = shot[..., :3].astype(float).mean(axis=-1)
    assert lum.std() > 5  # not blank
    # crop the image's footprint on the canvas and compare with the phase map
    rows = np.where(lum.max(axis=1) > lum.min() + 1)[0]
    cols = np.where(lum.max(axis=0) > lum.min() + 1)[0]
    crop = lum[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    from skimage.transform import resize

    small = resize(crop, phase.data.shape, anti_aliasing=True)
    ref = np.clip((phase.data - lo) / (hi - lo), 0, 1)
    corr = np.corrcoef(small.ravel(), ref.ravel())[0, 1]
    assert corr > 0.9


# ------------------------------------------------------------------------------------------------ manifest


def test_every_widget_opens_from_the_plugin_menu(make_napari_viewer, registry, tiny_checkpoints):
    """The npe2 manifest's widget contributions build the widgets; they share one model list."""
    from napari_dmicro.widgets import (
        CompareWidget,
        ImportWidget,
        LoadWidget,
        ReconstructWidget,
        SimulateWidget,
        TrainWidget,
    )

    viewer = make_napari_viewer()
    expected = {"Import acquisition": ImportWidget, "Load": LoadWidget, "Simulate compression": SimulateWidget,
                "Reconstruct": ReconstructWidget,
                "Compare": CompareWidget, "Train": TrainWidget}
    widgets = {}
    for name, cls in expected.items():
        _, widget = viewer.window.add_plugin_dock_widget("napari-dmicro", name)
        assert isinstance(widget, cls)
        widgets[name] = widget
    registry.add_checkpoint(tiny_checkpoints["lff-seed1"])
    for name in ("Simulate compression", "Reconstruct", "Train"):
        combo = widgets[name].model_combo if name != "Train" else widgets[name].init_combo
        assert "lff-seed1" in [combo.itemText(i) for i in range(combo.count())]
