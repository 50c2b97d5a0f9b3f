"""Compare widget: reconstructions against a reference (``napari_dmicro.evaluate``), side by side.

* the reference defaults to the ground truth: a field's phase layer (background-referenced phase);
* PSNR / SSIM (full field, the paper's convention φ/2π, data range 1) in a table, beside the same on a
  region (``napari_dmicro.regions``): the cell mask (phase above background + 0.3 rad) or a Shapes /
  Labels layer drawn over the reference; 256² patch metrics in the summary;
* one SSIM-map layer per reconstruction (``magma``, half transparent, same scale), at most one shown:
  the "SSIM overlay" choice toggles between them (they never stack);
* "Side by side" shows the reference and the reconstructions in napari's grid mode, each tile labelled
  with its layer's name and sized by the shown layers only (napari fits its view to every layer, hidden
  ones too: a hidden 100 µm camera image would shrink 20 µm tiles to a fifth, also on Home / Ctrl+R);
* line profiles (the paper's Fig. 4d): draw a line in a Shapes layer; the phase along it is plotted
  for the reference and each reconstruction, and follows the line as it is edited.

Fluorescence (the mode follows the reference layer): a fluorescence image reference (a store's image)
scores fluorescence reconstructions by PSNR/SSIM (``dm.evaluate_fluorescence``: the reference min-max
normalised to [0, 1], data range 1) with SSIM maps; a Labels reference (a store's true nuclei) scores
Labels layers by foreground Dice and IoU-matched F1 at 0.5 (``dm.evaluate_labels``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .controls import fmt, wrapped_label
from .layer_picker import LayerCombo, follow_layers
from .layers import (
    add_or_replace_image,
    is_field_phase,
    is_fluorescence_image,
    is_labels,
    is_phase_layer,
    layer_array,
    layer_meta,
    meta,
    reference_phase,
)
from .notifications import notify_error
from .plots import make_figure_canvas
from .thread_workers import start_worker
from .workers import evaluate_fluorescence_task, evaluate_task, line_profile

COLUMNS = ("layer", "PSNR dB", "SSIM", "region PSNR", "region SSIM")
MASK_COLUMNS = ("layer", "Dice", "F1 @ IoU 0.5", "precision", "recall")
FULL_ONLY = "(full field only)"
CELL = "cell mask (phase > background + 0.3 rad)"
NO_OVERLAY = "(none)"


def grid_model(viewer):
    """The viewer's grid settings (``viewer.canvas.grid`` since napari 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    grid = getattr(canvas, "grid", None)
    return grid if grid is not None else viewer.grid


def _is_shapes(layer) -> bool:
    from napari.layers import Shapes

    return isinstance(layer, Shapes)


def _is_region_layer(layer) -> bool:
    from napari.layers import Labels, Shapes

    return isinstance(layer, (Shapes, Labels)) and layer.name != "profile line"


def _is_reconstruction(layer) -> bool:
    """A layer a model made: a phase reconstruction, a fluorescence reconstruction or its labels."""
    made = bool((meta(layer).get("attrs") or {}).get("model"))
    if is_phase_layer(layer):
        return made and meta(layer).get("kind") == "phase"
    return made and (is_fluorescence_image(layer) or is_labels(layer))


def _is_reference(layer) -> bool:
    """What can be the ground truth: a phase layer, a 2-D fluorescence image, or a Labels layer (true masks)."""
    return is_phase_layer(layer) or is_fluorescence_image(layer) or (is_labels(layer) and layer.ndim == 2)


def _is_truth(layer) -> bool:
    """The preferred reference: a field's phase, or a fluorescence image no model made."""
    return is_field_phase(layer) or (is_fluorescence_image(layer) and meta(layer).get("kind") == "fluorescence"
                                     and not _is_reconstruction(layer))


