"""Checkpoints: one safetensors file = weights + JSON (configs, model card, versions). Never pickle.

Layout of a ``*.safetensors`` checkpoint written by this tool:
- tensors: the model's state dict (``encoder.*``, ``decoder.*``), float32, CPU: a QPM ``Microscope`` or a
  ``FluorescenceMicroscope``;
- header metadata (strings): ``format`` = "napari-dmicro-checkpoint", ``format_version``,
  ``config`` (``SystemConfig`` or ``FluorescenceSystemConfig`` JSON, told apart by the encoder's ``kind``)
  and ``card`` (JSON: training command, data fingerprint, metrics,
  package and torch versions, …).

Training state (optimiser moments, step counters) lives in a separate safetensors file written by
:func:`save_train_state`. Loading only ever parses safetensors headers and JSON: a pickle (or a
PyTorch ``.pt`` zip) is refused before any byte of it is interpreted (:mod:`.safetensors_header`), and
a checkpoint's configuration and tensor shapes are checked before a model is built
(:mod:`.checkpoint_checks`), so a crafted file is refused in well under a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import write_file_atomically
from .checkpoint_checks import check_model_size, check_tensor_shapes, optics_shapes
from .safetensors_header import SafetensorsHeader, read_safetensors_header

FORMAT = "napari-dmicro-checkpoint"
TRAIN_STATE_FORMAT = "napari-dmicro-train-state"
FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A file is not a usable napari-dmicro checkpoint; the message says why and what to do."""


@dataclass
class CheckpointInfo:
    path: Path
    config: Any  # SystemConfig | FluorescenceSystemConfig
    card: dict = field(default_factory=dict)


def versions() -> dict[str, str]:
    from .. import __version__

    return {"napari_dmicro": __version__, "torch": torch.__version__}


