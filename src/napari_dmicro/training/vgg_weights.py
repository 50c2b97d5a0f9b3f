"""Reading a user's VGG19 weights file: safetensors only, never a pickle (see :func:`load_vgg19_weights`)."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from ..io.safetensors_header import open_safetensors
from .vgg19 import _EXPECTED_SHAPES, _LAST_INDEX, VGG19_CONV_INDICES

__all__ = ["VGGWeightsError", "load_vgg19_weights"]


class VGGWeightsError(ValueError):
    """A VGG19 weights file is missing, not safetensors, or does not hold VGG19 `features` weights."""


_CONVERT_HINT = (
    "Convert it once on a machine with torchvision (pickle files can execute code, so this package "
    "never unpickles them):\n"
    "    import torchvision, safetensors.torch\n"
    "    sd = torchvision.models.vgg19(weights='IMAGENET1K_V1').features.state_dict()\n"
    "    # or: sd = torch.load('vgg19-dcbb9e9d.pth', weights_only=True)  # a full state dict is fine\n"
    "    safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, 'vgg19.safetensors')\n"
    "and pass the .safetensors file instead."
)
_KEY_RE = re.compile(r"^(?:module\.)?(?:features\.)?(\d+)\.(weight|bias)$")


def load_vgg19_weights(path: str | Path) -> dict[str, Tensor]:
    """Read a user-supplied .safetensors file holding torchvision VGG19 weights.

    Accepted keys: ``features.N.weight`` / ``features.N.bias`` (torchvision ``vgg19().state_dict()``,
    ``classifier.*`` entries are ignored) or ``N.weight`` / ``N.bias`` (``vgg19().features.state_dict()``);
    an optional ``module.`` prefix is tolerated. All 16 convs up to index 34 (conv5_4) must be present
    with torchvision's shapes; tensors are returned as float32 under ``features.N.*`` keys, ready for
    ``VGG19Features.load_state_dict``. Only the needed tensors are read (the classifier is skipped).

    The file is **never unpickled**: ``.pth``/``.pt``/pickle/zip checkpoints are refused (by name and by
    content) with instructions to convert them on a machine with torchvision: load the state dict and
    save it with ``safetensors.torch.save_file``.
    """
    path = Path(path)
    with open_safetensors(path, error=VGGWeightsError, hint=_CONVERT_HINT) as f:
        mapping: dict[str, str] = {}
        unknown: list[str] = []
        for key in f.keys():
            if key.startswith(("classifier.", "module.classifier.")):
                continue
            m = _KEY_RE.match(key)
            if m is None:
                unknown.append(key)
                continue
            canonical = f"features.{int(m.group(1))}.{m.group(2)}"
            if canonical in mapping:
                raise VGGWeightsError(f"{path.name}: keys {mapping[canonical]!r} and {key!r} both map to {canonical!r}")
            mapping[canonical] = key
        if unknown:
            hint = " (BatchNorm statistics: this looks like vgg19_bn, which is not supported)" if any(
                "running_" in k for k in unknown) else ""
            raise VGGWeightsError(
                f"{path.name}: unexpected keys for torchvision VGG19 features{hint}: {sorted(unknown)[:8]}"
                f"{' ...' if len(unknown) > 8 else ''}")
        missing = [k for k in _EXPECTED_SHAPES if k not in mapping]
        if missing:
            raise VGGWeightsError(
                f"{path.name}: missing {len(missing)} of {len(_EXPECTED_SHAPES)} VGG19 tensors, e.g. {missing[:4]}; "
                "expected keys 'features.N.weight'/'features.N.bias' (or 'N.weight') for conv indices "
                f"{list(VGG19_CONV_INDICES)}")
        extra = sorted(k for k in mapping if k not in _EXPECTED_SHAPES)
        extra_beyond = [k for k in extra if int(k.split(".")[1]) <= _LAST_INDEX]
        if extra_beyond:
            raise VGGWeightsError(
                f"{path.name}: tensors at non-conv indices {extra_beyond[:4]}: not a VGG19 `features` layout")
        wrong = []
        for canonical, expected in _EXPECTED_SHAPES.items():
            shape = tuple(f.get_slice(mapping[canonical]).get_shape())
            if shape != expected:
                wrong.append(f"{canonical}: {shape} (expected {expected})")
        if wrong:
            raise VGGWeightsError(f"{path.name}: wrong tensor shapes for VGG19: " + "; ".join(wrong[:6]))
        out = {}
        for canonical in _EXPECTED_SHAPES:
            t = f.get_tensor(mapping[canonical])
            if not t.is_floating_point():
                raise VGGWeightsError(f"{path.name}: {canonical} has dtype {t.dtype}, expected floating point")
            t = t.to(torch.float32)
            if not torch.isfinite(t).all():
                raise VGGWeightsError(f"{path.name}: {canonical} contains NaN or Inf")
            out[canonical] = t
    return out
