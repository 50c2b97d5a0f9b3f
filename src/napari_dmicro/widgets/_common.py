"""Shared pieces of the widgets: layer metadata, layer pickers, workers, notifications, plots.

Layers made by napari-dmicro carry ``metadata["napari_dmicro"]`` (see :mod:`napari_dmicro._reader`):
``kind`` (of the source), ``component`` (what the layer shows: ``amplitude``, ``phase``,
``measurement``, ``ssim``), ``pixel_size_um``, ``wavelength_um``, ``source`` and ``attrs``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Iterable

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QLabel, QSizePolicy, QWidget

from ..config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from ..device import DEVICE_CHOICES
from ..io.fields import ATTRS_KEY

log = logging.getLogger("napari_dmicro.widgets")

TWO_PI = 2 * math.pi


# ------------------------------------------------------------------------------------------ notifications


def notify_error(task: str, exc: BaseException | str) -> None:
    """Show an error as a napari notification (the widget stays usable)."""
    from napari.utils.notifications import show_error

    text = str(exc) if not isinstance(exc, str) else exc
    if isinstance(exc, BaseException) and not text:
        text = type(exc).__name__
    if isinstance(exc, BaseException):
        log.debug("%s failed", task, exc_info=(type(exc), exc, exc.__traceback__))
    show_error(f"{task}: {text}")


def notify_info(text: str) -> None:
    from napari.utils.notifications import show_info

    show_info(text)


def notify_warning(text: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(text)


# ------------------------------------------------------------------------------------------ layer metadata


def meta(layer) -> dict:
    """The layer's ``napari_dmicro`` metadata block (empty for foreign layers)."""
    block = getattr(layer, "metadata", {}).get(ATTRS_KEY) if layer is not None else None
    return dict(block or {})


def component(layer) -> str | None:
    m = meta(layer)
    return m.get("component") or m.get("kind")


