"""The session's list of models: shipped models, checkpoints opened by the user, models trained here.

One :class:`ModelRegistry` per session (:func:`model_registry`); ``changed`` (a psygnal signal, no Qt)
fires whenever the list changes, so a GUI can refill its model choices (see
:class:`napari_dmicro.widgets.models.ModelCombo`).

The registry reads only checkpoint headers (configuration and card); weights are loaded by
:func:`napari_dmicro.load_model` where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal

from .io.checkpoints import read_checkpoint_info
from .pretrained import describe_model, resolve_model, shipped_models

ORIGINS = ("shipped", "checkpoint", "trained")


@dataclass
class ModelEntry:
    """One model in the list: ``name`` is what a GUI shows; ``source`` is what ``load_model`` takes."""

    name: str
    path: Path
    origin: str  # "shipped" | "checkpoint" | "trained"
    config: Any  # SystemConfig
    card: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.name if self.origin == "shipped" else str(self.path)

    @property
    def modality(self) -> str:
        """"qpm" (quantitative phase) or "fluorescence"."""
        return str(getattr(self.config, "modality", "qpm"))

    @property
    def compression(self) -> int | float:
        """Pixel-count compression (QPM: binning²; fluorescence: d²/T, an int when T divides d²)."""
        c = float(self.config.compression)
        return int(c) if c == int(c) else c

    @property
    def optics_kind(self) -> str:
        return str(self.config.optics_kind)

    @property
    def pixel_size_um(self) -> float:
        """The object (QPM) or specimen/DMD (fluorescence) pixel size the model works at, µm."""
        if self.modality == "fluorescence":
            return float(self.config.encoder.pixel_size_um)
        return float(self.config.encoder.optics.grid.pixel_size_um)
    @property
    def has_seg_head(self) -> bool:
        """A task-aware fluorescence model (its decoder has a segmentation head: ``dm.segment``)."""
        return bool(getattr(self.config.decoder, "seg_head", False)) and self.modality == "fluorescence"

    @property
    def state(self) -> str:
        """What was trained (:func:`training_state`)."""
        return training_state(self.card)

    def summary(self) -> str:
        """A few lines for the widgets: what was trained, optics, decoder, how, its test numbers."""
        lines = [self.state, *describe_model(self.config, self.card or {})]
        origin = {"shipped": "shipped with napari-dmicro", "checkpoint": "opened checkpoint",
                  "trained": "trained in this session"}[self.origin]
        lines.append(f"{origin}: {self.path}")
        return "\n".join(lines)


def training_finished(card: dict | None) -> bool:
    """The run that wrote this card ended (its model was tested once), or the card records no run at all
    (a shipped or hand-made checkpoint, taken as it says)."""
    card = card or {}
    return card.get("test") is not None or card.get("stage") is None


def decoder_trained(card: dict | None) -> bool:
    """False for a model whose decoder never trained: a run stopped in stage 1 (optics) that did not start
    from a trained model (``init``). Such a model reconstructs nothing useful."""
    card = card or {}
    return card.get("stage") != "optics" or bool((card.get("train_config") or {}).get("init"))


def training_state(card: dict | None) -> str:
    """One line on what was trained: finished, or where the run stopped and whether the decoder trained."""
    card = card or {}
    stage, step = card.get("stage"), card.get("stage_step")
    total = (card.get("stage_steps") or {}).get(stage) if stage else None
    numbers = {"optics": 1, "decoder": 2, "end_to_end": 3,  # fluorescence: the paper's three steps
               "reconstruct": 1, "seg_head": 2, "seg_joint": 3}
    where = (f"stage {numbers.get(stage, '?')} ({stage}) step {step}" + (f"/{total}" if total else "")
             if stage else "")
    if not decoder_trained(card):
        return (f"state: decoder UNTRAINED — the run stopped in {where} before stage 2 trained it; "
                "resume the run (Train ▸ Resume run…) before reconstructing with it")
    if training_finished(card):
        return "state: trained" + (f" (finished; best model from {where})" if stage else "")
    return f"state: partly trained — the run stopped in {where}; resume it to finish"


class ModelRegistry:
    """Name → :class:`ModelEntry`; ``changed`` fires whenever the list changes."""

    changed = Signal()

    def __init__(self, include_shipped: bool = True):
        self._entries: dict[str, ModelEntry] = {}
        if include_shipped:
            self._add_shipped()

    def _add_shipped(self) -> None:
        for name, path in shipped_models().items():
            try:
                info = read_checkpoint_info(path)
            except Exception:  # noqa: BLE001 - a damaged shipped file must not break the widgets
                continue
            self._entries[name] = ModelEntry(name, Path(path), "shipped", info.config, info.card)

    # ------------------------------------------------------------------ queries
    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"no model called {name!r} in the model list") from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def by_path(self, path) -> ModelEntry | None:
        p = Path(path).resolve()
        for entry in self._entries.values():
            if entry.path.resolve() == p:
                return entry
        return None

    # ------------------------------------------------------------------ changes
    def add_checkpoint(self, path, *, name: str | None = None, origin: str = "checkpoint") -> ModelEntry:
        """Add (or refresh) a checkpoint file or run folder; returns its entry. Raises if unreadable."""
        if origin not in ORIGINS:
            raise ValueError(f"origin {origin!r} must be one of {ORIGINS}")
        resolved = resolve_model(path)
        info = read_checkpoint_info(resolved)
        existing = self.by_path(resolved)
        if existing is not None:
            existing.config, existing.card = info.config, info.card
            if origin == "trained":
                existing.origin = origin
                renamed = name or self._default_name(Path(resolved), origin, info.card)
                if renamed != existing.name and renamed not in self._entries:  # its state changed (resumed)
                    self._entries = {(renamed if k == existing.name else k): v for k, v in self._entries.items()}
                    existing.name = renamed
            self.changed.emit()
            return existing
        base = name or self._default_name(Path(resolved), origin, info.card)
        unique, k = base, 2
        while unique in self._entries:
            unique, k = f"{base} [{k}]", k + 1
        entry = ModelEntry(unique, Path(resolved), origin, info.config, info.card)
        self._entries[unique] = entry
        self.changed.emit()
        return entry

    def remove(self, name: str) -> None:
        if self._entries.pop(name, None) is not None:
            self.changed.emit()

    @staticmethod
    def _default_name(path: Path, origin: str, card: dict | None = None) -> str:
        stem = path.stem
        if stem in ("model", "last") and path.parent.name:
            stem = path.parent.name if stem == "model" else f"{path.parent.name} (last)"
        if origin != "trained":
            return stem
        if not decoder_trained(card):
            return f"{stem} (decoder untrained)"
        return f"{stem} (trained)" if training_finished(card) else f"{stem} (partly trained)"


_REGISTRY: ModelRegistry | None = None


def model_registry() -> ModelRegistry:
    """The session's model list (created on first use with the shipped models)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = ModelRegistry()
    return _REGISTRY
