"""Checks that make an untrusted checkpoint cheap to refuse, before a real model is built or a tensor
byte is read: the size of the model its configuration describes, and the shape of every tensor its
header declares.

The decoder's configuration bounds itself (field limits and an arithmetic parameter count, see
:mod:`napari_dmicro.decoders.limits`), so the meta-device skeleton built here is small and quick; its
parameters and buffers (the optics' propagation kernels too) are then bounded in bytes. A file within
the limits whose tensors do not have the shapes its configuration implies is refused, so loading can
never allocate more than the configuration allows.
"""
from __future__ import annotations

import torch

from .safetensors_header import SafetensorsHeader

#: Largest model a checkpoint may describe: parameters and buffers (e.g. propagation kernels) together.
#: A 4096² amplitude-and-phase Fourier filter takes 200 MB, the shipped models less than 60 MB.
MAX_MODEL_BYTES = 512 * 2**20
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


def model_skeleton(config) -> torch.nn.Module:
    """``Microscope(config)`` on the meta device: every shape, no memory (the decoder's own limits bound
    how many modules this creates)."""
    from ..system import Microscope

    with torch.device("meta"):
        return Microscope(config, init="all_pass")


def optics_shapes(optics_config) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor the optics ``optics_config`` describes hold (meta device, no memory)."""
    from ..optics.encoder import build_optics

    with torch.device("meta"):
        optics = build_optics(optics_config, init="all_pass")
    return {k: tuple(v.shape) for k, v in optics.state_dict().items()}


def check_model_size(skeleton: torch.nn.Module, path, error: type[Exception]) -> None:
    """Refuse a model whose parameters and buffers would take more than :data:`MAX_MODEL_BYTES`."""
    tensors = list(skeleton.parameters()) + list(skeleton.buffers())
    size = sum(t.numel() * t.element_size() for t in tensors)
    if size > MAX_MODEL_BYTES:
        raise error(f"{path}: its configuration describes a model of {size / 2**20:,.0f} MB (parameters and "
                    f"buffers), more than the limit of {MAX_MODEL_BYTES // 2**20} MB; the file was not loaded "
                    "(crafted or damaged?)")


def check_tensor_shapes(header: SafetensorsHeader, skeleton: torch.nn.Module, error: type[Exception],
                        optional: tuple[str, ...] = ()) -> None:
    """Refuse a header whose tensor names, shapes or dtypes differ from the model's (``optional`` keys
    may be absent)."""
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = header.shapes
    missing = [k for k in want if k not in have and k not in optional]
    unexpected = [k for k in have if k not in want]
    wrong = [f"{k} {list(have[k])} (expected {list(want[k])})" for k in want if k in have and have[k] != want[k]]
    not_float = [f"{k} {header.dtypes[k]}" for k in have if k in want and header.dtypes[k] not in _FLOAT_DTYPES]
    problems = []
    if missing:
        problems.append(f"missing {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:5]}")
    if wrong:
        problems.append("wrong shapes " + "; ".join(wrong[:5]))
    if not_float:
        problems.append("not floating point " + "; ".join(not_float[:5]))
    if problems:
        raise error(f"{header.path} does not match its own configuration ({', '.join(problems)}); the file is "
                    "damaged or was edited, and was not loaded")
