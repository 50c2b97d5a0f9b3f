"""Stage-2 training losses: pixel L1 + VGG19 perceptual + U-Net/spectral-norm GAN.

What the paper's code does (stage 2, decoder only, SwinIR/Real-ESRGAN practice)
-------------------------------------------------------------------------------
generator loss = 1 * L1(pred, target) + 1 * perceptual(pred, target) + 0.1 * GAN(D(pred) -> "real")

* Perceptual: ImageNet VGG19 ``features`` outputs at indices 2, 7, 16, 25, 34 (conv1_2, conv2_2,
  conv3_4, conv4_4, conv5_4, taken *before* their ReLU), layer weights 0.1, 0.1, 1, 1, 1, mean L1
  distance per layer, ImageNet mean/std normalisation of the input; the 1-channel phase map φ/2π
  is broadcast to the three colour channels by that normalisation.
* Adversarial: a U-Net discriminator with spectral normalisation (Real-ESRGAN layout) that returns a
  realness logit per pixel, binary cross-entropy on the logits (the generator wants D(fake) = real),
  Adam 1e-4 for both networks. The discriminator loss is BCE(D(real), 1) + BCE(D(fake), 0) (a sum,
  as in the authors' training loop that back-propagates the two halves one after the other).

ImageNet weights and the substitute
-----------------------------------
torchvision is not available here and nothing may be downloaded at run time, so the ImageNet VGG19
weights must be supplied by the user as a **.safetensors** file (:func:`load_vgg19_weights`; pickle
checkpoints such as ``vgg19-dcbb9e9d.pth`` are refused, never unpickled; convert them on a machine
with torchvision, see :func:`load_vgg19_weights`). With such a file, :class:`PerceptualLoss`
reproduces the paper's loss and ``.source`` reads ``"imagenet-vgg19 (<file>, sha256 <12 hex>)"``.

Without a file, :class:`PerceptualLoss` uses a documented **substitute** and says so in ``.source``
(the string goes into model cards): the *same* VGG19 architecture, layer indices, layer weights and
L1 distance, but with fixed, seeded random weights that are standardised per channel:

1. every 3x3 conv gets i.i.d. Gaussian weights from a private ``torch.Generator`` seeded with
   ``substitute_seed`` (the global RNG is untouched), generated layer by layer so that a truncated
   network is an exact prefix of the full one;
2. the layers are then calibrated one after the other on a fixed synthetic batch (2 images of
   128², Gaussian random fields with a 1/f amplitude spectrum, i.e. the 1/f² power spectrum of
   natural images, min-max scaled to [0, 1], seeded too): each output channel's weight is divided by
   its standard deviation and its bias set to minus its (rescaled) mean. This is LSUV-style
   data-driven initialisation (Mishkin & Matas, ICLR 2016) done per channel, i.e. a BatchNorm folded
   into each conv with frozen calibration statistics.

Why this substitute:

* Random convolutional features are known to carry useful image structure: He, Wang & Hopcroft
  (NeurIPS 2016) reconstruct images and transfer style with a random-weight VGG, and Ustyuzhaninov
  et al. (ICLR 2017) synthesise natural textures from random multi-scale filters. A random VGG19
  therefore keeps what the perceptual term is for here: an L1 penalty on multi-scale, non-linear,
  spatially pooled local statistics (edges, texture, blob shape at receptive fields up to ~250 px)
  rather than only on pixel values.
* Keeping the exact VGG19 layout keeps the receptive fields, strides (1, 2, 4, 8, 16) and the
  paper's layer weights meaningful, and a real-weights file drops in without any other change.
* Without calibration, random ReLU nets either explode or vanish with depth, and positive inputs
  (φ/2π ≥ 0) push every pre-activation to one sign so the ReLUs stop acting (the net degenerates to
  a linear filter, i.e. a blurred pixel loss). Per-channel centring keeps about half of every
  channel active and unit variance makes every layer and channel contribute on the same scale, so
  the 0.1/0.1/1/1/1 weights are not dominated by accident of initialisation. The calibration images
  are synthetic with a natural-image spectrum, so no data set is touched and the result is
  bit-reproducible from the seed (``.source`` also carries a SHA-256 fingerprint of the weights).

Limits (also why ``.source`` must be recorded): random features are markedly weaker than trained
ones at predicting human similarity judgements (Zhang et al., LPIPS, CVPR 2018), the magnitude of
the substitute loss is not that of the ImageNet one (so ``perceptual_weight = 1`` does not weigh the
term exactly as in the paper), and results trained with it are **not** the paper's configuration.

Cost (this project's CPU machine, ``torch.set_num_threads(2)``, torch 2.13 CPU, float32, batch 4 of
256² images; loss forward for pred and target + backward to pred; median of 3 runs, each config in a
fresh process). The two cores were shared with other jobs while measuring, so the first number is
process CPU time / 2 (what two free cores give) and the one in brackets the wall time observed:

* full perceptual loss (5 layers, up to conv5_4):          ~3.8 s  (7.6 s wall)
* ``layer_ids=(2, 7, 16)`` (up to conv3_4):                 ~2.3 s  (4.7 s wall)
* ``layer_ids=(2, 7)`` (up to conv2_2):                     ~1.5 s  (2.9 s wall)
* generator adversarial term, U-Net D with num_feat 64:    ~3.3 s  (6.7 s wall)
* discriminator step loss (real + fake, weight gradients): ~9.7 s  (27 s wall)
* ``Stage2Loss()`` defaults (L1 + full perceptual + GAN):   ~6.8 s  (13.7 s wall)
* building the substitute (random init + calibration):     ~0.5 s once (up to 2 s wall)

So one stage-2 iteration (generator loss + discriminator step, decoder excluded) costs ~17 s of two
cores at batch 4, 256²: stage 2 as in the paper is a GPU job.

VGG19's cost is concentrated in the high-resolution early blocks, so truncating buys less than the
layer count suggests; to use a subset pass ``layer_ids`` (and matching ``layer_weights``) to
:class:`PerceptualLoss` or a prebuilt loss to :class:`Stage2Loss` via ``perceptual=``. On a GPU the
full loss is cheap; on a CPU a perceptual weight of 0 (pixel L1 + GAN, or pixel L1 only) is the
practical choice for anything but short runs.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_CONV_INDICES",
    "VGG19_LAYER_NAMES",
    "VGGWeightsError",
    "VGG19Features",
    "load_vgg19_weights",
    "PerceptualLoss",
    "UNetDiscriminatorSN",
    "GANLoss",
    "generator_adversarial_loss",
    "discriminator_loss",
    "Stage2Loss",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 ("E") `features`: numbers are 3x3 convs (each followed by a ReLU), "M" a 2x2 max pool.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
_LAST_INDEX = 34  # conv5_4; everything after it (ReLU, pool, classifier) is never needed


def _vgg19_layout() -> list[tuple[str, int, int]]:
    """[(kind, in_ch, out_ch)] for features.0 .. features.36 in torchvision order."""
    layout, c_in = [], 3
    for item in _VGG19_CFG:
        if item == "M":
            layout.append(("pool", c_in, c_in))
        else:
            layout.append(("conv", c_in, int(item)))
            layout.append(("relu", int(item), int(item)))
            c_in = int(item)
    return layout


_LAYOUT = _vgg19_layout()[: _LAST_INDEX + 1]
VGG19_CONV_INDICES: tuple[int, ...] = tuple(i for i, (kind, _, _) in enumerate(_LAYOUT) if kind == "conv")


def _layer_names() -> dict[int, str]:
    names, block, conv_in_block = {}, 1, 0
    for i, (kind, _, _) in enumerate(_LAYOUT):
        if kind == "conv":
            conv_in_block += 1
            names[i] = f"conv{block}_{conv_in_block}"
        elif kind == "relu":
            names[i] = f"relu{block}_{conv_in_block}"
        else:
            names[i] = f"pool{block}"
            block, conv_in_block = block + 1, 0
    return names


VGG19_LAYER_NAMES: dict[int, str] = _layer_names()
_EXPECTED_SHAPES: dict[str, tuple[int, ...]] = {}
for _i, (_kind, _cin, _cout) in enumerate(_LAYOUT):
    if _kind == "conv":
        _EXPECTED_SHAPES[f"features.{_i}.weight"] = (_cout, _cin, 3, 3)
        _EXPECTED_SHAPES[f"features.{_i}.bias"] = (_cout,)


# ----------------------------------------------------------------------------------------------
# VGG19 feature extractor
# ----------------------------------------------------------------------------------------------


class VGG19Features(nn.Module):
    """torchvision-compatible VGG19 `features` layout (so a user's converted state dict loads with keys
    ``features.N.weight/bias``), truncated after index 34 (conv5_4) - or earlier, after
    ``max(layer_ids)``, when only shallower layers are requested (cheaper).

    ``forward(x)`` takes (B, 3, H, W) and returns the feature maps at ``layer_ids`` in the order given.
    At conv indices these are pre-ReLU (the ReLUs are not in-place, so returned maps are never
    overwritten). Channels and strides: conv1_2 64 @1, conv2_2 128 @2, conv3_4 256 @4,
    conv4_4 512 @8, conv5_4 512 @16 (pools floor odd sizes, as torchvision).
    """

    def __init__(self, layer_ids: Sequence[int] = (2, 7, 16, 25, 34)):
        super().__init__()
        ids = tuple(int(i) for i in layer_ids)
        if not ids:
            raise ValueError("layer_ids must name at least one layer")
        bad = [i for i in ids if not 0 <= i <= _LAST_INDEX]
        if bad:
            raise ValueError(f"layer_ids must lie in 0..{_LAST_INDEX} (conv5_4); got {bad}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"layer_ids contain duplicates: {ids}")
        self.layer_ids = ids
        self.last_index = max(ids)
        modules: list[nn.Module] = []
        for kind, c_in, c_out in _LAYOUT[: self.last_index + 1]:
            if kind == "conv":
                modules.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            elif kind == "relu":
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.layer_names = tuple(VGG19_LAYER_NAMES[i] for i in ids)
        self.out_channels = tuple(_LAYOUT[i][2] for i in ids)
        self.strides = tuple(2 ** sum(1 for k, _, _ in _LAYOUT[:i] if k == "pool") for i in ids)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19Features expects (B, 3, H, W); got {tuple(x.shape)}")
        wanted = {i: k for k, i in enumerate(self.layer_ids)}
        out: list[Tensor | None] = [None] * len(self.layer_ids)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Weights file (safetensors only, never pickle)
# ----------------------------------------------------------------------------------------------


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
_PICKLE_SUFFIXES = {".pth", ".pt", ".pkl", ".pickle", ".ckpt"}
_KEY_RE = re.compile(r"^(?:module\.)?(?:features\.)?(\d+)\.(weight|bias)$")


def _sniff(path: Path) -> None:
    """Refuse anything that is not a safetensors file, from its name and first bytes only (nothing is
    deserialised here; the safetensors parser itself never executes code)."""
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise VGGWeightsError(
            f"{path.name}: refusing to read a '{path.suffix}' file (PyTorch/pickle checkpoint); only "
            f".safetensors is accepted.\n{_CONVERT_HINT}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len + 8 <= size and head[8:9] == b"{":
            return  # a safetensors header: 8-byte little-endian length, then a JSON object
    if head[:4] == b"PK\x03\x04":
        raise VGGWeightsError(
            f"{path.name}: this is a zip archive (torch.save format, pickle inside), not safetensors; "
            f"it was not loaded.\n{_CONVERT_HINT}")
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]", b"c"):
        raise VGGWeightsError(
            f"{path.name}: this looks like a pickle stream, not safetensors; it was not loaded.\n{_CONVERT_HINT}")
    raise VGGWeightsError(f"{path.name}: not a safetensors file (no safetensors header).\n{_CONVERT_HINT}")


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
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {path}")
    _sniff(path)
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise VGGWeightsError(f"{path.name}: cannot be read as safetensors ({exc}). {_CONVERT_HINT}") from exc
    with handle as f:
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Perceptual loss
# ----------------------------------------------------------------------------------------------


def _calibration_batch(seed: int, n: int = 2, size: int = 128) -> Tensor:
    """Seeded Gaussian random fields with a 1/f amplitude spectrum, each min-max scaled to [0, 1]."""
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(n, 1, size, size, generator=gen, dtype=torch.float64)
    fy = torch.fft.fftfreq(size, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(size, dtype=torch.float64)[None, :]
    radius = torch.sqrt(fx ** 2 + fy ** 2)
    amplitude = 1.0 / radius.clamp_min(1.0 / size)
    amplitude[0, 0] = 0.0
    field = torch.fft.ifft2(torch.fft.fft2(noise) * amplitude).real
    lo = field.amin(dim=(-2, -1), keepdim=True)
    hi = field.amax(dim=(-2, -1), keepdim=True)
    return ((field - lo) / (hi - lo)).float()


class PerceptualLoss(nn.Module):
    """Weighted sum over layers of the mean L1 distance between VGG19 feature maps of pred and target.

    ``pred``/``target``: (B, 1, H, W) phase maps φ/2π (or (B, 3, H, W)); they are multiplied by
    ``input_scale`` (VGG19 expects [0, 1] images and φ/2π already is one, hence 1.0), broadcast to 3
    channels and, with ImageNet weights, normalised by the ImageNet mean/std. Target features are
    computed without gradient; gradients flow to ``pred`` only - the network is frozen
    (``requires_grad=False``) and stays in eval mode even if ``.train()`` is called.

    ``weights_path=None`` selects the seeded random substitute described in the module docstring;
    ``.source`` always says which network is in use. ``layer_ids`` (with matching ``layer_weights``)
    selects a cheaper subset; the network is truncated after the deepest requested layer.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        layer_weights: Sequence[float] = (0.1, 0.1, 1.0, 1.0, 1.0),
        substitute_seed: int = 0,
        input_scale: float = 1.0,
        layer_ids: Sequence[int] = (2, 7, 16, 25, 34),
    ):
        super().__init__()
        layer_ids = tuple(int(i) for i in layer_ids)
        layer_weights = tuple(float(w) for w in layer_weights)
        if len(layer_ids) != len(layer_weights):
            raise ValueError(f"{len(layer_ids)} layer_ids but {len(layer_weights)} layer_weights")
        self.layer_weights = layer_weights
        self.input_scale = float(input_scale)
        self.vgg = VGG19Features(layer_ids)
        self.uses_imagenet_weights = weights_path is not None
        self.substitute_seed: int | None = None
        if weights_path is not None:
            weights_path = Path(weights_path)
            state = load_vgg19_weights(weights_path)
            own = self.vgg.state_dict()
            self.vgg.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
            self.source = f"imagenet-vgg19 ({weights_path.name}, sha256 {_sha256(weights_path)[:12]})"
        else:
            self.substitute_seed = int(substitute_seed)
            fingerprint = self._init_substitute(self.substitute_seed)
            self.source = (
                f"substitute: seeded random VGG19 (seed {self.substitute_seed}, per-channel standardised on "
                f"synthetic 1/f calibration images; NOT ImageNet weights; weights sha256 {fingerprint[:12]})")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.vgg.eval()

    @torch.no_grad()
    def _init_substitute(self, seed: int) -> str:
        gen = torch.Generator().manual_seed(seed)
        convs = [m for m in self.vgg.features if isinstance(m, nn.Conv2d)]
        for conv in convs:  # draw all weights first so a truncated net is a prefix of the full one
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
            conv.bias.zero_()
        x = self._prepare(_calibration_batch(seed + 1_000_003), imagenet=False)
        for layer in self.vgg.features:
            if isinstance(layer, nn.Conv2d):
                y = layer(x)
                mean = y.mean(dim=(0, 2, 3))
                std = y.std(dim=(0, 2, 3)).clamp_min(1e-8)
                layer.weight.div_(std.view(-1, 1, 1, 1))
                layer.bias.copy_(-mean / std)
                x = (y - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)  # = layer(x) after rescaling
            else:
                x = layer(x)
        digest = hashlib.sha256()
        for conv in convs:
            digest.update(conv.weight.detach().contiguous().numpy().tobytes())
            digest.update(conv.bias.detach().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _prepare(self, x: Tensor, imagenet: bool) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1, H, W) or (B, 3, H, W); got {tuple(x.shape)}")
        x = x * self.input_scale
        if imagenet:
            return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # broadcasts 1 -> 3 channels
        return x.expand(-1, 3, -1, -1)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # frozen feature network: always eval
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        dtype = self.vgg.features[0].weight.dtype
        pred_f = self.vgg(self._prepare(pred.to(dtype), self.uses_imagenet_weights))
        with torch.no_grad():
            target_f = self.vgg(self._prepare(target.detach().to(dtype), self.uses_imagenet_weights))
        loss = pred.new_zeros((), dtype=dtype)
        for w, fp, ft in zip(self.layer_weights, pred_f, target_f):
            if w != 0.0:
                loss = loss + w * F.l1_loss(fp, ft)
        return loss


