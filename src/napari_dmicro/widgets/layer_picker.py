"""Layer pickers: a combo box of the viewer's suitable layers that follows layers as they come and go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QComboBox, QWidget


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
                 none_item: str | None = None, extra_items: tuple[str, ...] = (),
                 prefer: Callable[[Any], bool] | None = None, parent: QWidget | None = None):
        """``none_item``/``extra_items``: fixed entries listed first (no layer); ``prefer``: without a current
        choice, the newest layer passing it is chosen (else the newest layer)."""
        super().__init__(parent)
        self.viewer = viewer
        self.accept = accept
        self.empty_text = empty_text
        self.none_item = none_item
        self.extra_items = tuple(extra_items)
        self.prefer = prefer
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
        self.addItems(list(self.extra_items))
        self.addItems(names)
        if not names and self.none_item is None and not self.extra_items:
            self.addItem(self.empty_text)
        if current and self.findText(current) >= 0:
            self.setCurrentIndex(self.findText(current))
        elif names and self.none_item is None:
            preferred = [n for n in names if self.prefer is not None and self.prefer(self.viewer.layers[n])]
            self.setCurrentIndex(self.findText((preferred or names)[-1]))  # the newest (preferred) layer
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
