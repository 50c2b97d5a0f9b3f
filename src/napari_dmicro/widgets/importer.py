"""Import widget: a lab acquisition → a complex field (``napari_dmicro.field_from_hologram``, ``dmicro import``).

* an off-axis hologram (+ the reference hologram of the empty sample; an ``.npz`` in qpimage's layout,
  ``data`` + ``bg_data``, brings its own) → sideband retrieval, reference division, unwrapping and
  background tilt/offset correction;
* a phase image (rad) with an optional amplitude image;
* a complex array (``.npy``/``.npz``/zarr) from another tool.

Pixel size and wavelength are required and always editable: nothing is assumed. The field becomes the
usual amplitude + phase layers at its µm scale (the phase background-referenced, as everywhere in the
plugin) and, when "Save as" names a store, a field ``.zarr`` recording both values and how it was made.
The work runs in a thread worker (Cancel stops it between steps); errors are notifications.
"""

from __future__ import annotations

import threading
from pathlib import Path

from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from .controls import length_box
from .notifications import notify_error
from .task_controls import TaskControlsMixin
from .thread_workers import start_worker
from .workers import ImportRequest, import_task

MODE_LABELS = {"hologram": "off-axis hologram", "phase_amplitude": "phase (+ amplitude) image",
               "complex": "complex array"}
CORRECTIONS = {"tilt (plane fit on the border)": "tilt", "offset only": "offset", "none": None}


class ImportWidget(TaskControlsMixin, QWidget):
    """Hologram, phase image or complex array → field layers (and an optional field store)."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._worker = None
        self._cancel = threading.Event()
        self.last_layers: list = []
        self.last_store = None

        self.mode_buttons = {mode: QRadioButton(label) for mode, label in MODE_LABELS.items()}
        self.mode_buttons["hologram"].setChecked(True)
        group = QButtonGroup(self)
        modes = QHBoxLayout()
        for button in self.mode_buttons.values():
            group.addButton(button)
            modes.addWidget(button)
        self.path_edit, path_row = _file_row("hologram, phase image or complex array (.npy .npz .tif .png .zarr)")
        self.second_label = QLabel("Reference")
        self.second_edit, second_row = _file_row("reference hologram of the empty sample (optional)")
        self.pixel_size = length_box(1000.0, "object-plane pixel size of the acquisition (µm): required",
                                     empty="required")
        self.wavelength = length_box(20.0, "illumination wavelength in vacuum (µm): required", empty="required")
        self.filter_size = QDoubleSpinBox()
        self.filter_size.setRange(0.05, 0.95)
        self.filter_size.setSingleStep(0.05)
        self.filter_size.setValue(0.5)
        self.filter_size.setToolTip("sideband filter radius as a fraction of the sideband distance (qpretrieve's "
                                    "smooth disk)")
        self.correction = QComboBox()
        self.correction.addItems(list(CORRECTIONS))
        self.correction.setToolTip("background phase correction fitted on the image border (5 px)")
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("field .zarr to write (empty: layers only)")
        self.output_button = QPushButton("…")
        self.overwrite = QCheckBox("replace")
        self.overwrite.setToolTip("replace an existing napari-dmicro store of that name")
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_edit, 1)
        out_row.addWidget(self.output_button)
        out_row.addWidget(self.overwrite)

        form = QFormLayout()
        form.addRow(modes)
        form.addRow("File", path_row)
        form.addRow(self.second_label, second_row)
        form.addRow("Pixel size", self.pixel_size)
        form.addRow("Wavelength", self.wavelength)
        self.filter_label, self.correction_label = QLabel("Sideband filter"), QLabel("Background")
        form.addRow(self.filter_label, self.filter_size)
        form.addRow(self.correction_label, self.correction)
        form.addRow("Save as", out_row)
        self._build_task_layout(form, "Import")

        for button in self.mode_buttons.values():
            button.toggled.connect(self._update_mode)
        self.output_button.clicked.connect(self._choose_output)
        self._update_mode()

    # ------------------------------------------------------------------ UI
    @property
    def mode(self) -> str:
        return next(mode for mode, button in self.mode_buttons.items() if button.isChecked())

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)

    def _update_mode(self, *_):
        mode = self.mode
        hologram = mode == "hologram"
        self.second_label.setText({"hologram": "Reference", "phase_amplitude": "Amplitude"}.get(mode, ""))
        self.second_edit.setPlaceholderText("reference hologram of the empty sample (optional)" if hologram
                                            else "amplitude image (optional: amplitude 1)")
        for w in (self.second_label, self.second_edit, self.second_edit.parent_row_button):
            w.setVisible(mode != "complex")
        for w in (self.filter_label, self.filter_size, self.correction_label, self.correction):
            w.setVisible(hologram)

    def _choose_output(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save the field as", "field.zarr", "zarr stores (*.zarr)")
        if path:
            self.output_edit.setText(path)

    # ------------------------------------------------------------------ work
    def request(self) -> ImportRequest:
        path = self.path_edit.text().strip()
        if not path:
            raise ValueError("choose the file to import")
        second = self.second_edit.text().strip() or None
        mode = self.mode
        return ImportRequest(path=path, mode=mode, pixel_size_um=self.pixel_size.value() or None,
                             wavelength_um=self.wavelength.value() or None,
                             background=second if mode == "hologram" else None,
                             amplitude=second if mode == "phase_amplitude" else None,
                             filter_size=float(self.filter_size.value()),
                             correction=CORRECTIONS[self.correction.currentText()],
                             output=self.output_edit.text().strip() or None,
                             overwrite=self.overwrite.isChecked()).check()

    def run(self):
        """Import in a worker; returns the worker (or None after an error notification)."""
        try:
            req = self.request()
        except Exception as exc:  # noqa: BLE001 - input problems become notifications
            notify_error("Import", exc)
            return None
        self._cancel.clear()
        self._set_running(True)
        self.progress.setValue(0)
        self.status.setText("starting…")
        self._worker = start_worker(import_task, req, self._cancel, task=f"Import {Path(req.path).name}",
                                    on_yield=self._on_yield, on_return=self._on_result, on_error=self._on_error,
                                    on_finish=lambda: self._set_running(False))
        return self._worker

    def _on_result(self, result):
        from .._reader import image_layers
        from .layers import show_phase_decorations

        img, written = result
        stem = Path(self.path_edit.text().strip().rstrip("/\\")).stem or "field"
        source = str(written or img.attrs["source"])
        self.last_layers = [self.viewer.add_image(data, **kwargs)
                            for data, kwargs, _ in image_layers(img, name=stem, source=source)]
        self.last_store = written
        show_phase_decorations(self.viewer, self.last_layers[-1])
        self.viewer.reset_view()
        self.progress.setValue(100)
        rows, cols = img.shape[-2:]
        self.status.setText(f"added {stem} amplitude/phase: {rows}×{cols} px of {img.pixel_size_um:g} µm, "
                            f"λ {img.wavelength_um:g} µm" + (f"; wrote {written}" if written else ""))


def _file_row(placeholder: str):
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    button = QPushButton("…")
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)

    def choose():
        path, _ = QFileDialog.getOpenFileName(None, "Choose a file", "", "images and arrays (*.npy *.npz *.tif "
                                              "*.tiff *.png);;All files (*)")
        if path:
            edit.setText(path)

    button.clicked.connect(choose)
    edit.parent_row_button = button  # shown and hidden with its edit
    return edit, row
