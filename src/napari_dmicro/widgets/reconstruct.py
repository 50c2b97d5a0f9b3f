"""Reconstruct widget: measurement layer → phase layer (``napari_dmicro.reconstruct``).

The model is a shipped model, a checkpoint opened here ("Open checkpoint…", added to the shared
model list) or one trained in this session. Decoder windows overlap by ``overlap`` camera pixels
(blended, no seams). The model defaults to the one the measurement records (another one is refused:
its decoder inverts other optics). The phase layer is in radians, displayed as every phase in the plugin
(viridis, 0…2π or the data's range, colorbar, scale bar in µm), on the field's own grid (the model's
object grid, or the field's when Simulate resampled it: ``napari_dmicro.reconstruction_grid``), cropped
to the field's shape when the measurement remembers it. A (planes, Y, X) measurement stack gives a
phase stack (a slider).

A fluorescence model (the modality follows the model) reconstructs a (T, h, w) fluorescence measurement
into an image in [0, 1] on the input image's grid (gray, at the specimen pixel, over the image it came
from) and, for a task-aware model (segmentation head), a Labels layer of the nuclei (``dm.segment``).
The decoder is local and tiled exactly, so Overlap is hidden for it.
"""

from __future__ import annotations

import threading

from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QPushButton, QSpinBox, QWidget

from .checkpoint_dialog import add_checkpoint, ask_checkpoint
from .controls import CardView, device_combo, wrapped_label
from .layer_picker import LayerCombo
from .layers import (
    add_or_replace_image,
    is_measurement_layer,
    json_safe,
    layer_array,
    layer_meta,
    layer_modality,
    meta,
    phase_display,
    pixel_size_um,
    scale_bar,
    show_phase_decorations,
)
from .models import ModelCombo, model_registry
from .notifications import notify_error
from .task_controls import TaskControlsMixin
from .thread_workers import start_worker
from .workers import (
    FluorescenceReconstructResult,
    ReconstructResult,
    reconstruct_fluorescence_task,
    reconstruct_task,
)

AUTO_OVERLAP = -1


