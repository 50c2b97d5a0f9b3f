"""napari widgets: thin Qt clients of the public API (the only place Qt is imported).

* :class:`~.importer.ImportWidget` — a hologram, phase image or complex array → field layers
  (``napari_dmicro.field_from_hologram``), with the pixel size and wavelength entered;
* :class:`~.load.LoadWidget` — open a field (amplitude + phase layers) or a detector measurement;
* :class:`~.simulate.SimulateWidget` — field layers → measurement layer (``napari_dmicro.simulate``);
* :class:`~.reconstruct.ReconstructWidget` — measurement → phase layer (``napari_dmicro.reconstruct``);
* :class:`~.compare.CompareWidget` — PSNR/SSIM, SSIM maps, grid view, line profiles (``napari_dmicro.evaluate``);
* :class:`~.train.TrainWidget` — the three training stages (``napari_dmicro.training.Trainer``).

Long work runs in napari thread workers (:mod:`.workers` holds the Qt-free task functions,
:mod:`.thread_workers` starts them); the shared model list is the engine's
:func:`napari_dmicro.model_registry.model_registry`, shown by :class:`.models.ModelCombo`. Modules are
imported lazily so that importing :mod:`napari_dmicro.widgets` does not import Qt.
"""

from __future__ import annotations

_WIDGETS = {
    "ImportWidget": "importer",
    "LoadWidget": "load",
    "SimulateWidget": "simulate",
    "ReconstructWidget": "reconstruct",
    "CompareWidget": "compare",
    "TrainWidget": "train",
}

__all__ = list(_WIDGETS)


def __getattr__(name: str):
    if name in _WIDGETS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_WIDGETS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
