"""Progress events: what a training run reports, for the CLI progress bar and the napari widget."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

EventKind = Literal["start", "stage_start", "step", "validation", "checkpoint", "stage_end", "test",
                    "done", "cancelled", "message"]


@dataclass
class TrainEvent:
    """One thing that happened in a run. ``step`` counts completed optimiser steps in the stage."""

    kind: EventKind
    stage: str | None = None
    stage_number: int | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    terms: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    lr: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""
    path: str | None = None
    #: epoch progress of a ``step`` event (an epoch = one patch from every training field): the epoch
    #: in progress (1-based) of ``epochs``, and the step within it of ``steps_per_epoch``
    epoch: int | None = None
    epochs: int | None = None
    epoch_step: int | None = None
    steps_per_epoch: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    def describe(self) -> str:
        """One human-readable line (used by the CLI and logs)."""
        where = f"stage {self.stage_number} ({self.stage})" if self.stage else "run"
        if self.kind == "validation":
            shown = ", ".join(f"{k} {v:.4g}" for k, v in self.metrics.items() if isinstance(v, (int, float)))
            return f"{where} step {self.step}/{self.total_steps}: validation {shown}"
        if self.kind == "step":
            epoch = f" (epoch {self.epoch}/{self.epochs})" if self.epoch is not None else ""
            return f"{where} step {self.step}/{self.total_steps}{epoch}: loss {self.loss:.4g}"
        return f"{where}: {self.message}" if self.message else f"{where}: {self.kind}"