class ReconstructWidget(TaskControlsMixin, QWidget):
    """Measurement layer + model → phase layer with physical scale."""

    def __init__(self, napari_viewer, parent: QWidget | None = None, registry=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.registry = registry or model_registry()
        self._worker = None
        self._cancel = threading.Event()
        self.last_layer = None

        self.meas_combo = LayerCombo(napari_viewer, is_measurement_layer,
                                     empty_text="(no measurement layer: simulate or load one)")
        self.model_combo = ModelCombo(self.registry)
        self.open_button = QPushButton("Open checkpoint…")
        self.open_button.setToolTip("add a .safetensors checkpoint (or a training run folder) to the model list")
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.open_button)
        self.card = CardView()
        self.recorded = wrapped_label("")  # the model the measurement records, if any
        self.device = device_combo("cpu")
        self.overlap = QSpinBox()
        self.overlap.setRange(AUTO_OVERLAP, 512)
        self.overlap.setValue(AUTO_OVERLAP)
        self.overlap.setSpecialValueText("auto")
        self.overlap.setSuffix(" camera px")
        self.overlap.setToolTip("overlap of neighbouring decoder windows (blended); auto = the engine's default")

        form = QFormLayout()
        self.form = form
        form.addRow("Measurement", self.meas_combo)
        form.addRow("", self.recorded)
        form.addRow("Model", model_row)
        form.addRow("", self.card)
        form.addRow("Device", self.device)
        form.addRow("Overlap", self.overlap)
        self._build_task_layout(form, "Reconstruct")

        self.model_combo.currentIndexChanged.connect(self._update_card)
        self.meas_combo.currentIndexChanged.connect(self._select_recorded_model)
        self.open_button.clicked.connect(self._open_checkpoint)
        self._select_recorded_model()
        self._update_card()

    # ------------------------------------------------------------------ UI
    def recorded_entry(self, layer=None):
        """(the model the measurement layer records or None, its entry in the model list or None)."""
        layer = layer if layer is not None else self.meas_combo.current_layer()
        attrs = (meta(layer).get("attrs") or {}) if layer is not None else {}
        source, name = attrs.get("model_source"), attrs.get("model")
        if not (source or name):
            return None, None
        entry = None
        if name and name in self.registry:
            entry = self.registry.get(name)
        elif source and source in self.registry:
            entry = self.registry.get(source)
        elif source:
            try:
                entry = self.registry.by_path(source)
            except OSError:
                entry = None
        return (name or source), entry

    def _select_recorded_model(self, *_):
        """Default to the model recorded in the measurement (its decoder inverts those optics)."""
        recorded, entry = self.recorded_entry()
        if entry is not None:
            self.model_combo.select(entry.name)
            self.recorded.setText(f"recorded with {entry.name}: selected")
        elif recorded:
            self.recorded.setText(f"recorded with {recorded}, which is not in the model list (open its checkpoint)")
        else:
            self.recorded.setText("")

    def _update_card(self, *_):
        from .controls import set_row_visible

        entry = self.model_combo.current_entry()
        self.card.setText(entry.summary() if entry is not None else
                          "no model yet: open a checkpoint, or train one in the Train widget")
        fluo = entry is not None and entry.modality == "fluorescence"
        set_row_visible(self.form, self.overlap, not fluo)  # the fluorescence decoder's tiles are exact
        self.run_button.setText(("Reconstruct + segment" if entry.has_seg_head else "Reconstruct") if fluo
                                else "Reconstruct")

    def _open_checkpoint(self):
        entry = ask_checkpoint(self, self.registry, "Open a napari-dmicro checkpoint", "Open checkpoint")
        if entry is not None:
            self.model_combo.select(entry.name)

    def open_checkpoint(self, path):
        """Add a checkpoint to the shared model list and select it (errors become notifications)."""
        entry = add_checkpoint(self.registry, path, "Open checkpoint")
        if entry is not None:
            self.model_combo.select(entry.name)
        return entry

    # ------------------------------------------------------------------ work
    def run(self):
        layer = self.meas_combo.current_layer()
        entry = self.model_combo.current_entry()
        if layer is None:
            notify_error("Reconstruct", "no measurement layer selected: simulate one or load a detector image")
            return None
        if entry is None:
            notify_error("Reconstruct", "no model selected: open a checkpoint or train a model")
            return None
        if entry.modality != layer_modality(layer) and meta(layer):
            what = {"fluorescence": "a fluorescence", "qpm": "a phase (QPM)"}
            notify_error("Reconstruct", f"{layer.name!r} is {what[layer_modality(layer)]} measurement but "
                                        f"{entry.name!r} is {what[entry.modality]} model; choose a model of the "
                                        "measurement's modality")
            return None
        recorded, recorded_entry = self.recorded_entry(layer)
        if recorded_entry is not None and recorded_entry.name != entry.name:
            notify_error("Reconstruct", f"{layer.name!r} was recorded with model {recorded_entry.name!r}, but "
                                        f"{entry.name!r} is selected: a decoder only inverts the optics it was trained "
                                        f"with; choose {recorded_entry.name!r}")
            return None
        attrs = dict(meta(layer).get("attrs") or {})
        if entry.modality == "fluorescence":
            return self._start(layer, entry, reconstruct_fluorescence_task, attrs)
        # another camera pitch, optics type or compression: dm.reconstruct refuses it (one rule, in api)
        camera_ps = pixel_size_um(layer) if meta(layer) else None
        overlap = None if self.overlap.value() == AUTO_OVERLAP else int(self.overlap.value())
        return self._start(layer, entry, reconstruct_task, attrs, overlap=overlap, camera_pixel_size_um=camera_ps)

    def _start(self, layer, entry, task, attrs, **options):
        """Run ``task(data, attrs, source, name, …)`` of the layer and model in a worker."""
        self._source = layer
        self._entry = entry
        self._cancel.clear()
        self._set_running(True)
        self.progress.setValue(0)
        self.status.setText("starting…")
        self._worker = start_worker(
            task, layer_array(layer), attrs, entry.source, entry.name, summary=entry.summary(),
            device=self.device.currentText(), cancel=self._cancel, task="Reconstruct", **options,
            on_yield=self._on_yield, on_return=self._on_result, on_error=self._on_error,
            on_finish=lambda: self._set_running(False))
        return self._worker

    def _on_fluorescence_result(self, result: FluorescenceReconstructResult):
        """The image (gray, 0…1) and the labels of a task-aware model, on the input image's grid."""
        layer = self._source
        attrs = dict(meta(layer).get("attrs") or {})
        ps = result.pixel_size_um
        origin = attrs.get("field_translate")
        if origin is None:  # a bare measurement: camera pixel (0, 0)'s centre is (b − 1)/2 specimen pixels in
            b = int(round(float(layer.scale[-1]) / ps))
            origin = [float(t) - (b - 1) / 2 * ps for t in layer.translate[-2:]]
        origin = tuple(float(v) for v in list(origin)[-2:])
        card = self._entry.card or {}
        common = {"scale": (ps, ps), "translate": origin, "units": ("micrometer", "micrometer")}
        provenance = {"modality": "fluorescence", "model": result.model_label, "model_source": self._entry.source,
                      "model_summary": result.summary,
                      "model_card": json_safe({k: card.get(k) for k in ("preset", "budget", "stage", "test",
                                                                         "validation")}),
                      "measurement_layer": layer.name, "device": result.device,
                      "seconds": round(result.seconds, 3), "measurement_attrs": attrs}
        wl = float(meta(layer).get("wavelength_um") or 0.0)
        source = meta(layer).get("source") or layer.name
        name = f"{result.model_label} fluorescence"
        self.last_layer = add_or_replace_image(
            self.viewer, result.image, name=name, colormap="gray", contrast_limits=(0.0, 1.0), **common,
            metadata=layer_meta("fluorescence", "fluorescence", ps, wl, source,
                                {**provenance, "normalisation": "[0, 1] (the image's min-max, as simulated)"}))
        self.labels_layer = None
        if result.labels is not None:
            lname = f"{result.model_label} labels"
            if lname in self.viewer.layers:
                self.viewer.layers.remove(lname)
            self.labels_layer = self.viewer.add_labels(
                result.labels, name=lname, opacity=0.5, **common,
                metadata=layer_meta("fluorescence", "labels", ps, wl, source, {**provenance,
                                                                                "segmentation": "dm.segment"}))
        scale_bar(self.viewer).visible = True
        self.progress.setValue(100)
        rows, cols = result.image.shape
        nuclei = f" and {int(result.labels.max())} labelled nuclei" if result.labels is not None else ""
        self.status.setText(f"added {name}: {rows}×{cols} px of {ps:g} µm{nuclei} in {result.seconds:.1f} s on "
                            f"{result.device}")

    def _on_result(self, result: ReconstructResult | FluorescenceReconstructResult):
        if isinstance(result, FluorescenceReconstructResult):
            self._on_fluorescence_result(result)
            return
        layer = self._source
        attrs = dict(meta(layer).get("attrs") or {})
        origin = attrs.get("field_translate")
        if origin is None:  # a lab measurement: undo the camera pixels' half-bin offset
            b, ps = result.binning, result.pixel_size_um
            origin = [float(t) - (b - 1) / 2 * ps for t in layer.translate[-2:]]
        origin = list(origin)[-2:]
        name = f"{result.model_label} phase"
        card = self._entry.card or {}
        lead = result.phase.ndim - 2  # a stack's plane axis (a slider)
        self.last_layer = add_or_replace_image(
            self.viewer, result.phase, name=name, **phase_display(result.phase),
            scale=(1.0,) * lead + (result.pixel_size_um,) * 2, translate=(0.0,) * lead + tuple(origin[-2:]),
            units=("pixel",) * lead + ("micrometer", "micrometer"),
            metadata=layer_meta("phase", "phase", result.pixel_size_um, result.wavelength_um,
                                meta(layer).get("source") or layer.name, {
                                    "model": result.model_label, "model_source": self._entry.source,
                                    "model_summary": result.summary,
                                    "model_card": json_safe({k: card.get(k) for k in
                                                             ("preset", "budget", "stage", "test", "validation")}),
                                    "measurement_layer": layer.name, "overlap_camera_px": result.overlap,
                                    "device": result.device, "seconds": round(result.seconds, 3),
                                    "measurement_attrs": attrs}))
        show_phase_decorations(self.viewer, self.last_layer)
        self.progress.setValue(100)
        rows, cols = result.phase.shape[-2:]
        planes = f"{result.phase.shape[0]} planes of " if lead else ""
        self.status.setText(f"added {name}: {planes}{rows}×{cols} px of {result.pixel_size_um:g} µm in "
                            f"{result.seconds:.1f} s on {result.device}")
