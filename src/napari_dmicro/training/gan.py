"""Adversarial part of the stage-2 loss: a U-Net discriminator with spectral norm and the GAN losses.

* Adversarial: a U-Net discriminator with spectral normalisation (Real-ESRGAN layout) that returns a
  realness logit per pixel, binary cross-entropy on the logits (the generator wants D(fake) = real),
  Adam 1e-4 for both networks. The discriminator loss is BCE(D(real), 1) + BCE(D(fake), 0) (a sum,
  as in the authors' training loop that back-propagates the two halves one after the other).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNetDiscriminatorSN", "GANLoss", "generator_adversarial_loss", "discriminator_loss"]


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