def compare_mode(layer) -> str | None:
    """How a reference is scored: ``"phase"``, ``"fluorescence"`` (PSNR/SSIM) or ``"labels"`` (Dice, F1)."""
    if layer is None:
        return None
    if is_labels(layer):
        return "labels"
    return "phase" if is_phase_layer(layer) else "fluorescence"


def _same_kind(mode: str | None) -> Callable:
    return {"labels": lambda lay: is_labels(lay) and lay.ndim == 2, "fluorescence": is_fluorescence_image
            }.get(mode, is_phase_layer)


class CompareWidget(QWidget):
    """Reference + reconstructions → metrics table, SSIM maps, grid view, line profiles."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._worker = None
        self._mode = "phase"  # of the last Compare: "phase", "fluorescence" or "labels"
        self._saved_visibility: dict | None = None
        self._fitting = False
        self._shapes = None
        self.results: dict = {}  # layer name → EvaluationReport
        self.region_results: dict = {}  # layer name → EvaluationReport on the region (or None)
        self.ssim_layers: dict = {}  # layer name → SSIM map layer
        self.profiles: dict = {}  # layer name → (distance µm, phase rad)

        self.ref_combo = LayerCombo(napari_viewer, _is_reference, empty_text="(no phase, fluorescence or labels "
                                    "layer)", prefer=_is_truth)
        self.ref_combo.setToolTip("the ground truth: a field's phase layer or a phase map; a fluorescence image; or "
                                  "the true nuclei as a Labels layer (then Labels layers are scored: Dice, F1)")
        self.recon_list = QListWidget()
        self.recon_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.recon_list.setMaximumHeight(110)
        self.recon_list.setToolTip("tick the reconstructions to compare")
        self.compare_button = QPushButton("Compare")
        self.grid_button = QPushButton("Side by side (grid)")
        self.grid_button.setCheckable(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.grid_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            self.table.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(110)
        self.summary = wrapped_label("")
        self.region_combo = LayerCombo(napari_viewer, _is_region_layer, none_item=FULL_ONLY, extra_items=(CELL,))
        self.region_combo.setCurrentIndex(1)
        self.region_combo.setToolTip("metrics on a region beside the full field: the cell mask, or a Shapes / Labels "
                                     "layer drawn over the reference")
        self.overlay_combo = QComboBox()
        self.overlay_combo.addItem(NO_OVERLAY)
        self.overlay_combo.setToolTip("show the SSIM map of one reconstruction over it (one at a time)")

        self.shapes_combo = LayerCombo(napari_viewer, _is_shapes, empty_text="(no Shapes layer)")
        self.line_button = QPushButton("Add profile line")
        self.line_button.setToolTip("add a Shapes layer with a line across the reference; move its ends to "
                                    "change the profile")
        shapes_row = QHBoxLayout()
        shapes_row.addWidget(self.shapes_combo, 1)
        shapes_row.addWidget(self.line_button)
        self.canvas, self.ax = make_figure_canvas()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.update_profiles)

        form = QFormLayout()
        form.addRow("Reference", self.ref_combo)
        form.addRow("Reconstructions", self.recon_list)
        form.addRow("Region", self.region_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)
        overlay_row = QHBoxLayout()
        overlay_row.addWidget(QLabel("SSIM overlay"))
        overlay_row.addWidget(self.overlay_combo, 1)
        layout.addLayout(overlay_row)
        layout.addWidget(QLabel("Line profile"))
        layout.addLayout(shapes_row)
        layout.addWidget(self.canvas, 1)

        self.compare_button.clicked.connect(self.compare)
        self.overlay_combo.currentTextChanged.connect(self.show_overlay)
        self.grid_button.toggled.connect(self.set_grid)
        self.line_button.clicked.connect(self.add_profile_line)
        self.ref_combo.currentIndexChanged.connect(self._refresh_list)
        self.recon_list.itemChanged.connect(lambda *_: self.schedule_profiles())
        self.shapes_combo.currentIndexChanged.connect(self._watch_shapes)
        follow_layers(napari_viewer, self, self._on_layers_changed)
        self._refresh_list()
        self._watch_shapes()

    def _on_layers_changed(self):
        self._refresh_list()
        self._watch_shapes()

    # ------------------------------------------------------------------ layer choice
    def _refresh_list(self, *_):
        checked = {self.recon_list.item(i).text(): self.recon_list.item(i).checkState()
                   for i in range(self.recon_list.count())}
        ref = self.ref_combo.currentText()
        mode = self.mode()
        same_kind = _same_kind(mode)
        self.region_combo.setEnabled(mode == "phase")  # the cell / drawn regions are phase metrics
        self.recon_list.blockSignals(True)
        self.recon_list.clear()
        for layer in self.viewer.layers:
            if not same_kind(layer) or layer.name == ref:
                continue
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            default = Qt.CheckState.Checked if _is_reconstruction(layer) else Qt.CheckState.Unchecked
            item.setCheckState(checked.get(layer.name, default))
            self.recon_list.addItem(item)
        self.recon_list.blockSignals(False)
        self.schedule_profiles()

    def mode(self) -> str | None:
        """``"phase"``, ``"fluorescence"`` or ``"labels"``: how the chosen reference is scored."""
        return compare_mode(self.ref_combo.current_layer())

    def set_reference(self, layer) -> None:
        self.ref_combo.set_layer(layer)
        self._refresh_list()

    def set_reconstructions(self, layers) -> None:
        """Tick exactly these layers as the reconstructions to compare."""
        names = {layer.name for layer in layers}
        self._refresh_list()
        for i in range(self.recon_list.count()):
            item = self.recon_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def reconstructions(self) -> list:
        out = []
        for i in range(self.recon_list.count()):
            item = self.recon_list.item(i)
            if item.checkState() == Qt.CheckState.Checked and item.text() in self.viewer.layers:
                out.append(self.viewer.layers[item.text()])
        return out

    # ------------------------------------------------------------------ metrics
    def compare(self):
        ref = self.ref_combo.current_layer()
        recons = self.reconstructions()
        if ref is None:
            notify_error("Compare", "choose a reference: a field's phase or a phase map, a fluorescence image, or "
                                    "the true nuclei (Labels)")
            return None
        if not recons:
            notify_error("Compare", "tick at least one reconstruction to compare with the reference")
            return None
        shape = tuple(layer_array(ref).shape)
        for layer in recons:
            if tuple(layer_array(layer).shape) != shape:
                notify_error("Compare", f"{layer.name!r} is {tuple(layer_array(layer).shape)} px but the reference "
                                        f"{ref.name!r} is {shape} px; reconstruct on the reference's grid")
                return None
        mode = self.mode()
        self._mode = mode
        self.table.setHorizontalHeaderLabels(MASK_COLUMNS if mode == "labels" else COLUMNS)
        if mode != "phase":
            self.compare_button.setEnabled(False)
            self.summary.setText("computing…")
            self._worker = start_worker(
                evaluate_fluorescence_task, np.asarray(layer_array(ref)),
                [(layer.name, np.asarray(layer_array(layer))) for layer in recons], masks=mode == "labels",
                task="Compare", on_return=self._on_result,
                on_error=lambda _: self.summary.setText("failed (see the notification)"),
                on_finish=lambda: self.compare_button.setEnabled(True))
            return self._worker
        try:
            region = self.region_mask(ref)
        except Exception as exc:  # noqa: BLE001
            notify_error("Compare", exc)
            return None
        self.compare_button.setEnabled(False)
        self.summary.setText("computing…")
        self._worker = start_worker(
            evaluate_task, reference_phase(ref), [(layer.name, layer_array(layer)) for layer in recons],
            region=region, task="Compare", on_return=self._on_result,
            on_error=lambda _: self.summary.setText("failed (see the notification)"),
            on_finish=lambda: self.compare_button.setEnabled(True))
        return self._worker

    def region_mask(self, ref):
        """The chosen region: None (full field only), ``"cell"``, or a boolean mask on ``ref``'s grid."""
        text = self.region_combo.currentText()
        if text == FULL_ONLY:
            return None
        if text == CELL:
            return "cell"
        layer = self.region_combo.current_layer()
        if layer is None:
            return None
        shape = tuple(layer_array(ref).shape[-2:])
        from napari.layers import Labels

        if isinstance(layer, Labels):
            labels = np.asarray(layer_array(layer))
            if labels.shape[-2:] != shape:
                raise ValueError(f"labels {layer.name!r} are {labels.shape} px, the reference {shape}: draw them on "
                                 "the reference's grid")
            return labels.reshape(-1, *shape)[-1] > 0
        # a Shapes ROI: its shapes rasterised on the reference's pixel grid (world → the reference's data)
        vertices = [np.array([ref.world_to_data(layer.data_to_world(v))[-2:] for v in shape_data])
                    for shape_data in layer.data]
        from napari.layers import Shapes

        probe = Shapes(vertices, shape_type=list(layer.shape_type))
        return np.asarray(probe.to_masks(mask_shape=shape)).any(axis=0)

    def _add_row(self, values) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if col:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, col, item)

    def _on_mask_result(self, reports):
        """Dice and IoU-matched F1 of each Labels layer against the true labels."""
        self.table.setRowCount(0)
        self.results = {name: report for name, report, _ in reports}
        self.region_results = {name: None for name, _, _ in reports}
        for name, r in self.results.items():
            self._add_row((name, fmt(r["dice"], ".3f"), fmt(r["f1"], ".3f"), fmt(r["precision"], ".3f"),
                           fmt(r["recall"], ".3f")))
        counts = "; ".join(f"{n}: {r['tp']:.0f} matched, {r['fp']:.0f} false, {r['fn']:.0f} missed"
                           for n, r in self.results.items())
        self.summary.setText("Dice of the foreground; F1 of one-to-one matches at IoU ≥ 0.5 — " + counts)
        self.overlay_combo.setCurrentText(NO_OVERLAY)  # masks have no SSIM map: hide the images' ones
        self.show_overlay(None)

    def _on_result(self, reports):
        if self._mode == "labels":
            self._on_mask_result(reports)
            return
        self.table.setRowCount(0)
        self.results = {}
        self.region_results = {}
        for name, report, region in reports:
            self.results[name] = report
            self.region_results[name] = region
            self._add_row((name, fmt(report.psnr_db, ".2f"), fmt(report.ssim, ".3f"),
                           fmt(region.psnr_db if region else None, ".2f"),
                           fmt(region.ssim if region else None, ".3f")))
            if name in self.viewer.layers:
                self._add_ssim_layer(self.viewer.layers[name], report)
        best = max(self.results.items(), key=lambda kv: kv[1].ssim)
        region_text = self.region_combo.currentText()
        notes = [f"region = {region_text} ({next(r for _, _, r in reports if r).extra['region_pixels']} px)"
                 if any(r for _, _, r in reports) else "no region"]
        patches = [f"{n}: {fmt(r.patch_psnr_db, '.2f')} dB, {fmt(r.patch_ssim, '.3f')}" for n, r, _ in reports
                   if r.n_patches]
        if self._mode == "fluorescence":
            notes = ["full image; reference min-max normalised to [0, 1], data range 1"]
        else:
            notes.append("256² patches: " + "; ".join(patches) if patches else
                         "field smaller than one 256² patch: no patch metrics")
        if len(reports) > 1:
            notes.append(f"best SSIM: {best[0]}")
        self.summary.setText(" — ".join(notes))
        self.overlay_combo.blockSignals(True)
        self.overlay_combo.clear()
        self.overlay_combo.addItems([NO_OVERLAY, *self.ssim_layers])
        self.overlay_combo.blockSignals(False)
        self.overlay_combo.setCurrentText(best[0])
        self.show_overlay(best[0])

    def show_overlay(self, name: str | None) -> None:
        """Show the SSIM map of reconstruction ``name`` only (``(none)`` hides them all)."""
        for recon, layer in list(self.ssim_layers.items()):
            if layer not in self.viewer.layers:
                self.ssim_layers.pop(recon)
                continue
            layer.visible = recon == name and self._saved_visibility is None

    def _add_ssim_layer(self, layer, report):
        name = f"{layer.name} SSIM"
        self.ssim_layers[layer.name] = add_or_replace_image(
            self.viewer, report.ssim_map.astype(np.float32), name=name, colormap="magma", opacity=0.5,
            contrast_limits=(0.0, 1.0), blending="translucent", scale=tuple(layer.scale[-2:]),
            translate=tuple(layer.translate[-2:]), units=("micrometer", "micrometer"),
            metadata=layer_meta("ssim", "ssim", float(layer.scale[-1]), meta(layer).get("wavelength_um") or 0.0,
                                layer.name,
                                {"reference": self.ref_combo.currentText(), "psnr_db": report.psnr_db,
                                 "ssim": report.ssim, "patch_psnr_db": report.patch_psnr_db,
                                 "patch_ssim": report.patch_ssim,
                                 "convention": report.extra.get("convention") or "phi/2pi, data range 1"}))

    # ------------------------------------------------------------------ grid
    def set_grid(self, on: bool):
        """Side by side: the reference and the chosen reconstructions in napari's grid mode."""
        if self.grid_button.isChecked() != on:
            self.grid_button.setChecked(on)  # re-enters through toggled
            return
        if on:
            shown = [self.ref_combo.current_layer(), *self.reconstructions()]
            shown = [layer for layer in shown if layer is not None]
            if not shown:
                notify_error("Side by side", "choose a reference and reconstructions first")
                self.grid_button.setChecked(False)
                return
            self._saved_visibility = {layer.name: layer.visible for layer in self.viewer.layers}
            keep = {layer.name for layer in shown}
            for layer in self.viewer.layers:  # every visible layer takes a grid cell: show the images only
                layer.visible = layer.name in keep
                if layer.name in keep:  # label each tile with its layer's name
                    layer.name_overlay.visible = True
            grid_model(self.viewer).stride = 1
            grid_model(self.viewer).enabled = True
            self.viewer.events.reset_view.connect(self._fit_shown)  # Home / Ctrl+R: still the shown layers
            self.viewer.reset_view(layers=shown)
            return
        else:
            self.viewer.events.reset_view.disconnect(self._fit_shown)
            grid_model(self.viewer).enabled = False
            for name, visible in (self._saved_visibility or {}).items():
                if name in self.viewer.layers:
                    self.viewer.layers[name].visible = visible
                    self.viewer.layers[name].name_overlay.visible = False
            self._saved_visibility = None
        self.viewer.reset_view()

    def _fit_shown(self, event=None) -> None:
        """In the grid, refit napari's view (which spans every layer, hidden ones too) to the shown layers."""
        shown = [layer for layer in self.viewer.layers if layer.visible]
        if self._fitting or not shown or not grid_model(self.viewer).enabled:
            return
        self._fitting = True  # fit_to_view emits reset_view again
        try:
            self.viewer.fit_to_view(layers=shown)
        finally:
            self._fitting = False

    # ------------------------------------------------------------------ line profiles
    def add_profile_line(self):
        """A Shapes layer with a horizontal line through the reference's centre (edit it freely)."""
        ref = self.ref_combo.current_layer()
        if ref is None:
            notify_error("Line profile", "choose a reference phase layer first")
            return None
        data = layer_array(ref)
        rows, cols = data.shape[-2:]
        step = max(1, max(rows, cols) // 256)
        coarse = np.asarray(data[::step, ::step], dtype=np.float32)
        row = (int(np.argmax(coarse.std(axis=1))) * step) if coarse.size else rows // 2  # the busiest row
        start = ref.data_to_world((row, cols * 0.1))
        end = ref.data_to_world((row, cols * 0.9))
        layer = self.viewer.add_shapes([np.array([start[-2:], end[-2:]])], shape_type="line", edge_width=
                                       max(float(ref.scale[-1]) * 2, 0.5), edge_color="yellow",
                                       name="profile line", units=tuple(ref.units[-2:]))
        self.shapes_combo.set_layer(layer)
        self._watch_shapes()
        return layer

    def _watch_shapes(self, *_):
        layer = self.shapes_combo.current_layer()
        if layer is self._shapes:
            return
        if self._shapes is not None:
            try:
                self._shapes.events.data.disconnect(self.schedule_profiles)
                self._shapes.events.highlight.disconnect(self.schedule_profiles)
            except Exception:  # noqa: BLE001
                pass
        self._shapes = layer
        if layer is not None:
            layer.events.data.connect(self.schedule_profiles)
            layer.events.highlight.connect(self.schedule_profiles)
        self.schedule_profiles()

    def schedule_profiles(self, *_):
        """Redraw the profiles shortly (edits arrive as bursts of events)."""
        try:
            self._timer.start()
        except RuntimeError:
            pass

    def _line_world(self) -> np.ndarray | None:
        """Vertices (world coordinates, y/x) of the selected line/path shape, or the last one."""
        layer = self._shapes
        if layer is None or not len(layer.data):
            return None
        types = list(layer.shape_type)
        candidates = [i for i, t in enumerate(types) if t in ("line", "path")]
        if not candidates:
            return None
        selected = [i for i in sorted(layer.selected_data) if i in candidates]
        index = selected[-1] if selected else candidates[-1]
        vertices = np.asarray(layer.data[index], float)
        return np.array([layer.data_to_world(v) for v in vertices])[:, -2:]

    def update_profiles(self):
        """Plot the phase along the line for the reference and each chosen reconstruction."""
        self.profiles = {}
        self.ax.clear()
        self.ax.set_xlabel("distance along the line (µm)", fontsize=8)
        self.ax.set_ylabel({"fluorescence": "intensity", "labels": "label"}.get(self.mode(), "phase (rad)"),
                           fontsize=8)
        vertices = self._line_world()
        layers = [layer for layer in [self.ref_combo.current_layer(), *self.reconstructions()]
                  if layer is not None]
        if vertices is None or len(vertices) < 2 or not layers:
            self.ax.text(0.5, 0.5, "draw a line in a Shapes layer\n(or press 'Add profile line')",
                         ha="center", va="center", transform=self.ax.transAxes, fontsize=8, color="gray")
            self.canvas.draw_idle()
            return
        for k, layer in enumerate(layers):
            try:
                dist, values = self._profile(layer, vertices)
            except Exception as exc:  # noqa: BLE001 - one bad layer must not break the plot
                notify_error(f"Line profile of {layer.name!r}", exc)
                continue
            label = layer.name
            self.profiles[layer.name] = (dist, values)
            self.ax.plot(dist, values, lw=1.6 if k == 0 else 1.1, color="k" if k == 0 else None,
                         label=label)
        self.ax.autoscale(axis="y")
        self.ax.legend(fontsize=7, loc="upper right", frameon=False)
        self.canvas.draw_idle()

    @staticmethod
    def _profile(layer, vertices_world: np.ndarray):
        """(distance µm, values) along a polyline given in world coordinates."""
        dists, values = [], []
        offset = 0.0
        for a, b in zip(vertices_world[:-1], vertices_world[1:], strict=True):
            da = np.asarray(layer.world_to_data(a))[-2:]
            db = np.asarray(layer.world_to_data(b))[-2:]
            seg = line_profile(layer_array(layer), da, db)
            length = float(np.hypot(*(b - a)))
            d = offset + np.linspace(0.0, length, len(seg))
            if dists:  # do not repeat the shared vertex
                seg, d = seg[1:], d[1:]
            dists.append(d)
            values.append(seg)
            offset += length
        return np.concatenate(dists), np.concatenate(values)
