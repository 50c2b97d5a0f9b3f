"""Small Qt building blocks of the widgets: device choice, wrapped labels, numbers as text."""

from __future__ import annotations

import math

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..device import DEVICE_CHOICES


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
    """A selectable label that wraps its text to the dock's width."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


def fmt(value, spec: str = ".3f", missing: str = "–") -> str:
    """A number as text for labels and tables; ``missing`` for None, NaN and ±inf."""
    return missing if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def length_box(maximum: float, tooltip: str, empty: str = "from the file") -> QDoubleSpinBox:
    """An editable length in µm (4 decimals); 0 shows ``empty`` (= use the recorded value, never a default)."""
    box = QDoubleSpinBox()
    box.setDecimals(4)
    box.setRange(0.0, maximum)
    box.setSingleStep(0.01)
    box.setSpecialValueText(empty)
    box.setSuffix(" µm")
    box.setToolTip(tooltip)
    return box


class CardView(QWidget):
    """A model card that keeps docks short: its first line, and the rest behind a "details" toggle.

    ``text()`` is the whole card (as a label's), ``setText`` replaces it.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.head = wrapped_label("")
        self.body = wrapped_label("")
        self.toggle = QToolButton()
        self.toggle.setText("details")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("show the whole model card: training, test metrics, optics, how to reproduce it")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.head, 1)
        row.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.body)
        self.body.setVisible(False)
        self.toggle.toggled.connect(self.body.setVisible)
        self._text = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's name
        self._text = text or ""
        head, _, rest = self._text.partition("\n")
        self.head.setText(head)
        self.body.setText(rest)
        self.toggle.setVisible(bool(rest))
        self.body.setVisible(bool(rest) and self.toggle.isChecked())

    def text(self) -> str:
        return self._text


def set_row_visible(form, field: QWidget, visible: bool) -> None:
    """Show or hide a QFormLayout row (its label and field) by its field widget."""
    if hasattr(form, "setRowVisible"):  # Qt ≥ 6.4
        form.setRowVisible(field, visible)
        return
    label = form.labelForField(field)
    for widget in (label, field):
        if widget is not None:
            widget.setVisible(visible)
