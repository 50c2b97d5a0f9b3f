"""Shared test fixtures: tiny microscopes (untrained, seconds to build), their checkpoints, and folders of
phantom fields. Each is a factory or a session-wide file set, so a test says only what differs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from napari_dmicro.config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.phantoms import make_fields
from napari_dmicro.system import Microscope, SystemConfig


def _make_none_immortal() -> None:
    """Every napari viewer test drains 5 000–22 000 references of ``None`` (measured per test with
    ``sys.getrefcount(None)``: a refcount bug in a C extension of the Qt/napari stack, not in Python code),
    and ~40 viewer tests use up its ~260 000 references: the interpreter then aborts at exit with "none_dealloc"
    (exit 134) after every test has passed. Python ≥ 3.12 makes ``None`` immortal (PEP 683) for exactly this;
    on 3.11 the test process gives it the same immortality by raising its reference count (CPython only)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40


_make_none_immortal()

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


def _tiny_fluorescence(seg: bool = False, *, period_bins: int = 1, bin_px: int = 8, seed: int = 0):
    """An untrained T = 4 fluorescence microscope (Gaussian emission PSF) with a tiny locality decoder, its
    measurement normalisation fitted and its upsampler started from the patterns (seconds to build)."""
    from napari_dmicro.fluorescence import (
        FluorescenceDetectorConfig,
        FluorescenceEncoderConfig,
        PatternConfig,
        PSFConfig,
    )
    from napari_dmicro.system import FluorescenceSystemConfig, build_system

    torch.manual_seed(seed)
    enc = FluorescenceEncoderConfig(
        patterns=PatternConfig(n_patterns=4, period_bins=period_bins),
        emission=PSFConfig(kind="gaussian", na=0.75, wavelength_um=0.52),
        detector=FluorescenceDetectorConfig(bin_px=bin_px))
    cfg = FluorescenceSystemConfig(encoder=enc, decoder=decoder_config("locality-tiny", bin_px, in_chans=4,
                                                                       period_bins=period_bins, seg_head=seg))
    model = build_system(cfg, generator=torch.Generator().manual_seed(seed)).eval()
    model.fit_measurement_normalization(model.measure(torch.rand(2, 64, 64)))
    model.init_decoder_from_patterns()
    model.name = "test-fluo"
    return model


@pytest.fixture(scope="session")
def tiny_fluorescence() -> Callable:
    """``tiny_fluorescence(seg=False, period_bins=1, bin_px=8, seed=0)``: an untrained fluorescence model."""
    return _tiny_fluorescence


@pytest.fixture(scope="session")
def tiny_fluorescence_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Untrained fluorescence checkpoints (bin 8, T = 4, 0.325 µm): ``fluo-recon`` (no segmentation head),
    ``fluo-seg`` and ``fluo-seg-other`` (task-aware, other patterns: seed 1), ``fluo-bin16``."""
    root = tmp_path_factory.mktemp("tiny_fluorescence")
    models = {"fluo-recon": dict(seg=False), "fluo-seg": dict(seg=True), "fluo-seg-other": dict(seg=True, seed=1),
              "fluo-bin16": dict(seg=False, bin_px=16)}
    return {name: save_checkpoint(root / f"{name}.safetensors", _tiny_fluorescence(**kw), card=TINY_CARD)
            for name, kw in models.items()}


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


#: side of the huge lazy field store (3.2 GB of complex64 if it were loaded)
HUGE_FIELD_SHAPE = (20000, 20000)


@pytest.fixture(scope="session")
def big_field_store(tmp_path_factory) -> Path:
    """A complete 20000² complex64 zarr (316.4 nm, 632.8 nm) written in about a second: one random chunk,
    one chunk of 1j whose file is copied to every other chunk key (zarr stores edge chunks full size)."""
    path, chunk = tmp_path_factory.mktemp("big") / "big.zarr", 1024
    z = zarr.create_array(str(path), shape=HUGE_FIELD_SHAPE, chunks=(chunk, chunk), dtype=np.complex64,
                          fill_value=0, config={"write_empty_chunks": True})
    z[:chunk, chunk:2 * chunk] = 1j
    template = path / "c" / "0" / "1"
    for i in range(-(-HUGE_FIELD_SHAPE[0] // chunk)):
        (path / "c" / str(i)).mkdir(parents=True, exist_ok=True)
        for j in range(-(-HUGE_FIELD_SHAPE[1] // chunk)):
            if not (path / "c" / str(i) / str(j)).exists():
                shutil.copyfile(template, path / "c" / str(i) / str(j))
    rng = np.random.default_rng(4)
    z[:chunk, :chunk] = ((0.5 + rng.random((chunk, chunk))) * np.exp(2j * np.pi * rng.random((chunk, chunk)))
                         ).astype(np.complex64)
    z.attrs.update({"pixel_size_um": 0.3164, "wavelength_um": 0.6328})
    return path


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The measured data folder (../shared/realdata beside the repository, $DMICRO_REALDATA, or
    /work/shared/realdata); tests that need it are skipped only where none exists."""
    candidates = [os.environ.get("DMICRO_REALDATA"), Path(__file__).resolve().parents[2] / "shared" / "realdata",
                  "/work/shared/realdata"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "nrefocus_hl60_qlsi_field").is_dir():
            return Path(candidate)
    pytest.skip("../shared/realdata is not on this machine (set DMICRO_REALDATA)")


class Notifications(list):
    """The napari notifications shown during a test; ``errors()``: the messages of the error ones."""

    def errors(self) -> list[str]:
        from napari.utils.notifications import NotificationSeverity

        return [n.message for n in self if n.severity == NotificationSeverity.ERROR]


@pytest.fixture
def notifications() -> Notifications:
    """Collects every napari notification shown while the test runs (widget tests)."""
    from napari.utils.notifications import notification_manager

    seen = Notifications()
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)