def _plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_safetensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Atomically write tensors + string metadata (temporary file, fsync, rename)."""
    from safetensors.torch import save_file

    out = Path(path)
    write_file_atomically(out, lambda tmp: save_file(_plain_tensors(tensors), tmp, metadata=metadata))
    return out


_CHECKPOINT_HINT = "Use a checkpoint written by napari-dmicro (dmicro train … writes model.safetensors)"


def read_header(path) -> SafetensorsHeader:
    """Metadata and tensor shapes of a checkpoint or training state, without reading a tensor or unpickling."""
    return read_safetensors_header(path, error=CheckpointError, hint=_CHECKPOINT_HINT)


def _metadata(header: SafetensorsHeader, expected_format: str) -> dict[str, str]:
    meta = header.metadata
    path = header.path
    fmt = meta.get("format")
    if fmt != expected_format:
        raise CheckpointError(
            f"{path} is a safetensors file but not a {expected_format} (format={fmt!r}); it was not "
            "written by napari-dmicro or is a different kind of file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('format_version')!r}; this "
                              f"napari-dmicro reads version {FORMAT_VERSION}. Upgrade napari-dmicro")
    return meta


def save_checkpoint(path, model, card: dict | None = None) -> Path:
    """Write a ``Microscope`` (weights + config + card) to ``path`` atomically."""
    card = {**(card or {}), "versions": versions()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.model_dump_json(),
        "card": json.dumps(card, default=str),
    }
    return save_safetensors(path, model.state_dict(), metadata)


def read_checkpoint_info(path) -> CheckpointInfo:
    """Config and card of a checkpoint (no tensors loaded)."""
    return _checkpoint_info(read_header(path))


def _checkpoint_info(header: SafetensorsHeader) -> CheckpointInfo:
    from ..system import system_config_from_json

    path = header.path
    meta = _metadata(header, FORMAT)
    try:
        config = system_config_from_json(meta.get("config") or "")
    except ValueError as exc:  # pydantic's ValidationError: the message names the field and its limit
        raise CheckpointError(f"{path}: its configuration is invalid: {exc}") from None
    try:
        card = json.loads(meta.get("card") or "{}")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its model card is not valid JSON ({exc})") from None
    return CheckpointInfo(Path(path), config, card)


def load_checkpoint(path, device: str | torch.device = "cpu"):
    """Load a ``Microscope`` or ``FluorescenceMicroscope`` onto ``device`` (weights are stored on the CPU)."""
    from safetensors.torch import load_file

    from ..device import resolve_device
    from ..system import build_system

    header = read_header(path)
    info = _checkpoint_info(header)
    dev = resolve_device(device)
    check_model_size(info.config, path, CheckpointError)  # the file is judged before anything is allocated
    check_tensor_shapes(header, info.config, CheckpointError)
    model = build_system(info.config, init="all_pass")
    model.load_state_dict(load_file(str(path), device="cpu"), strict=False)
    return model.to(dev).eval(), info


def check_compatible(info: CheckpointInfo, encoder_config, *, what: str = "this run") -> None:
    """Refuse a checkpoint whose optics or compression differ from ``encoder_config``."""
    have = info.config.encoder
    have_kind = getattr(have, "kind", None) or have.optics.kind
    want_kind = getattr(encoder_config, "kind", None) or encoder_config.optics.kind
    if "fluorescence" in (have_kind, want_kind):
        _check_fluorescence_compatible(info, have, encoder_config, what)
        return
    problems = []
    if have.optics.kind != encoder_config.optics.kind:
        problems.append(f"optics {have.optics.kind} vs {encoder_config.optics.kind}")
    if have.detector.compression != encoder_config.detector.compression:
        problems.append(f"compression x{have.detector.compression} vs x{encoder_config.detector.compression}")
    if have.optics.grid != encoder_config.optics.grid:
        problems.append(f"grid {have.optics.grid.model_dump()} vs {encoder_config.optics.grid.model_dump()}")
    want = encoder_config.optics
    if have.optics.kind == want.kind and optics_shapes(have.optics) != optics_shapes(want):
        problems += [f"{name} {getattr(have.optics, name)} vs {getattr(want, name)}"
                     for name in type(want).model_fields
                     if name != "grid" and getattr(have.optics, name) != getattr(want, name)]
    if problems:
        raise CheckpointError(
            f"checkpoint {info.path} does not fit {what}: " + "; ".join(problems)
            + ". Pick a checkpoint or preset with the same optics and compression")


def _check_fluorescence_compatible(info: CheckpointInfo, have, want, what: str) -> None:
    kinds = [getattr(c, "kind", None) or c.optics.kind for c in (have, want)]
    if kinds[0] != kinds[1]:
        raise CheckpointError(f"checkpoint {info.path} is a {kinds[0]} microscope but {what} needs {kinds[1]}; "
                              "pick a checkpoint of the same modality")
    checks = {"patterns T": (have.patterns.n_patterns, want.patterns.n_patterns),
              "period_bins": (have.patterns.period_bins, want.patterns.period_bins),
              "bin_px": (have.detector.bin_px, want.detector.bin_px),
              "pixel_size_um": (have.pixel_size_um, want.pixel_size_um),
              "parametrisation": (have.patterns.parametrisation, want.patterns.parametrisation)}
    problems = [f"{name} {a} vs {b}" for name, (a, b) in checks.items() if a != b]
    if problems:
        raise CheckpointError(f"checkpoint {info.path} does not fit {what}: " + "; ".join(problems)
                              + ". Pick a checkpoint or preset with the same patterns, bin and pixel size")


# ---- training state: optimiser moments and progress ------------------------------------------------

def save_train_state(path, optimizers: dict[str, torch.optim.Optimizer], progress: dict,
                     modules: dict[str, torch.nn.Module] | None = None) -> Path:
    """Optimiser states, auxiliary modules (e.g. a discriminator) and progress (JSON), atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in (modules or {}).items():
        for key, value in module.state_dict().items():
            tensors[f"module:{name}/{key}"] = value
    groups: dict[str, Any] = {}
    for name, opt in optimizers.items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for idx, slots in state["state"].items():
            for key, value in slots.items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"{name}/{idx}/{key}"] = tensor
    if not tensors:
        tensors["_empty"] = torch.zeros(1)
    metadata = {"format": TRAIN_STATE_FORMAT, "format_version": FORMAT_VERSION,
                "param_groups": json.dumps(groups), "progress": json.dumps(progress, default=str)}
    return save_safetensors(path, tensors, metadata)


def load_train_state(path, optimizers: dict[str, torch.optim.Optimizer] | None = None,
                     modules: dict[str, torch.nn.Module] | None = None) -> dict:
    """Restore optimiser states and modules in place (if given) and return the progress dict."""
    from safetensors.torch import load_file

    meta = _metadata(read_header(path), TRAIN_STATE_FORMAT)
    progress = json.loads(meta["progress"])
    tensors = load_file(str(path), device="cpu") if (optimizers or modules) else {}
    for name, module in (modules or {}).items():
        prefix = f"module:{name}/"
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{path} has no saved state for {name!r}")
        module.load_state_dict(state)
    if optimizers:
        groups = json.loads(meta["param_groups"])
        for name, opt in optimizers.items():
            if name not in groups:
                raise CheckpointError(f"{path} has no optimiser state for {name!r}")
            state: dict[int, dict] = {}
            prefix = f"{name}/"
            for key, value in tensors.items():
                if key.startswith(prefix) and not key.startswith("module:"):
                    _, idx, slot = key.split("/", 2)
                    state.setdefault(int(idx), {})[slot] = value
            opt.load_state_dict({"state": state, "param_groups": groups[name]})
    return progress
