"""Load widget: open a complex field (amplitude + phase layers) or a detector measurement.

A field (``.zarr`` store, complex ``.npy``, ``.npz``) becomes two layers, exactly as napari's
File ▸ Open with the napari-dmicro reader. A detector image from a lab acquisition (real 2-D
``.npy``/``.npz``/``.tif``/``.png``, or a measurement ``.zarr``) becomes one measurement layer whose
scale is the camera pixel pitch referred to the object plane (object pixel × binning); the
Reconstruct widget takes it from there.

Pixel size and wavelength are editable for both: "from the file" (0) uses what the file records; a file
that records none (a foreign ``.npy``/``.npz``/zarr, a raw camera image) needs them entered: they are
never guessed. The status line shows the values in use and where they came from.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from .controls import length_box, wrapped_label
from .layers import is_phase_layer, sampling_note, show_phase_decorations
from .thread_workers import start_worker
from .workers import load_layers

FIELD, MEASUREMENT = "field", "measurement"


class LoadWidget(QWidget):
    """Open a field or a detector measurement as layers (the file is read off the GUI thread)."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._worker = None
        self.last_layers: list = []

        self.kind_field = QRadioButton("complex field (amplitude + phase)")
        self.kind_meas = QRadioButton("detector measurement (camera image)")
        self.kind_field.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.kind_field)
        group.addButton(self.kind_meas)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("a .zarr folder, .npy, .npz (or .tif/.png for a camera image)")
        self.file_button = QPushButton("File…")
        self.folder_button = QPushButton("Zarr folder…")
        self.file_button.setToolTip("choose a .npy, .npz, .tif or .png file")
        self.folder_button.setToolTip("choose a .zarr store (a folder)")
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.file_button)
        path_row.addWidget(self.folder_button)

        self.pixel_size = length_box(1000.0, "pixel size of the field (µm); for a camera image its pitch referred "
                                             "to the object plane = object pixel × binning (e.g. 0.3164 µm × 8 "
                                             "at x64). 'from the file' uses the recorded value")
        self.camera_ps = self.pixel_size  # the name the camera-image case had
        self.wavelength = length_box(20.0, "illumination wavelength (µm); 'from the file' uses the recorded value")

        self.load_button = QPushButton("Load")
        self.status = wrapped_label("")

        form = QFormLayout()
        form.addRow("Path", path_row)
        self.pixel_label = QLabel("Pixel size")
        form.addRow(self.pixel_label, self.pixel_size)
        form.addRow("Wavelength", self.wavelength)
        layout = QVBoxLayout(self)
        layout.addWidget(self.kind_field)
        layout.addWidget(self.kind_meas)
        layout.addLayout(form)
        layout.addWidget(self.load_button)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.file_button.clicked.connect(self._choose_file)
        self.folder_button.clicked.connect(self._choose_folder)
        self.load_button.clicked.connect(self.load)
        self.path_edit.returnPressed.connect(self.load)
        self.kind_field.toggled.connect(self._update_enabled)
        self._update_enabled()

    # ------------------------------------------------------------------ UI
    @property
    def kind(self) -> str:
        return MEASUREMENT if self.kind_meas.isChecked() else FIELD

    def set_kind(self, kind: str) -> None:
        (self.kind_meas if kind == MEASUREMENT else self.kind_field).setChecked(True)

    def _update_enabled(self, *_):
        self.pixel_label.setText("Camera pixel" if self.kind == MEASUREMENT else "Pixel size")

    def _choose_file(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open a field or a camera image", "",
                                              "napari-dmicro files (*.npy *.npz *.tif *.tiff *.png);;All files (*)")
        if path:
            self.path_edit.setText(path)
            self.load()

    def _choose_folder(self):
        path = QFileDialog.getExistingDirectory(self, "Open a .zarr store")
        if path:
            self.path_edit.setText(path)
            self.load()

    # ------------------------------------------------------------------ work
    def load(self, path: str | None = None):
        """Read ``path`` (or the path field) in a worker and add its layers; returns the worker."""
        from .notifications import notify_error

        path = str(path or self.path_edit.text()).strip()
        if not path:
            notify_error("Load", "choose a file or a .zarr folder first")
            return None
        self.path_edit.setText(path)
        raw = self.kind == MEASUREMENT
        self.load_button.setEnabled(False)
        self.status.setText(f"reading {Path(path).name}…")
        self._worker = start_worker(
            load_layers, path, as_measurement=raw, camera_pixel_size_um=self.pixel_size.value() or None,
            pixel_size_um=self.pixel_size.value() or None, wavelength_um=self.wavelength.value() or None,
            task=f"Load {Path(path).name}",
            on_return=self._add_layers, on_error=lambda _: self.status.setText("could not read the file"),
            on_finish=lambda: self.load_button.setEnabled(True))
        return self._worker

    def _add_layers(self, layer_data: list):
        self.last_layers = []
        for data, kwargs, kind in layer_data:
            layer = self.viewer.add_image(data, **kwargs) if kind == "image" else getattr(
                self.viewer, f"add_{kind}")(data, **kwargs)
            self.last_layers.append(layer)
        for layer in self.last_layers:
            if is_phase_layer(layer):
                show_phase_decorations(self.viewer, layer)
        names = ", ".join(layer.name for layer in self.last_layers)
        self.status.setText(f"added {names}" + (f"; {sampling_note(self.last_layers[0])}" if self.last_layers else ""))
        if self.last_layers:
            self.viewer.reset_view()
