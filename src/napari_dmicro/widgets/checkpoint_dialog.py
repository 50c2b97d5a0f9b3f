"""Opening a checkpoint from a widget: a file dialog, then the shared model list; bad files become notifications."""

from __future__ import annotations

from qtpy.QtWidgets import QFileDialog

from .notifications import notify_error


def ask_checkpoint(parent, registry, title: str, task: str):
    """File dialog for a checkpoint; adds it to the shared model list. Returns the entry or None."""
    path, _ = QFileDialog.getOpenFileName(parent, title, "", "Checkpoints (*.safetensors);;All files (*)")
    return add_checkpoint(registry, path, task) if path else None


def add_checkpoint(registry, path, task: str):
    """Add a checkpoint to the shared model list; a bad file becomes a notification, not a crash."""
    try:
        return registry.add_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - every file problem becomes a notification
        notify_error(task, exc)
        return None
