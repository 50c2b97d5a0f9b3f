"""Simulate widget: a field's camera image through a model's optics (``napari_dmicro.simulate``).

The field is rebuilt from a phase layer and the amplitude layer of the same field, or from a phase
layer alone with unit amplitude (a pure phase object). The model is one from the model list (its
trained optics and compression) or an untrained learnable Fourier filter with random, seeded
optics at a chosen compression. The measurement layer's scale is the camera pixel pitch; its
metadata keep the acquisition (``field_shape``, compression, noise, seed, model) for Reconstruct.

The modality follows the model: a fluorescence model takes a 2-D fluorescence image layer (its pixel
size from the layer's scale, which must agree with its file) instead of the field layers, gives a
(T, h, w) measurement layer at the camera pixel (bin × specimen pixel) and adds the model's deployed
binary illumination patterns as a (T, y, x) layer tiled over a few periods at the specimen pixel.
Controls of the other modality are hidden.
"""

from __future__ import annotations

import threading

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from .controls import CardView, wrapped_label
from .layers import (
    field_from_layers,
    image_pixel_size_um,
    is_amplitude_layer,
    is_fluorescence_image,
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
from .workers import (
    COMPRESSIONS,
    UNTRAINED_LFF,
    FluorescenceSimulateRequest,
    FluorescenceSimulateResult,
    SimulateRequest,
    SimulateResult,
    simulate_fluorescence_task,
    simulate_task,
)

UNIT_AMPLITUDE = "(none: unit amplitude)"
#: pattern periods per side shown in the patterns layer
PATTERN_PERIODS = 4
PHOTONS_TIP = {"qpm": "expected photon count of the brightest reference pixel; 0 = noise free",
               "fluorescence": "photons per specimen pixel of density 1 under one full pattern (K); 0 = noise free"}


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
        self.fluo_combo = LayerCombo(napari_viewer, is_fluorescence_image,
                                     empty_text="(open a fluorescence image first)")
        self.fluo_combo.setToolTip("a 2-D fluorescence image at the model's specimen pixel size (layer scale, µm)")
        self._modality = None
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
        self.form = form
        form.addRow("Fluorescence layer", self.fluo_combo)
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
        self.fluo_combo.currentIndexChanged.connect(self._update_sampling)
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
        self.amp_note.setVisible(bool(self.amp_note.text()) and self.modality() == "qpm")
        self._update_sampling()

    def modality(self) -> str:
        """``"fluorescence"`` when the chosen model is a fluorescence model, else ``"qpm"``."""
        entry = self.model_combo.current_entry()
        return entry.modality if entry is not None and self.model_combo.currentText() != UNTRAINED_LFF else "qpm"

    def _apply_modality(self) -> None:
        """Show the controls of the chosen model's modality only; a fluorescence model brings the photons and
        read noise it was trained at."""
        from .controls import set_row_visible

        modality = self.modality()
        fluo = modality == "fluorescence"
        set_row_visible(self.form, self.fluo_combo, fluo)
        for widget in (self.phase_combo, self.amp_combo, self.compression):
            set_row_visible(self.form, widget, not fluo)
        set_row_visible(self.form, self.amp_note, not fluo and bool(self.amp_note.text()))
        self.photons.setToolTip(PHOTONS_TIP[modality])
        self.run_button.setText("Simulate fluorescence" if fluo else "Simulate")
        if fluo and self._modality != "fluorescence":
            det = self.model_combo.current_entry().config.encoder.detector
            self.photons.setValue(det.photons_per_unit or 0)
            self.read_noise.setValue(det.read_noise_e if det.photons_per_unit else 0.0)
        self._modality = modality

    def _update_sampling(self, *_):
        """The field's sampling in use and, when it is not the model's grid, what simulate will do."""
        from .layers import sampling_note

        if self.modality() == "fluorescence":
            self._update_fluorescence_sampling()
            return
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

    def _update_fluorescence_sampling(self) -> None:
        layer, entry = self.fluo_combo.current_layer(), self.model_combo.current_entry()
        if layer is None or entry is None:
            self.sampling.setText("")
            return
        try:
            ps = image_pixel_size_um(layer)
        except ValueError as exc:
            self.sampling.setText(str(exc))
            return
        text = f"pixel {ps:g} µm"
        if abs(ps - entry.pixel_size_um) > 1e-4 * entry.pixel_size_um:
            text += (f"; the model's specimen pixel is {entry.pixel_size_um:g} µm: resampled to it (anti-aliased), "
                     f"the reconstruction comes back at {ps:g} µm")
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
        self._apply_modality()
        self._update_sampling()

    def _update_noise(self, *_):
        self.read_noise.setEnabled(self.photons.value() > 0)

    # ------------------------------------------------------------------ work
    def fluorescence_request(self) -> FluorescenceSimulateRequest:
        """The fluorescence simulation the settings describe (raises ValueError with the reason)."""
        layer, entry = self.fluo_combo.current_layer(), self.model_combo.current_entry()
        if layer is None:
            raise ValueError("choose a fluorescence image layer (a 2-D image with its pixel size as the layer "
                             "scale, or a fluorescence store opened with File ▸ Open)")
        photons = self.photons.value() or None
        return FluorescenceSimulateRequest(
            image=layer_array(layer), pixel_size_um=image_pixel_size_um(layer), model=entry.source,
            model_label=entry.name, photons=photons, read_noise=self.read_noise.value() if photons else 0.0,
            seed=int(self.seed.value()), device=self.device.currentText(), pattern_periods=PATTERN_PERIODS)

    def request(self) -> SimulateRequest | FluorescenceSimulateRequest:
        """The simulation the widget's settings describe (raises ValueError with the reason)."""
        if self.modality() == "fluorescence":
            return self.fluorescence_request()
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
        fluo = isinstance(req, FluorescenceSimulateRequest)
        self._source_layer = (self.fluo_combo if fluo else self.phase_combo).current_layer()
        self._cancel.clear()
        self._set_running(True)
        self.status.setText("starting…")
        self._worker = start_worker(simulate_fluorescence_task if fluo else simulate_task, req, self._cancel,
                                    task="Simulate",
                                    on_yield=self._on_yield, on_return=self._on_result,
                                    on_error=self._on_error,
                                    on_finish=lambda: self._set_running(False))
        return self._worker

    def _on_result(self, result: SimulateResult | FluorescenceSimulateResult):
        from .layers import add_or_replace_image, layer_meta

        if isinstance(result, FluorescenceSimulateResult):
            self._on_fluorescence_result(result)
            return
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

    def _on_fluorescence_result(self, result: FluorescenceSimulateResult):
        """The (T, h, w) measurement at the camera pixel over the image, and the patterns layer at the specimen
        pixel from the image's first pixel (the patterns are tiled from there)."""
        import numpy as np

        from .layers import add_or_replace_image, layer_meta

        layer = self._source_layer
        source_name = layer.name[: -len(" fluorescence")] if layer.name.endswith(" fluorescence") else layer.name
        ps, b, cam = result.pixel_size_um, result.bin_px, result.camera_pixel_size_um
        origin = tuple(float(t) for t in layer.translate[-2:])  # centre of the image's pixel (0, 0)
        camera_origin = tuple(t + (b - 1) / 2 * ps for t in origin)  # camera pixel (0, 0) sums pixels [0, b)
        entry = self.model_combo.current_entry()
        wl = meta(layer).get("wavelength_um") or (entry.config.encoder.emission.wavelength_um if entry else 0) or 0
        source = meta(layer).get("source") or layer.name
        common = {"units": ("pixel", "micrometer", "micrometer"), "axis_labels": ("pattern", "y", "x")}
        data = np.asarray(result.measurement, dtype=np.float32)
        lo, hi = (float(v) for v in np.percentile(data, [0.1, 99.5]))  # a few bright nuclei must not set it
        name = f"{source_name} measurement ({result.model_label})"
        attrs = {**result.attrs, "source_layer": layer.name, "field_translate": list(origin)}
        self.last_layer = add_or_replace_image(
            self.viewer, data, name=name, colormap="gray", contrast_limits=(lo, hi if hi > lo else lo + 1),
            scale=(1.0, cam, cam), translate=(0.0, *camera_origin), **common,
            metadata=layer_meta("measurement", "measurement", cam, wl, source, attrs))
        patterns = np.asarray(result.patterns, dtype=np.float32)
        period = patterns.shape[-1] // PATTERN_PERIODS
        self.patterns_layer = add_or_replace_image(
            self.viewer, patterns, name=f"{result.model_label} illumination patterns", colormap="gray",
            contrast_limits=(0.0, 1.0), scale=(1.0, ps, ps), translate=(0.0, *origin), **common,
            metadata=layer_meta("fluorescence", "patterns", ps, wl, result.attrs.get("model_source"),
                                {"modality": "fluorescence", "model": result.model_label,
                                 "n_patterns": int(patterns.shape[0]), "period_px": period,
                                 "periods_shown": PATTERN_PERIODS,
                                 "values": "binary mirror states as deployed (1 on, 0 off)"}))
        self.progress.setValue(100)
        t, rows, cols = data.shape
        self.status.setText(f"added {name}: {t} patterns × {rows}×{cols} camera pixels of {cam:g} µm (bin {b}), "
                            f"and the patterns ({PATTERN_PERIODS}×{PATTERN_PERIODS} periods of {period} px)")
