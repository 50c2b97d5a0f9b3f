"""The model choice of the widgets: a combo box over the session's model list.

Simulate, Reconstruct and Train's *init* each show a :class:`ModelCombo`; when a checkpoint is opened
or a training run ends, the registry (:mod:`napari_dmicro.model_registry`) emits ``changed`` and every
combo refills at once.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QWidget

from ..model_registry import ModelEntry, ModelRegistry, model_registry

#: the model Simulate starts on: a shipped, trained model (noise-free learnable Fourier filter, x64)
DEFAULT_SHIPPED_MODEL = "lff-x64"


def default_model_name(registry: ModelRegistry) -> str | None:
    """:data:`DEFAULT_SHIPPED_MODEL` if listed, else the first shipped model, else the first model."""
    entries = registry.entries()
    if DEFAULT_SHIPPED_MODEL in registry:
        return DEFAULT_SHIPPED_MODEL
    shipped = [e.name for e in entries if e.origin == "shipped"]
    return (shipped or [e.name for e in entries] or [None])[0]


class ModelCombo(QComboBox):
    """The registry's models (plus fixed ``extra_items`` first); refills when the registry changes."""

    def __init__(self, registry: ModelRegistry | None = None, extra_items: tuple[str, ...] = (),
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry or model_registry()
        self.extra_items = tuple(extra_items)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(16)
        self.registry.changed.connect(self._on_registry_changed)
        self.destroyed.connect(self._disconnect)
        self.refill()

    def _disconnect(self, *_):
        try:
            self.registry.changed.disconnect(self._on_registry_changed)
        except Exception:  # noqa: BLE001
            pass

    def _on_registry_changed(self):
        try:
            self.refill()
        except RuntimeError:  # the C++ widget is gone
            self._disconnect()

    def refill(self, select: str | None = None) -> None:
        current = select or self.currentText()
        self.blockSignals(True)
        self.clear()
        self.addItems(list(self.extra_items))
        for entry in self.registry.entries():
            self.addItem(entry.name)
            self.setItemData(self.count() - 1, entry.summary(), 3)  # Qt.ToolTipRole
        if current and self.findText(current) >= 0:
            self.setCurrentIndex(self.findText(current))
        self.blockSignals(False)
        self.currentIndexChanged.emit(self.currentIndex())

    def current_entry(self) -> ModelEntry | None:
        name = self.currentText()
        return self.registry.get(name) if name in self.registry else None

    def select(self, name: str) -> None:
        index = self.findText(name)
        if index >= 0:
            self.setCurrentIndex(index)
