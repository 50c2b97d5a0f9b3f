"""Run / Cancel / progress controls shared by the one-shot task widgets (Simulate, Reconstruct)."""

from __future__ import annotations

from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout

from .controls import wrapped_label
from .workers import TaskCancelled


class TaskControlsMixin:
    """Run/Cancel/progress behaviour shared by the one-shot task widgets (Simulate, Reconstruct).

    ``_build_task_layout`` creates ``run_button``, ``cancel_button``, ``progress`` (0–100) and ``status``
    below the widget's settings form; the widget provides ``run()`` and ``_cancel`` (a threading.Event
    the worker polls; closing the dock sets it).
    """

    def _build_task_layout(self, form, run_text: str) -> None:
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
