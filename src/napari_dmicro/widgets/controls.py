"""Small Qt building blocks of the widgets: device choice, wrapped labels, numbers as text."""

from __future__ import annotations

import math

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QSizePolicy

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
