"""Stage-2 generator loss: pixel L1 + VGG19 perceptual + U-Net/spectral-norm GAN, as in the paper:

generator loss = 1 * L1(pred, target) + 1 * perceptual(pred, target) + 0.1 * GAN(D(pred) -> "real")

The parts live in their own modules: :mod:`.perceptual` (with :mod:`.vgg19` and the weights file
reader :mod:`.vgg_weights`) and :mod:`.gan` (discriminator and GAN losses).

Segmentation (fluorescence, task-aware): :class:`SegmentationLoss` = Dice + BCE on the logits of the
segmentation head against :func:`segmentation_targets` of an instance label image (foreground, boundary).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gan import GANLoss, UNetDiscriminatorSN, discriminator_loss, generator_adversarial_loss
from .perceptual import PerceptualLoss

__all__ = ["Stage2Loss", "UNetDiscriminatorSN", "discriminator_loss", "SegmentationLoss", "soft_dice_loss",
           "segmentation_targets"]


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


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 − soft Dice of sigmoid(logits) and a {0, 1} target, per image and channel, averaged.

    ``eps`` (in pixels) keeps an empty target with an empty prediction at a loss of 0."""
    if logits.shape != target.shape or logits.ndim != 4:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must both be (B, C, H, W)")
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(2, 3))
    sums = prob.sum(dim=(2, 3)) + target.sum(dim=(2, 3))
    return (1 - (2 * inter + eps) / (sums + eps)).mean()


class SegmentationLoss(nn.Module):
    """dice_weight · soft Dice loss + bce_weight · binary cross-entropy (with logits), over every channel
    of (B, C, H, W) logits against {0, 1} targets (the segmentation head's foreground and boundary).
    ``forward`` returns ``(total, terms)`` with the unweighted ``"dice"``, ``"bce"`` and the ``"total"``."""

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0):
        super().__init__()
        for name, w in (("dice_weight", dice_weight), ("bce_weight", bce_weight)):
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"{name} must be a finite number >= 0; got {w}")
        if dice_weight == 0 and bce_weight == 0:
            raise ValueError("dice_weight and bce_weight are both 0: the loss would be constant")
        self.dice_weight, self.bce_weight = float(dice_weight), float(bce_weight)

    def forward(self, logits: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        l_dice = soft_dice_loss(logits, target)
        l_bce = F.binary_cross_entropy_with_logits(logits, target)
        total = self.dice_weight * l_dice + self.bce_weight * l_bce
        return total, {"dice": float(l_dice.detach()), "bce": float(l_bce.detach()), "total": float(total.detach())}


def segmentation_targets(labels) -> Tensor:
    """Instance labels (H, W) or (B, H, W) → float32 targets (B, 2, H, W): foreground (label > 0) and
    boundary (pixels of an instance that touch another label or the background: the inner boundary, so
    touching nuclei are separated by two boundary pixels)."""
    from skimage.segmentation import find_boundaries

    arr = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.dtype.kind not in "iu":
        raise ValueError(f"expected integer instance labels (H, W) or (B, H, W); got {arr.dtype} {arr.shape}")
    fg = arr > 0
    boundary = np.stack([find_boundaries(a, mode="inner") for a in arr]) & fg
    return torch.from_numpy(np.stack([fg, boundary], axis=1).astype(np.float32))
