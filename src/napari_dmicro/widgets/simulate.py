"""Simulate widget: a field's camera image through a model's optics (``napari_dmicro.simulate``).

The field is rebuilt from a phase layer and the amplitude layer of the same field, or from a phase
layer alone with unit amplitude (a pure phase object). The model is one from the model list (its
trained optics and compression) or an untrained learnable Fourier filter with random, seeded
optics at a chosen compression. The measurement layer's scale is the camera pixel pitch; its
metadata keep the acquisition (``field_shape``, compression, noise, seed, model) for Reconstruct.
"""

from __future__ import annotations

import threading

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from .controls import CardView, wrapped_label
from .layers import (
    field_from_layers,
    is_amplitude_layer,
    is_phase_layer,
    layer_array,
    meta,
    partner_amplitude,
    pixel_size_um,
    wavelength_um,
)
from .models import ModelCombo, default_model_name, model_registry
from .notifications import notify_error
from .task_controls import TaskControlsMixin
from .thread_workers import start_worker
from .workers import COMPRESSIONS, UNTRAINED_LFF, SimulateRequest, SimulateResult, simulate_task

UNIT_AMPLITUDE = "(none: unit amplitude)"


class SimulateWidget(TaskControlsMixin, QWidget):
    """Field layers → measurement layer."""

    def __init__(self, napari_viewer, parent: QWidget | None = None, registry=None):
        super().__init__(parent)
        from .layer_picker import LayerCombo

        self.viewer = napari_viewer
        self.registry = registry or model_registry()
        self._worker = None
        self._cancel = threading.Event()
        self.last_layer = None

        self.phase_combo = LayerCombo(napari_viewer, is_phase_layer, empty_text="(open a field first)")
        self.amp_combo = LayerCombo(napari_viewer, is_amplitude_layer, none_item=UNIT_AMPLITUDE)
        self.amp_note = wrapped_label("")
        self.sampling = wrapped_label("")  # the field's pixel size and wavelength in use, and the model's grid
        self.model_combo = ModelCombo(self.registry, extra_items=(UNTRAINED_LFF,))
        self.model_combo.select(default_model_name(self.registry))  # a trained model, not random optics
        self.compression = QComboBox()
        for c in COMPRESSIONS:
            self.compression.addItem(f"x{c}", c)
        self.compression.setCurrentIndex(COMPRESSIONS.index(64))
        self.compression.setToolTip("pixel-count ratio object/camera; only for the untrained filter "
                                    "(a trained model has its own)")
        self.photons = QDoubleSpinBox()
        self.photons.setRange(0, 1e9)
        self.photons.setDecimals(0)
        self.photons.setSingleStep(1000)
        self.photons.setSpecialValueText("0 (noise free)")
        self.photons.setToolTip("expected photon count of the brightest reference pixel; 0 = noise free")
        self.read_noise = QDoubleSpinBox()
        self.read_noise.setRange(0, 1000)
        self.read_noise.setDecimals(2)
        self.read_noise.setSuffix(" e⁻")
        self.read_noise.setToolTip("Gaussian read noise σ in electrons (needs a photon count)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("noise seed (and the random optics of the untrained filter)")
        from .controls import device_combo

        self.device = device_combo("cpu")
        self.model_info = CardView()

        form = QFormLayout()
        form.addRow("Phase layer", self.phase_combo)
        form.addRow("Amplitude layer", self.amp_combo)
        form.addRow("", self.amp_note)
        form.addRow("", self.sampling)
        form.addRow("Model", self.model_combo)
        form.addRow("Compression", self.compression)
        form.addRow("", self.model_info)
        form.addRow("Photons", self.photons)
        form.addRow("Read noise", self.read_noise)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        self._build_task_layout(form, "Simulate")

        self.phase_combo.currentIndexChanged.connect(self._pair_amplitude)
        self.phase_combo.currentIndexChanged.connect(self._update_sampling)
        self.amp_combo.currentIndexChanged.connect(self._update_amp_note)
        self.model_combo.currentIndexChanged.connect(self._update_model)
        self.photons.valueChanged.connect(self._update_noise)
        self._pair_amplitude()
        self._update_model()
        self._update_noise()

    # ------------------------------------------------------------------ UI state
    def _pair_amplitude(self, *_):
        phase = self.phase_combo.current_layer()
        partner = partner_amplitude(self.viewer, phase) if phase is not None else None
        self.amp_combo.set_layer(partner)
        self._update_amp_note()

    def _update_amp_note(self, *_):
        if self.amp_combo.current_layer() is None:
            self.amp_note.setText("phase-only object: amplitude 1 everywhere")
        else:
            self.amp_note.setText("")
        self.amp_note.setVisible(bool(self.amp_note.text()))
        self._update_sampling()

    def _update_sampling(self, *_):
        """The field's sampling in use and, when it is not the model's grid, what simulate will do."""
        from .layers import sampling_note

        phase = self.phase_combo.current_layer()
        if phase is None:
            self.sampling.setText("")
            return
        try:
            ps, wl = pixel_size_um(phase), wavelength_um(phase)
        except ValueError as exc:
            self.sampling.setText(str(exc))
            return
        text = sampling_note(phase) if meta(phase) else f"pixel {ps:g} µm (layer scale), λ {wl:g} µm"
        entry = self.model_combo.current_entry()
        if entry is not None and entry.modality == "qpm":  # a fluorescence model has no optical grid
            grid = entry.config.encoder.optics.grid
            if abs(grid.pixel_size_um - ps) > 1e-6 * ps or abs(grid.wavelength_um - wl) > 1e-6 * wl:
                text += (f"; the model's grid is {grid.pixel_size_um:g} µm, λ {grid.wavelength_um:g} µm: the field "
                         "is resampled there and back (recorded in the measurement)")
        self.sampling.setText(text)

    def _update_model(self, *_):
        untrained = self.model_combo.currentText() == UNTRAINED_LFF
        self.compression.setEnabled(untrained)
        entry = self.model_combo.current_entry()
        if untrained:
            self.model_info.setText("random learnable Fourier filter (seeded), on the field's pixel grid")
        elif entry is not None:
            self.compression.setCurrentIndex(COMPRESSIONS.index(entry.compression)
                                             if entry.compression in COMPRESSIONS else 0)
            self.model_info.setText(entry.summary())
        else:
            self.model_info.setText("")
        self._update_sampling()

    def _update_noise(self, *_):
        self.read_noise.setEnabled(self.photons.value() > 0)

    # ------------------------------------------------------------------ work
    def request(self) -> SimulateRequest:
        """The simulation the widget's settings describe (raises ValueError with the reason)."""
        phase = self.phase_combo.current_layer()
        if phase is None:
            raise ValueError("choose a phase layer (open a field with the Load widget or File ▸ Open)")
        amp = self.amp_combo.current_layer()
        if amp is not None and tuple(layer_array(amp).shape) != tuple(layer_array(phase).shape):
            raise ValueError(f"amplitude {amp.name!r} and phase {phase.name!r} differ in shape")
        untrained = self.model_combo.currentText() == UNTRAINED_LFF
        entry = None if untrained else self.model_combo.current_entry()
        if not untrained and entry is None:
            raise ValueError("choose a model")
        ps, wl = pixel_size_um(phase), wavelength_um(phase)  # dm.simulate refuses another model's grid
        photons = self.photons.value() or None
        read_noise = self.read_noise.value() if photons else 0.0
        field = field_from_layers(phase, amp)
        axis = str((meta(phase).get("attrs") or {}).get("stack_axis") or "t")
        return SimulateRequest(field=field, pixel_size_um=ps, wavelength_um=wl, stack_axis=axis,
                               model=UNTRAINED_LFF if untrained else entry.source,
                               model_label=(f"untrained LFF x{self.compression.currentData()}" if untrained
                                            else entry.name),
                               compression=int(self.compression.currentData()), photons=photons,
                               read_noise=read_noise, seed=int(self.seed.value()),
                               device=self.device.currentText())

    def run(self):
        """Start the simulation in a worker; returns the worker (or None after an error notification)."""
        try:
            req = self.request()
        except Exception as exc:  # noqa: BLE001 - every input problem becomes a notification
            notify_error("Simulate", exc)
            return None
        self._source_layer = self.phase_combo.current_layer()
        self._cancel.clear()
        self._set_running(True)
        self.status.setText("starting…")
        self._worker = start_worker(simulate_task, req, self._cancel, task="Simulate",
                                    on_yield=self._on_yield, on_return=self._on_result,
                                    on_error=self._on_error,
                                    on_finish=lambda: self._set_running(False))
        return self._worker

    def _on_result(self, result: SimulateResult):
        from .layers import add_or_replace_image, layer_meta

        phase = self._source_layer
        source_name = phase.name[: -len(" phase")] if phase.name.endswith(" phase") else phase.name
        ps_obj, b = result.object_pixel_size_um, result.binning
        origin = tuple(phase.translate[-2:]) if phase is not None else (0.0, 0.0)
        camera_origin = result.camera_translate(origin)  # the model-grid field's placement (padding, resampling)
        attrs = {**result.attrs, "source_layer": phase.name, "field_translate": list(origin),
                 "object_pixel_size_um": ps_obj, "binning": b,
                 "amplitude": "from layer" if self.amp_combo.current_layer() is not None else "unit (phase only)"}
        data = result.measurement
        import numpy as np

        data = np.asarray(data, dtype=np.float32)
        lo, hi = (float(v) for v in np.percentile(data, [0.1, 99.9]))
        name = f"{source_name} measurement ({result.model_label})"
        lead = data.ndim - 2  # a stack's plane axis (a slider)
        self.last_layer = add_or_replace_image(
            self.viewer, data, name=name, colormap="gray",
            contrast_limits=(lo, hi if hi > lo else lo + 1), scale=(1.0,) * lead + (result.camera_pixel_size_um,) * 2,
            translate=(0.0,) * lead + camera_origin, units=("pixel",) * lead + ("micrometer", "micrometer"),
            metadata=layer_meta("measurement", "measurement", result.camera_pixel_size_um,
                                meta(phase).get("wavelength_um") or wavelength_um(phase),
                                meta(phase).get("source") or phase.name, attrs))
        self.progress.setValue(100)
        rows, cols = data.shape[-2:]
        planes = f"{data.shape[0]} planes of " if data.ndim == 3 else ""
        self.status.setText(f"added {name}: {planes}{rows}×{cols} camera pixels of {result.camera_pixel_size_um:g} µm")
