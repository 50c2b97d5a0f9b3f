"""Train widget: the paper's three stages from napari (``napari_dmicro.training.Trainer``).

Settings (three tabs: model and stages, training data, output) mirror ``dmicro train``: preset,
budget, stages, steps per stage, a model to fine-tune (shipped or a
checkpoint; "scratch" trains from a random start), frozen optics in stage 3, noise-aware training
(photons, read noise), seed, device and a time limit. Training fields come from a folder or from
field layers (written as ``.npz`` with their pixel size into ``<output>/training_fields`` so that the
run can be resumed and audited). The run folder is the CLI's: ``model.safetensors`` (the best model),
resumable state, ``run.json`` and ``events.jsonl``.

Progress: a bar per stage (steps), a bar for the current epoch, the latest validation and a live loss
plot (redrawn at most a few times a second). Cancel stops at the next step; the trainer saves its
state ("Resume" continues it) and the best model so far. When a run ends with a model it joins the
shared model list, so the Reconstruct and Simulate widgets offer it at once.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from psygnal import Signal
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..model_registry import decoder_trained, training_state
from .checkpoint_dialog import add_checkpoint, ask_checkpoint
from .controls import device_combo, fmt, wrapped_label
from .layer_picker import follow_layers
from .layers import field_from_layers, is_phase_layer, meta, partner_amplitude, pixel_size_um, wavelength_um
from .models import ModelCombo, model_registry
from .notifications import notify_error, notify_info, notify_warning
from .plots import make_figure_canvas
from .thread_workers import start_worker
from .workers import TrainUpdate, train_task

SCRATCH = "scratch (random start)"
STAGE_LABELS = {1: "1 optics", 2: "2 decoder", 3: "3 end to end"}
STAGE_NUMBER = {"optics": 1, "decoder": 2, "end_to_end": 3}
STAGE_COLORS = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}
LAYER_FIELDS_DIR = "training_fields"


def _is_training_field(layer) -> bool:
    """Phase layers that describe an object (a field's phase or a phase map), not reconstructions."""
    m = meta(layer)
    return is_phase_layer(layer) and not (m.get("attrs") or {}).get("model")


class TrainWidget(QWidget):
    """Three-stage training with progress, a live loss plot, Cancel and checkpoints."""

    #: every training event as it arrives on the GUI thread (a :class:`~napari_dmicro.training.TrainEvent`)
    event_received = Signal(object)
    #: the best model's path when a run ends with one (done, or cancelled after a validation)
    model_ready = Signal(str)

    def __init__(self, napari_viewer, parent: QWidget | None = None, registry=None):
        super().__init__(parent)
        from ..training import PRESETS

        self.viewer = napari_viewer
        self.registry = registry or model_registry()
        self._worker = None
        self._cancel = threading.Event()
        self.running = False
        self.last_model: str | None = None
        self.events: list = []
        self.updates: list = []
        #: for scripts and tests: adjust (or replace) the TrainConfig built from the settings
        self.config_hook: Callable | None = None
        self._loss = {n: ([], []) for n in STAGE_NUMBER.values()}
        self._stage_offset = {n: 0 for n in STAGE_NUMBER.values()}
        self._stage_total: dict[int, int] = {}
        self._plot_dirty = False
        self._out: Path | None = None

        # ---- model
        self.preset = QComboBox()
        for name, preset in PRESETS.items():
            self.preset.addItem(name)
            self.preset.setItemData(self.preset.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole)
        self.budget = QComboBox()
        self.budget.addItems(["cpu", "paper"])
        self.budget.setToolTip("cpu: minutes on a laptop CPU (see the preset); paper: the paper's schedule (GPU)")
        self.stage_boxes = {n: QCheckBox(label) for n, label in STAGE_LABELS.items()}
        stages_row = QHBoxLayout()
        for box in self.stage_boxes.values():
            box.setChecked(True)
            stages_row.addWidget(box)
        self.step_boxes: dict[int, QSpinBox] = {}
        steps_row = QHBoxLayout()
        for n in STAGE_LABELS:
            box = QSpinBox()
            box.setRange(0, 10_000_000)
            box.setSingleStep(100)
            box.setSpecialValueText("preset")
            box.setToolTip(f"optimiser steps of stage {STAGE_LABELS[n]}; 'preset' = the preset's budget")
            self.step_boxes[n] = box
            steps_row.addWidget(box)
        self.init_combo = ModelCombo(self.registry, extra_items=(SCRATCH,))
        self.init_combo.setToolTip("fine-tune a shipped model or a checkpoint (same optics and compression as "
                                   "the preset), or start from scratch")
        self.open_button = QPushButton("Load checkpoint…")
        init_row = QHBoxLayout()
        init_row.addWidget(self.init_combo, 1)
        init_row.addWidget(self.open_button)
        self.freeze = QCheckBox("freeze the optics in stage 3 (a built microscope)")
        self.photons = QDoubleSpinBox()
        self.photons.setRange(0, 1e9)
        self.photons.setDecimals(0)
        self.photons.setSingleStep(1000)
        self.photons.setSpecialValueText("0 (noise free)")
        self.read_noise = QDoubleSpinBox()
        self.read_noise.setRange(0, 1000)
        self.read_noise.setDecimals(2)
        self.read_noise.setSuffix(" e⁻")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.device = device_combo("cpu")
        self.max_minutes = QDoubleSpinBox()
        self.max_minutes.setRange(0, 1e5)
        self.max_minutes.setDecimals(1)
        self.max_minutes.setSpecialValueText("no limit")
        self.max_minutes.setSuffix(" min")
        model_box = QGroupBox("Model and stages")
        mf = QFormLayout(model_box)
        mf.addRow("Preset", self.preset)
        mf.addRow("Budget", self.budget)
        mf.addRow("Stages", stages_row)
        mf.addRow("Steps", steps_row)
        mf.addRow("Start from", init_row)
        mf.addRow("", self.freeze)
        mf.addRow("Photons", _row(self.photons, QLabel("read noise"), self.read_noise))
        mf.addRow("Seed", _row(self.seed, QLabel("device"), self.device))
        mf.addRow("Time limit", self.max_minutes)

        # ---- data
        self.from_folder = QRadioButton("folder of fields")
        self.from_layers = QRadioButton("field layers")
        self.from_folder.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.from_folder)
        group.addButton(self.from_layers)
        src_row = QHBoxLayout()
        src_row.addWidget(self.from_folder)
        src_row.addWidget(self.from_layers)
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("folder with .zarr / .npy / .npz fields (dmicro phantom writes some)")
        self.data_button = QPushButton("…")
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(self.data_button)
        self.layer_list = QListWidget()
        self.layer_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.layer_list.setMaximumHeight(64)
        self.layer_list.setToolTip("tick field phase layers (with their amplitude layers) to train on; at least 3 "
                                   "(train / validation / test are split by field)")
        data_box = QGroupBox("Training data")
        df = QFormLayout(data_box)
        df.addRow(src_row)
        df.addRow("Folder", data_row)
        df.addRow("Layers", self.layer_list)

        # ---- output
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("run folder (empty: ~/napari-dmicro-runs/<preset>-<time>)")
        self.out_button = QPushButton("…")
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.out_button)
        self.resume = QCheckBox("resume the unfinished run in this folder")
        self.resume_button = QPushButton("Resume run…")
        self.resume_button.setToolTip("continue a stopped run (cancelled or time-limited) with its own settings "
                                      "and data; the time limit above applies to this session")
        out_box = QGroupBox("Output")
        of = QFormLayout(out_box)
        of.addRow("Run folder", out_row)
        of.addRow(self.resume_button, self.resume)

        # ---- run
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save model as…")
        self.save_button.setEnabled(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.save_button)
        self.stage_bars: dict[int, QProgressBar] = {}
        for n, label in STAGE_LABELS.items():
            bar = QProgressBar()
            bar.setRange(0, 1)
            bar.setValue(0)
            bar.setFormat(f"stage {label}")
            bar.setTextVisible(True)
            self.stage_bars[n] = bar
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setRange(0, 1)
        self.epoch_bar.setValue(0)
        self.epoch_bar.setFormat("epoch")
        self.status = wrapped_label("")
        self.val_label = wrapped_label("")
        self.canvas, self.ax = make_figure_canvas(height_in=1.8)
        self.canvas.setMinimumHeight(130)
        self._reset_plot()
        self._timer = QTimer(self)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._redraw)

        # the three groups of settings as tabs: the dock fits a 1080 px screen with room for the plot
        self.settings_tabs = QTabWidget()
        for box, title in ((model_box, "Model and stages"), (data_box, "Training data"), (out_box, "Output")):
            box.setTitle("")
            box.setFlat(True)
            self.settings_tabs.addTab(box, title)
        layout = QVBoxLayout(self)
        layout.addWidget(self.settings_tabs)
        layout.addLayout(run_row)
        for bar in self.stage_bars.values():
            layout.addWidget(bar)
        layout.addWidget(self.epoch_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.val_label)
        layout.addWidget(self.canvas, 1)

        self.open_button.clicked.connect(self._open_checkpoint)
        self.data_button.clicked.connect(self._choose_data)
        self.out_button.clicked.connect(self._choose_out)
        self.start_button.clicked.connect(self.start)
        self.resume_button.clicked.connect(self._choose_resume)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self._save_model)
        self.from_folder.toggled.connect(self._update_enabled)
        self.photons.valueChanged.connect(self._update_enabled)
        for box in self.stage_boxes.values():
            box.toggled.connect(self._update_enabled)
        follow_layers(napari_viewer, self, self._refresh_layers)
        # closing the dock stops a run (its state is saved)
        self.destroyed.connect(lambda *_, ev=self._cancel: ev.set())
        self._refresh_layers()
        self._update_enabled()

    # ------------------------------------------------------------------ UI helpers
    def _refresh_layers(self):
        checked = {self.layer_list.item(i).text() for i in range(self.layer_list.count())
                   if self.layer_list.item(i).checkState() == Qt.CheckState.Checked}
        self.layer_list.clear()
        for layer in self.viewer.layers:
            if _is_training_field(layer):
                item = QListWidgetItem(layer.name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if layer.name in checked else Qt.CheckState.Unchecked)
                self.layer_list.addItem(item)

    def set_training_layers(self, layers) -> None:
        """Train on these phase layers (each with its field's amplitude layer, if open)."""
        self.from_layers.setChecked(True)
        names = {layer.name for layer in layers}
        self._refresh_layers()
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def _update_enabled(self, *_):
        folder = self.from_folder.isChecked()
        self.data_edit.setEnabled(folder and not self.running)
        self.data_button.setEnabled(folder and not self.running)
        self.layer_list.setEnabled(not folder and not self.running)
        self.read_noise.setEnabled(self.photons.value() > 0)
        self.freeze.setEnabled(self.stage_boxes[3].isChecked())
        for n, bar in self.stage_bars.items():
            bar.setEnabled(self.stage_boxes[n].isChecked())

    def _open_checkpoint(self):
        entry = ask_checkpoint(self, self.registry, "Load a napari-dmicro checkpoint", "Load checkpoint")
        if entry is not None:
            self.init_combo.select(entry.name)

    def load_checkpoint(self, path):
        """Add a checkpoint to the shared model list and start from it."""
        entry = add_checkpoint(self.registry, path, "Load checkpoint")
        if entry is not None:
            self.init_combo.select(entry.name)
        return entry

    def _choose_data(self):
        path = QFileDialog.getExistingDirectory(self, "Folder of training fields")
        if path:
            self.data_edit.setText(path)

    def _choose_out(self):
        path = QFileDialog.getExistingDirectory(self, "Run folder")
        if path:
            self.out_edit.setText(path)

    def _save_model(self):
        if not self.last_model:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the trained model", "model.safetensors",
                                              "Checkpoints (*.safetensors)")
        if path:
            self.save_model(path)

    def save_model(self, path) -> Path | None:
        """Copy the last run's best model to ``path`` (a .safetensors file) and list it."""
        try:
            if not self.last_model:
                raise ValueError("no trained model yet")
            target = Path(path)
            if target.suffix != ".safetensors":
                target = target.with_suffix(".safetensors")
            shutil.copy2(self.last_model, target)
            self.registry.add_checkpoint(target)
        except Exception as exc:  # noqa: BLE001
            notify_error("Save model", exc)
            return None
        notify_info(f"model saved to {target}")
        return target

    # ------------------------------------------------------------------ configuration
    def stages(self) -> tuple[int, ...]:
        return tuple(n for n, box in self.stage_boxes.items() if box.isChecked())

    def build_config(self):
        """The TrainConfig of the current settings (``train_config`` of the preset, then ``config_hook``)."""
        from ..training import train_config

        stages = self.stages()
        if not stages:
            raise ValueError("tick at least one stage")
        entry = self.init_combo.current_entry()
        overrides = {"seed": int(self.seed.value()), "device": self.device.currentText()}
        if self.max_minutes.value() > 0:
            overrides["max_minutes"] = float(self.max_minutes.value())
        photons = self.photons.value() or None
        steps = {n: int(box.value()) for n, box in self.step_boxes.items() if n in stages and box.value() > 0}
        config = train_config(self.preset.currentText(), budget=self.budget.currentText(), stages=stages,
                              steps=steps or None,
                              max_photons=photons, read_noise_e=self.read_noise.value() if photons else 0.0,
                              freeze_optics=self.freeze.isChecked() and 3 in stages,
                              init=entry.source if entry is not None else None, **overrides)
        if self.config_hook is not None:
            config = self.config_hook(config)
        return config

    def _out_dir(self) -> Path:
        text = self.out_edit.text().strip()
        if text:
            return Path(text).expanduser()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path.home() / "napari-dmicro-runs" / f"{self.preset.currentText()}-{stamp}"
        self.out_edit.setText(str(out))
        return out

    def _layer_fields(self) -> list:
        names = [self.layer_list.item(i).text() for i in range(self.layer_list.count())
                 if self.layer_list.item(i).checkState() == Qt.CheckState.Checked]
        if len(names) < 3:
            raise ValueError(f"tick at least 3 field layers (they are split into train / validation / test by "
                             f"field); {len(names)} ticked")
        fields = []
        for name in names:
            phase = self.viewer.layers[name]
            amp = partner_amplitude(self.viewer, phase)
            fields.append((name, field_from_layers(phase, amp), pixel_size_um(phase), wavelength_um(phase)))
        return fields

    # ------------------------------------------------------------------ run
    def _choose_resume(self):
        path = QFileDialog.getExistingDirectory(self, "Run folder to resume")
        if path:
            self.resume_run(path)

    def resume_run(self, folder):
        """Continue the stopped run in ``folder`` with the settings and data recorded in its ``run.json`` (any
        run: cancelled, or stopped by a time limit); the widget's time limit applies to this session."""
        import json

        from ..training import TrainConfig

        try:
            folder = Path(folder).expanduser()
            record_path = folder / "run.json"
            if not record_path.exists():
                raise ValueError(f"{folder} holds no run.json: not a training run folder")
            record = json.loads(record_path.read_text())
            limit = float(self.max_minutes.value()) or None
            config = TrainConfig.model_validate(record["config"]).model_copy(update={"max_minutes": limit})
        except Exception as exc:  # noqa: BLE001
            notify_error("Resume", exc)
            return None
        self.out_edit.setText(str(folder))
        return self.start(config=config, data_dir=Path(record["data_dir"]), resume=True)

    def start(self, *, config=None, data_dir=None, resume: bool | None = None):
        """Start a run in a worker (from the settings, or the given ``config``/``data_dir``, e.g. a resumed
        run's); returns the worker (or None after an error notification)."""
        if self.running:
            notify_error("Train", "a run is in progress; cancel it first")
            return None
        resume = self.resume.isChecked() if resume is None else resume
        try:
            config = config or self.build_config()
            out = self._out_dir()
            layer_fields = None
            if data_dir is not None:
                pass
            elif self.from_layers.isChecked():
                layer_fields = self._layer_fields()
                data_dir = out / LAYER_FIELDS_DIR
                if data_dir.exists() and not resume:
                    for old in data_dir.glob("*.npz"):
                        old.unlink()
            else:
                text = self.data_edit.text().strip()
                if not text:
                    raise ValueError("choose the folder of training fields (or train on field layers)")
                data_dir = Path(text).expanduser()
        except Exception as exc:  # noqa: BLE001 - configuration problems become notifications
            notify_error("Train", exc)
            return None
        self._cancel.clear()
        self.events = []
        self.updates = []
        self.last_model = None
        self._reset_progress(config)
        self._set_running(True)
        self._out = out
        self.status.setText(f"{'resuming' if resume else 'starting'}: {config.preset or 'custom'} ({config.budget}), "
                            f"output {out}")
        self._worker = start_worker(
            train_task, config, data_dir, out, cancel=self._cancel, resume=resume,
            layer_fields=layer_fields, command="napari-dmicro Train widget", task="Train",
            on_yield=self._on_update, on_return=self._on_return,
            on_error=lambda _: self.status.setText("training stopped with an error (see the notification)"),
            on_finish=self._on_finish)
        self._timer.start()
        return self._worker

    def cancel(self):
        """Stop at the next step; the trainer saves its state and keeps the best model so far."""
        if not self.running:
            return
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.status.setText("cancelling after this step…")

    def _set_running(self, running: bool):
        self.running = running
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.cancel_button.setText("Cancel")
        for w in (self.preset, self.budget, self.init_combo, self.open_button, self.freeze, self.photons,
                  self.read_noise, self.seed, self.device, self.max_minutes, self.from_folder, self.from_layers,
                  self.out_edit, self.out_button, self.resume, self.resume_button, *self.stage_boxes.values(),
                  *self.step_boxes.values()):
            w.setEnabled(not running)
        self._update_enabled()

    def _reset_progress(self, config):
        chosen = {STAGE_NUMBER[s.name] for s in config.stages}
        for n, bar in self.stage_bars.items():
            bar.setRange(0, 1)
            bar.setValue(0)
            bar.setFormat(f"stage {STAGE_LABELS[n]}" + ("" if n in chosen else " (skipped)"))
        self.epoch_bar.setRange(0, 1)
        self.epoch_bar.setValue(0)
        self.epoch_bar.setFormat("epoch")
        self.val_label.setText("")
        self._loss = {n: ([], []) for n in STAGE_NUMBER.values()}
        self._stage_offset = {n: 0 for n in STAGE_NUMBER.values()}
        self._stage_total = {}
        self._reset_plot()

    # ------------------------------------------------------------------ events (GUI thread)
    def _on_update(self, update: TrainUpdate):
        event = update.event
        self.updates.append(update)
        self.events.append(event)
        n = event.stage_number
        if event.kind == "stage_start" and n:
            bar = self.stage_bars[n]
            bar.setRange(0, max(event.total_steps, 1))
            bar.setValue(event.step)
            bar.setFormat(f"stage {STAGE_LABELS[n]}: %v / %m steps")
            self._stage_total[n] = event.total_steps
            self._stage_offset[n] = sum(t for m, t in self._stage_total.items() if m < n)
            self.status.setText(f"stage {n} ({event.stage}): {event.message}")
        elif event.kind == "step" and n:
            self.stage_bars[n].setValue(event.step)
            if event.epoch is not None:  # the engine counts epochs; the widget only draws them
                self.epoch_bar.setRange(0, event.steps_per_epoch)
                self.epoch_bar.setValue(event.epoch_step)
                self.epoch_bar.setFormat(f"epoch {event.epoch} / {event.epochs}: %v / %m steps")
            eta = f", about {_duration(event.eta_s)} left in this stage" if event.eta_s else ""
            self.status.setText(f"stage {n} ({event.stage}) step {event.step}/{event.total_steps}: "
                                f"loss {fmt(event.loss, '.4g')}{eta}")
            xs, ys = self._loss[n]
            if event.loss is not None and math.isfinite(event.loss):
                xs.append(self._stage_offset[n] + event.step)
                ys.append(event.loss)
                self._plot_dirty = True
        elif event.kind == "validation":
            m = event.metrics
            parts = [f"{k.replace('_db', '')} {v:.4g}" for k, v in m.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)]
            best = " (best so far, saved)" if m.get("improved") else ""
            self.val_label.setText(f"validation, stage {n} step {event.step}: " + ", ".join(parts) + best)
        elif event.kind == "stage_end" and n:
            self.stage_bars[n].setValue(self.stage_bars[n].maximum())
        elif event.kind == "test":
            m = event.metrics
            self.val_label.setText("test (once, at the end): " + ", ".join(
                f"{k.replace('_db', '')} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float))))
        elif event.kind in ("start", "message"):
            self.status.setText(event.message)
        elif event.kind == "cancelled":
            from ..training.trainer import saved_files_message

            self.status.setText(f"stopped at stage {n} step {event.step}; {saved_files_message(self._out)}")
        elif event.kind == "done":
            self.status.setText(event.message or event.kind)
        self.event_received.emit(event)

    def _on_return(self, best_path):
        self._redraw(force=True)
        if best_path and Path(best_path).exists():
            try:
                entry = self.registry.add_checkpoint(best_path, origin="trained")
            except Exception as exc:  # noqa: BLE001
                notify_error("Train: listing the model", exc)
                return
            self.last_model = str(best_path)
            self.save_button.setEnabled(True)
            cancelled = bool(self.events) and self.events[-1].kind == "cancelled"
            notify_info(f"{'training cancelled; the best model so far' if cancelled else 'trained model'} "
                        f"{entry.name!r} is in the model list")
            self.model_ready.emit(str(best_path))
            if not decoder_trained(entry.card):
                notify_warning(f"{entry.name!r}: {training_state(entry.card)}")
        elif self.events and self.events[-1].kind == "cancelled":
            notify_info("training cancelled before any validation: no model was saved (resume to continue)")

    def _on_finish(self):
        self._timer.stop()
        self._set_running(False)
        self._redraw(force=True)

    # ------------------------------------------------------------------ plot
    def _reset_plot(self):
        self.ax.clear()
        self.ax.set_xlabel("step", fontsize=8)
        self.ax.set_ylabel("training loss", fontsize=8)
        self._lines = {}
        self.canvas.draw_idle()

    def _redraw(self, force: bool = False):
        """Redraw the loss plot (a timer calls it every 0.4 s while a run is going).

        The cost stays bounded however long the run: each curve is drawn from at most
        :data:`PLOT_POINTS` points (the loss decimated by min/max pairs, so spikes stay visible), the
        axis limits are computed from running minima/maxima (no relim over all artists) and the log scale is
        switched on once, when every loss so far is positive.
        """
        if not (self._plot_dirty or force):
            return
        self._plot_dirty = False
        lo, hi, x_hi = math.inf, -math.inf, 0.0
        for n, (xs, ys) in self._loss.items():
            if not xs:
                continue
            line = self._lines.get(n)
            if line is None:
                (line,) = self.ax.plot([], [], color=STAGE_COLORS[n], lw=1.0, label=f"stage {STAGE_LABELS[n]}")
                self._lines[n] = line
                self.ax.legend(fontsize=7, loc="upper right", frameon=False)
            line.set_data(*_decimated(xs, ys, PLOT_POINTS))
            lo, hi, x_hi = min(lo, min(ys)), max(hi, max(ys)), max(x_hi, xs[-1])
        if self._lines and math.isfinite(lo):
            log = lo > 0
            if log and self.ax.get_yscale() != "log":
                self.ax.set_yscale("log")
            pad = (hi / lo) ** 0.05 if log else 0.05 * (hi - lo or 1.0)
            self.ax.set_ylim((lo / pad, hi * pad) if log else (lo - pad, hi + pad))
            self.ax.set_xlim(0, max(x_hi, 1.0))
        self.canvas.draw_idle()

    def loss_points(self) -> int:
        """How many loss values the plot holds (for tests and scripts; the curves draw at most
        :data:`PLOT_POINTS` of them each)."""
        return sum(len(xs) for xs, _ in self._loss.values())


def _row(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    return row


#: the most points a loss curve is drawn from (min/max pairs of equal bins)
PLOT_POINTS = 1000


def _decimated(xs: list, ys: list, limit: int):
    """``(xs, ys)`` with at most ``limit`` points: the minimum and the maximum of each of ``limit / 2`` bins."""
    import numpy as np

    if len(xs) <= limit:
        return xs, ys
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    bins = limit // 2
    edges = np.linspace(0, len(x), bins + 1).astype(int)
    idx = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b > a:
            seg = y[a:b]
            i, j = a + int(np.argmin(seg)), a + int(np.argmax(seg))
            idx.extend(sorted((i, j)))
    idx = np.asarray(idx)
    return x[idx], y[idx]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
