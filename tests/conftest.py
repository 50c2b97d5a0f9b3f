"""Shared test fixtures: tiny microscopes (untrained, seconds to build), their checkpoints, and folders of
phantom fields. Each is a factory or a session-wide file set, so a test says only what differs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_dmicro.config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.phantoms import make_fields
from napari_dmicro.system import Microscope, SystemConfig

# what the tiny checkpoints' cards say (the widgets show it)
TINY_CARD = {"preset": "tiny test", "test": {"psnr_db": 12.5, "ssim": 0.25}}


def _tiny_system(optics: str = "lff", *, compression: int = 16, outside_field: str | None = None,
                 decoder: str = "conv-tiny", **decoder_overrides) -> SystemConfig:
    if optics == "lff":
        optics_config = FourierFilterConfig(filter_size_px=32)
    elif optics == "d2nn":
        optics_config = DiffractiveConfig(n_layers=2, n_neurons=64, pad_factor=2)
    else:
        raise ValueError(f"optics {optics!r}: 'lff' or 'd2nn'")
    encoder = EncoderConfig(optics=optics_config, detector=DetectorConfig(compression=compression),
                            **({"outside_field": outside_field} if outside_field else {}))
    return SystemConfig(encoder=encoder,
                        decoder=decoder_config(decoder, encoder.detector.binning, **decoder_overrides))


def _tiny_microscope(optics: str = "lff", *, seed: int = 0, **system) -> Microscope:
    torch.manual_seed(seed)  # decoders draw their initial weights from torch's global generator
    return Microscope(_tiny_system(optics, **system), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="session")
def tiny_system() -> Callable[..., SystemConfig]:
    """``tiny_system(optics="lff"|"d2nn", compression=16, outside_field=None, decoder="conv-tiny", **decoder)``:
    a 32² learnable Fourier filter (or a 2-layer 64² PhaseD2NN) with an x16 camera and a tiny decoder."""
    return _tiny_system


@pytest.fixture(scope="session")
def tiny_microscope() -> Callable[..., Microscope]:
    """``tiny_microscope(optics="lff", seed=0, **tiny_system options)``: an untrained, seeded Microscope."""
    return _tiny_microscope


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Untrained tiny x16 checkpoints with :data:`TINY_CARD`: ``lff`` (seed 0), ``lff-seed1``, ``d2nn``
    (file stems = the keys, so the widgets' model list names them the same)."""
    root = tmp_path_factory.mktemp("tiny_checkpoints")
    models = {"lff": ("lff", 0), "lff-seed1": ("lff", 1), "d2nn": ("d2nn", 0)}
    return {name: save_checkpoint(root / f"{name}.safetensors", _tiny_microscope(optics, seed=seed), card=TINY_CARD)
            for name, (optics, seed) in models.items()}


@pytest.fixture(scope="session")
def phantom_folder(tmp_path_factory) -> Callable[..., Path]:
    """``phantom_folder(count, seed=3, size_px=96)``: a folder of ``field_NN.npy`` phantom fields (the
    training data format), written once per session for each (count, seed, size_px)."""
    made: dict[tuple[int, int, int], Path] = {}

    def folder(count: int, seed: int = 3, size_px: int = 96) -> Path:
        key = (count, seed, size_px)
        if key not in made:
            root = tmp_path_factory.mktemp(f"phantoms_{count}_{seed}_{size_px}")
            for k, field in enumerate(make_fields(count, seed=seed, size_px=(size_px, size_px))):
                np.save(root / f"field_{k:02d}.npy", field)
            made[key] = root
        return made[key]

    return folder