def is_image(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and getattr(layer, "rgb", False) is False


def is_phase_layer(layer) -> bool:
    """A phase image: a field's phase, a phase map or a reconstruction."""
    return is_image(layer) and component(layer) == "phase"


def is_field_phase(layer) -> bool:
    return is_phase_layer(layer) and meta(layer).get("kind") == "field"


def is_measurement_layer(layer) -> bool:
    """A camera image: a napari-dmicro measurement layer, or a plain image layer from another reader."""
    return is_image(layer) and (component(layer) == "measurement" or (not meta(layer) and layer.ndim == 2))


def is_amplitude_layer(layer) -> bool:
    return is_image(layer) and component(layer) == "amplitude"


def layer_array(layer):
    """Full-resolution data of an image layer (level 0 of a multiscale layer); may be lazy."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return data


def layer_numpy(layer, dtype=np.float32) -> np.ndarray:
    return np.asarray(layer_array(layer), dtype=dtype)


def pixel_size_um(layer) -> float:
    value = meta(layer).get("pixel_size_um")
    if value:
        return float(value)
    scale = float(layer.scale[-1]) if layer is not None else 1.0
    return scale if scale != 1.0 else DEFAULT_PIXEL_SIZE_UM


def wavelength_um(layer) -> float:
    value = meta(layer).get("wavelength_um")
    return float(value) if value else DEFAULT_WAVELENGTH_UM


def _stem(name: str, suffix: str) -> str:
    return name[: -len(suffix)].rstrip() if name.endswith(suffix) else name


def partner_amplitude(viewer, phase_layer):
    """The amplitude layer of the same field as ``phase_layer`` (same source and name), or None."""
    if not is_field_phase(phase_layer):
        return None
    m = meta(phase_layer)
    stem = _stem(phase_layer.name, "phase")
    shape = tuple(layer_array(phase_layer).shape)
    candidates = [lay for lay in viewer.layers if is_amplitude_layer(lay) and meta(lay).get("kind") == "field"
                  and meta(lay).get("source") == m.get("source") and tuple(layer_array(lay).shape) == shape]
    for lay in candidates:
        if _stem(lay.name, "amplitude") == stem:
            return lay
    return candidates[0] if len(candidates) == 1 else None


def field_from_layers(phase_layer, amplitude_layer=None) -> np.ndarray:
    """complex64 field amplitude·exp(i·phase); unit amplitude when ``amplitude_layer`` is None."""
    phase = layer_numpy(phase_layer)
    if phase.ndim != 2:
        raise ValueError(f"layer {phase_layer.name!r} is {phase.ndim}-D; a field is 2-D (rows, cols)")
    if amplitude_layer is None:
        amp = np.ones_like(phase)
    else:
        amp = layer_numpy(amplitude_layer)
        if amp.shape != phase.shape:
            raise ValueError(f"amplitude {amplitude_layer.name!r} {amp.shape} and phase {phase_layer.name!r} "
                             f"{phase.shape} differ in shape")
    out = np.empty(phase.shape, np.complex64)
    out.real = amp * np.cos(phase)
    out.imag = amp * np.sin(phase)
    return out


def reference_phase(layer) -> np.ndarray:
    """Phase in radians on [0, 2π) for a field's phase layer (stored in (−π, π]), as is otherwise."""
    phase = layer_numpy(layer)
    if meta(layer).get("kind") == "field":
        phase = np.mod(phase, TWO_PI).astype(np.float32)
    return phase


def json_safe(value: Any) -> Any:
    """Layer metadata that survives napari's writers and json (tuples → lists, numpy → python)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"array{value.shape}"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def layer_meta(kind: str, component_: str, pixel_size: float, wavelength: float, source, attrs: dict) -> dict:
    return {ATTRS_KEY: {"kind": kind, "component": component_, "pixel_size_um": float(pixel_size),
                        "wavelength_um": float(wavelength), "source": source, "attrs": json_safe(attrs)}}


def add_or_replace_image(viewer, data, *, name: str, **kwargs):
    """Add an image layer, or update the data and properties of the layer of that name."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        if is_image(layer) and tuple(np.shape(layer.data)) == tuple(np.shape(data)):
            layer.data = data
            for key in ("scale", "translate", "colormap", "contrast_limits", "opacity", "blending"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            if "metadata" in kwargs:
                layer.metadata = kwargs["metadata"]
            return layer
        viewer.layers.remove(layer)
    return viewer.add_image(data, name=name, **kwargs)


# ------------------------------------------------------------------------------------------ layer picker


def follow_layers(viewer, widget, callback: Callable[[], None], *, reordered: bool = False) -> Callable:
    """Call ``callback()`` whenever layers are added or removed (and reordered, if asked) until
    ``widget`` is destroyed; returns the function that stops following."""
    events = [viewer.layers.events.inserted, viewer.layers.events.removed]
    if reordered:
        events.append(viewer.layers.events.reordered)

    def stop(*_):
        for ev in events:
            try:
                ev.disconnect(handler)
            except Exception:  # noqa: BLE001 - the viewer may be gone already
                pass

    def handler(*_):
        try:
            callback()
        except RuntimeError:  # the C++ widget was deleted
            stop()

    for ev in events:
        ev.connect(handler)
    widget.destroyed.connect(stop)
    return stop


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers that pass ``accept``; refreshed as layers come and go."""

    def __init__(self, viewer, accept: Callable[[Any], bool], *, empty_text: str = "(no suitable layer)",
                 none_item: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self.accept = accept
        self.empty_text = empty_text
        self.none_item = none_item
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(16)
        follow_layers(viewer, self, self.refresh, reordered=True)
        self.refresh()

    def names(self) -> list[str]:
        return [lay.name for lay in self.viewer.layers if self.accept(lay)]

    def refresh(self) -> None:
        current = self.currentText()
        names = self.names()
        self.blockSignals(True)
        self.clear()
        if self.none_item is not None:
            self.addItem(self.none_item)
        self.addItems(names)
        if not names and self.none_item is None:
            self.addItem(self.empty_text)
        if current and self.findText(current) >= 0:
            self.setCurrentIndex(self.findText(current))
        elif names and self.none_item is None:
            self.setCurrentIndex(len(names) - 1)  # the newest layer
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentIndexChanged.emit(self.currentIndex())

    def showPopup(self):  # noqa: N802 - Qt API
        self.refresh()  # names may have changed since
        super().showPopup()

    def current_layer(self):
        name = self.currentText()
        if name in self.viewer.layers and self.accept(self.viewer.layers[name]):
            return self.viewer.layers[name]
        return None

    def set_layer(self, layer) -> None:
        self.refresh()
        index = self.findText(layer.name if layer is not None else (self.none_item or ""))
        if index >= 0:
            self.setCurrentIndex(index)


def device_combo(default: str = "cpu") -> QComboBox:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``mps``; unavailable ones are greyed."""
    import torch

    combo = QComboBox()
    available = {"auto": True, "cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    for name in DEVICE_CHOICES:
        combo.addItem(name)
        if not available.get(name, True):
            item = combo.model().item(combo.count() - 1)
            item.setEnabled(False)
            item.setToolTip(f"{name} is not available on this machine")
    combo.setCurrentText(default)
    combo.setToolTip("auto picks CUDA, then Apple MPS, then the CPU")
    return combo


def wrapped_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


# ------------------------------------------------------------------------------------------ workers


def start_worker(func: Callable, *args, task: str, on_yield: Callable | None = None,
                 on_return: Callable | None = None, on_finish: Callable | None = None,
                 on_error: Callable | None = None, **kwargs):
    """Run ``func`` (a function or generator) in a napari thread worker.

    Errors become a napari notification "<task>: <message>" (then ``on_error``); ``on_finish`` runs
    in every case (done, error, quit), on the GUI thread.
    """
    from napari.qt.threading import create_worker

    worker = create_worker(_catching(func), *args, _ignore_errors=True, **kwargs)

    def _errored(exc):
        from .workers import TaskCancelled

        if isinstance(exc, TaskCancelled):
            notify_info(f"{task}: cancelled")
        else:
            notify_error(task, exc)
        if on_error is not None:
            on_error(exc)

    def _returned(value):
        if isinstance(value, _Failure):
            _errored(value.exc)
        elif on_return is not None:
            on_return(value)

    worker.errored.connect(_guarded(_errored))  # only for errors outside the task itself
    if on_yield is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(_guarded(on_yield))
    worker.returned.connect(_guarded(_returned))
    if on_finish is not None:
        worker.finished.connect(_guarded(on_finish))
    worker.done = False  # True once every slot above has run (tests and scripts wait on it)
    worker.finished.connect(lambda: setattr(worker, "done", True))
    worker.start()
    return worker


class _Failure:
    """What a task returns instead of raising (see :func:`_catching`)."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _catching(func: Callable) -> Callable:
    """The task, returning a :class:`_Failure` instead of raising.

    A worker's ``errored`` signal also reaches napari's task-status slots, which take no argument
    under PySide6 and raise in the Qt event loop; a failure delivered through ``returned`` does not.
    """
    import functools
    import inspect

    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def gen(*args, **kwargs):
            try:
                return (yield from func(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - reported by the widget as a notification
                return _Failure(exc)
        return gen

    @functools.wraps(func)
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            return _Failure(exc)
    return call


def _guarded(slot: Callable) -> Callable:
    """A slot that does nothing once its widget's C++ object is gone (the dock was closed mid-task)."""

    def call(*args):
        try:
            return slot(*args)
        except RuntimeError as exc:
            if "already deleted" in str(exc) or "has been deleted" in str(exc):
                log.debug("a widget closed before its task finished: %s", exc)
                return None
            raise

    return call


# ------------------------------------------------------------------------------------------ plots


def make_figure_canvas(width_in: float = 4.0, height_in: float = 2.6):
    """A matplotlib (qtagg) canvas and its axes, styled to sit in a napari dock."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=90, layout="constrained")
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(180)
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    ax = fig.add_subplot(111)
    ax.tick_params(labelsize=8)
    return canvas, ax


def fmt(value, spec: str = ".3f", missing: str = "–") -> str:
    return missing if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def first(items: Iterable, default=None):
    return next(iter(items), default)


class TaskControlsMixin:
    """Run/Cancel/progress behaviour shared by the one-shot task widgets (Simulate, Reconstruct).

    ``_build_task_layout`` creates ``run_button``, ``cancel_button``, ``progress`` (0–100) and ``status``
    below the widget's settings form; the widget provides ``run()`` and ``_cancel`` (a threading.Event
    the worker polls; closing the dock sets it).
    """

    def _build_task_layout(self, form, run_text: str) -> None:
        from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout

        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status = wrapped_label("")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.destroyed.connect(lambda *_, ev=self._cancel: ev.set())  # closing the dock stops the task

    def _on_error(self, exc):
        from .workers import TaskCancelled

        self.progress.setValue(0)
        self.status.setText("cancelled" if isinstance(exc, TaskCancelled) else "failed (see the notification)")

    def cancel(self):
        self._cancel.set()
        self.status.setText("cancelling…")

    def _set_running(self, running: bool):
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running and self.progress.value() < 100:
            self.progress.setValue(0)

    def _on_yield(self, item):
        if item[0] == "status":
            self.status.setText(item[1] + "…")
        elif item[0] == "progress" and item[2] > 0:
            self.progress.setValue(int(100 * item[1] / item[2]))


def ask_checkpoint(parent, registry, title: str, task: str):
    """File dialog for a checkpoint; adds it to the shared model list. Returns the entry or None."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, title, "", "Checkpoints (*.safetensors);;All files (*)")
    return add_checkpoint(registry, path, task) if path else None


def add_checkpoint(registry, path, task: str):
    """Add a checkpoint to the shared model list; a bad file becomes a notification, not a crash."""
    try:
        return registry.add_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - every file problem becomes a notification
        notify_error(task, exc)
        return None
