"""Checks that make an untrusted checkpoint cheap to refuse, before a model is built or a tensor byte is
read: the size of the model its configuration describes, and the shape of every tensor its header
declares against the shapes that configuration implies.

The decoder's configuration bounds itself (field limits and a parameter count) and gives its tensor
shapes by arithmetic (:mod:`napari_dmicro.decoders.limits`); the optics' shapes and buffers come from
a skeleton on the meta device (a few modules, no memory). A file within the limits whose tensors do
not have the implied shapes is refused, so loading never allocates more than the configuration allows.
"""

from __future__ import annotations

import math

import torch

from ..decoders.limits import decoder_tensor_shapes
from .safetensors_header import SafetensorsHeader

#: Largest model a checkpoint may describe: parameters and buffers (e.g. propagation kernels) together.
#: A 4096² amplitude-and-phase Fourier filter takes 200 MB, the shipped models less than 60 MB.
MAX_MODEL_BYTES = 512 * 2**20
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


def _optics_skeleton(optics_config) -> torch.nn.Module:
    from ..optics.encoder import build_optics

    with torch.device("meta"):
        return build_optics(optics_config, init="all_pass")


def optics_shapes(optics_config) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor the optics ``optics_config`` describes hold (meta device, no memory)."""
    return {k: tuple(v.shape) for k, v in _optics_skeleton(optics_config).state_dict().items()}


def _is_fluorescence(config) -> bool:
    return getattr(config, "modality", "qpm") == "fluorescence"


def _fluorescence_skeleton(encoder_config) -> torch.nn.Module:
    """The fluorescence encoder on the meta device (its PSF buffers are built from the configuration)."""
    from ..fluorescence import FluorescenceEncoder

    with torch.device("meta"):
        return FluorescenceEncoder(encoder_config)


def _encoder_skeleton(config) -> torch.nn.Module:
    if _is_fluorescence(config):
        return _fluorescence_skeleton(config.encoder)
    return _optics_skeleton(config.encoder.optics)


def expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor in the state dict of the model of ``config``, nothing allocated."""
    from ..system import Microscope

    if _is_fluorescence(config):
        encoder = {f"encoder.{k}": tuple(v.shape) for k, v in _fluorescence_skeleton(config.encoder)
                   .state_dict().items()}
    else:
        encoder = {f"encoder.optics.{k}": v for k, v in optics_shapes(config.encoder.optics).items()}
    return ({name: () for name in Microscope.OPTIONAL_BUFFERS}  # scalars: the decoder's input normalisation
            | encoder | {f"decoder.{k}": v for k, v in decoder_tensor_shapes(config.decoder).items()})


def check_model_size(config, path, error: type[Exception]) -> None:
    """Refuse a model whose parameters and buffers would take more than :data:`MAX_MODEL_BYTES`."""
    optics = _encoder_skeleton(config)
    size = sum(t.numel() * t.element_size() for t in [*optics.parameters(), *optics.buffers()])
    size += 4 * sum(math.prod(s) for s in decoder_tensor_shapes(config.decoder).values())  # float32
    if size > MAX_MODEL_BYTES:
        raise error(f"{path}: its configuration describes a model of {size / 2**20:,.0f} MB (parameters and "
                    f"buffers), more than the limit of {MAX_MODEL_BYTES // 2**20} MB; the file was not loaded "
                    "(crafted or damaged?)")


def check_tensor_shapes(header: SafetensorsHeader, config, error: type[Exception]) -> None:
    """Refuse a header whose tensor names, shapes or dtypes differ from what ``config`` implies (the
    microscope's scalar buffers may be absent: files written before they existed)."""
    from ..system import Microscope

    want = expected_shapes(config)
    optional = Microscope.OPTIONAL_BUFFERS
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