# ----------------------------------------------------------------------------------------------
# Discriminator and GAN losses
# ----------------------------------------------------------------------------------------------


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral norm (Real-ESRGAN style): per-pixel realness logits,
    (B, in_chans, H, W) -> (B, 1, H, W).

    Encoder: 3x3 conv to ``num_feat``, then three 4x4 stride-2 convs doubling the width (x2, x4, x8).
    Decoder: three stages of bilinear x2 upsampling + 3x3 conv halving the width, each added to the
    encoder map of the same size when ``skip_connection``; then two 3x3 convs and a 3x3 conv to one
    logit per pixel. LeakyReLU(0.2) everywhere. The eight inner convs are spectrally normalised
    (``torch.nn.utils.parametrizations.spectral_norm``); the first and last conv are plain, as in
    Real-ESRGAN. Conv weights are orthogonally initialised with gain 0.2 (the authors' ``init_gain``;
    spectral norm removes the gain from the normalised convs). Upsampling goes to the skip's exact
    size, so any H, W >= 8 works (multiples of 8 avoid border resampling).
    """

    def __init__(self, in_chans: int = 1, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        f = int(num_feat)
        self.skip_connection = bool(skip_connection)
        self.head = nn.Conv2d(in_chans, f, 3, 1, 1)
        self.down1 = nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False)
        self.down2 = nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False)
        self.down3 = nn.Conv2d(4 * f, 8 * f, 4, 2, 1, bias=False)
        self.up1 = nn.Conv2d(8 * f, 4 * f, 3, 1, 1, bias=False)
        self.up2 = nn.Conv2d(4 * f, 2 * f, 3, 1, 1, bias=False)
        self.up3 = nn.Conv2d(2 * f, f, 3, 1, 1, bias=False)
        self.refine1 = nn.Conv2d(f, f, 3, 1, 1, bias=False)
        self.refine2 = nn.Conv2d(f, f, 3, 1, 1, bias=False)
        self.tail = nn.Conv2d(f, 1, 3, 1, 1)
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                nn.init.orthogonal_(conv.weight, gain=0.2)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
        for name in ("down1", "down2", "down3", "up1", "up2", "up3", "refine1", "refine2"):
            setattr(self, name, sn(getattr(self, name)))

    def forward(self, x: Tensor) -> Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        e0 = act(self.head(x))
        e1 = act(self.down1(e0))
        e2 = act(self.down2(e1))
        e3 = act(self.down3(e2))

        def up(t: Tensor, conv: nn.Module, skip: Tensor) -> Tensor:
            t = F.interpolate(t, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            t = act(conv(t))
            return t + skip if self.skip_connection else t

        d = up(e3, self.up1, e2)
        d = up(d, self.up2, e1)
        d = up(d, self.up3, e0)
        d = act(self.refine1(d))
        d = act(self.refine2(d))
        return self.tail(d)


class GANLoss(nn.Module):
    """Vanilla GAN loss: binary cross-entropy with logits, mean over all logits.

    ``forward(logits, target_is_real, for_discriminator=False)``. ``label_smoothing`` (off by default)
    is one-sided: it lowers the *real* target to ``1 - label_smoothing`` only when
    ``for_discriminator=True``; the generator always aims at 1.
    """

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5); got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, target_is_real: bool, for_discriminator: bool = False) -> Tensor:
        if target_is_real:
            value = 1.0 - (self.label_smoothing if for_discriminator else 0.0)
        else:
            value = 0.0
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))


_DEFAULT_GAN = GANLoss()


def generator_adversarial_loss(discriminator: nn.Module, fake: Tensor, gan_loss: GANLoss | None = None) -> Tensor:
    """BCE(D(fake), real): the generator wants its output called real. Gradients go to ``fake`` only:
    the discriminator's parameters are excluded from the graph (their ``requires_grad`` is switched
    off for this forward and restored), so a generator step never leaves gradients on D."""
    gan_loss = _DEFAULT_GAN if gan_loss is None else gan_loss
    params = [p for p in discriminator.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        logits = discriminator(fake)
    finally:
        for p in params:
            p.requires_grad_(True)
    return gan_loss(logits, True)


def discriminator_loss(discriminator: nn.Module, real: Tensor, fake: Tensor, gan_loss: GANLoss | None = None) -> Tensor:
    """BCE(D(real), real) + BCE(D(fake), fake); ``fake`` is detached inside (no gradient to the generator)."""
    gan_loss = _DEFAULT_GAN if gan_loss is None else gan_loss
    loss_real = gan_loss(discriminator(real), True, for_discriminator=True)
    loss_fake = gan_loss(discriminator(fake.detach()), False, for_discriminator=True)
    return loss_real + loss_fake


# ----------------------------------------------------------------------------------------------
# Stage 2 generator loss
# ----------------------------------------------------------------------------------------------


class Stage2Loss(nn.Module):
    """pixel L1 + w_p·perceptual + w_g·adversarial; weights default (1.0, 1.0, 0.1) as in the paper;
    any weight 0 disables (and skips computing) that term.

    * ``perceptual_weight == 0``: no VGG is built at all (``self.perceptual is None``).
    * ``adversarial_weight > 0`` and no ``discriminator``: a default ``UNetDiscriminatorSN(1, 64)`` is
      built. The discriminator is a submodule (``self.discriminator``), so it moves with ``.to()``;
      give it its own optimiser (Adam 1e-4 in the paper) and train it with
      :meth:`discriminator_step_loss` (or :func:`discriminator_loss`).
    * ``perceptual=`` accepts a prebuilt :class:`PerceptualLoss` (e.g. a layer subset);
      ``vgg_weights_path`` is then ignored.

    ``forward(pred, target)`` returns ``(total, terms)``; ``terms`` holds floats for logging: the
    *unweighted* value of every enabled term under ``"pixel"``, ``"perceptual"``, ``"adversarial"``,
    and ``"total"`` (weighted sum). Disabled terms are absent. ``perceptual_source`` is the string
    for model cards.
    """

    def __init__(
        self,
        perceptual_weight: float = 1.0,
        adversarial_weight: float = 0.1,
        pixel_weight: float = 1.0,
        vgg_weights_path: str | Path | None = None,
        discriminator: nn.Module | None = None,
        *,
        perceptual: PerceptualLoss | None = None,
        gan_loss: GANLoss | None = None,
    ):
        super().__init__()
        weights = {"pixel": pixel_weight, "perceptual": perceptual_weight, "adversarial": adversarial_weight}
        for name, w in weights.items():
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"{name}_weight must be a finite number >= 0; got {w}")
        self.pixel_weight = float(pixel_weight)
        self.perceptual_weight = float(perceptual_weight)
        self.adversarial_weight = float(adversarial_weight)
        if self.perceptual_weight > 0:
            self.perceptual = perceptual if perceptual is not None else PerceptualLoss(vgg_weights_path)
        else:
            self.perceptual = None
        if discriminator is None and self.adversarial_weight > 0:
            discriminator = UNetDiscriminatorSN(in_chans=1, num_feat=64)
        self.discriminator = discriminator
        self.gan_loss = gan_loss if gan_loss is not None else GANLoss()

    @property
    def perceptual_source(self) -> str:
        return self.perceptual.source if self.perceptual is not None else "disabled"

    def forward(self, pred: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        total = pred.new_zeros(())
        terms: dict[str, float] = {}
        if self.pixel_weight > 0:
            l_pix = F.l1_loss(pred, target)
            total = total + self.pixel_weight * l_pix
            terms["pixel"] = float(l_pix.detach())
        if self.perceptual is not None and self.perceptual_weight > 0:
            l_per = self.perceptual(pred, target)
            total = total + self.perceptual_weight * l_per
            terms["perceptual"] = float(l_per.detach())
        if self.discriminator is not None and self.adversarial_weight > 0:
            l_adv = generator_adversarial_loss(self.discriminator, pred, self.gan_loss)
            total = total + self.adversarial_weight * l_adv
            terms["adversarial"] = float(l_adv.detach())
        terms["total"] = float(total.detach())
        return total, terms

    def discriminator_step_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """Discriminator loss for the D update (``fake`` detached inside)."""
        if self.discriminator is None:
            raise RuntimeError("Stage2Loss has no discriminator (adversarial_weight is 0 and none was given)")
        return discriminator_loss(self.discriminator, real, fake, self.gan_loss)
