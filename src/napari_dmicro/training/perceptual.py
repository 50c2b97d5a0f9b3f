"""Perceptual loss: weighted L1 distances between VGG19 feature maps of prediction and target.

What the paper's code does (stage 2, SwinIR/Real-ESRGAN practice):

* Perceptual: ImageNet VGG19 ``features`` outputs at indices 2, 7, 16, 25, 34 (conv1_2, conv2_2,
  conv3_4, conv4_4, conv5_4, taken *before* their ReLU), layer weights 0.1, 0.1, 1, 1, 1, mean L1
  distance per layer, ImageNet mean/std normalisation of the input; the 1-channel phase map φ/2π
  is broadcast to the three colour channels by that normalisation.

ImageNet weights and the substitute
-----------------------------------
torchvision is not available here and nothing may be downloaded at run time, so the ImageNet VGG19
weights must be supplied by the user as a **.safetensors** file (:func:`~.vgg_weights.load_vgg19_weights`; pickle
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

Cost on a CPU: see docs/training.md (stage-2 losses); there a perceptual weight of 0 is the
practical choice for anything but short runs, or a cheaper ``layer_ids`` subset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..io.safetensors_header import file_sha256
from .vgg19 import IMAGENET_MEAN, IMAGENET_STD, VGG19Features
from .vgg_weights import load_vgg19_weights

__all__ = ["PerceptualLoss"]


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
            self.source = f"imagenet-vgg19 ({weights_path.name}, sha256 {file_sha256(weights_path)[:12]})"
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
        for w, fp, ft in zip(self.layer_weights, pred_f, target_f, strict=True):
            if w != 0.0:
                loss = loss + w * F.l1_loss(fp, ft)
        return loss
