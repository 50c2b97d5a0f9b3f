"""Convolutional residual decoder (EDSR-style), the second decoder family.

``head`` 3x3 conv ``in_chans -> width`` -> ``n_blocks`` residual blocks (3x3 conv, ReLU, 3x3 conv,
scaled by ``res_scale``, added to the block input) -> 3x3 conv -> global skip from the head ->
upsampler -> ``out_chans`` channels.

Upsamplers: ``"pixelshuffledirect"`` (default; one 3x3 conv to ``out_chans * upscale**2`` channels
and a single PixelShuffle(upscale), so every convolution runs at the camera resolution) or
``"pixelshuffle"`` (progressive: 3x3 conv to ``num_feat`` + ReLU, ``log2(upscale)`` x [3x3 conv ->
PixelShuffle(2)], 3x3 conv to ``out_chans``).

There is deliberately **no** skip from an interpolated input image to the output: the input is a
detector intensity and the target a phase map, so an upsampled copy of the input is not a useful
baseline for the output (unlike super-resolution, where the network only learns the residual).

All convolutions are zero padded and stride 1, so the decoder is exactly translation equivariant
(an input shift by ``k`` camera pixels shifts the output by ``k * upscale`` pixels) away from a
border band as wide as the receptive field. No padding to a window is needed: any size works.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = ["ConvDecoder", "ResBlock"]


class ResBlock(nn.Module):
    """x + res_scale · conv(ReLU(conv(x))), both 3x3 convolutions dilated by ``dilation``."""

    def __init__(self, width: int, res_scale: float = 1.0, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(self.act(self.conv1(x)))


class ConvDecoder(nn.Module):
    """Residual CNN decoder: (B, in_chans, h, w) -> (B, out_chans, h*upscale, w*upscale)."""

    def __init__(
        self,
        *,
        upscale: int = 8,
        in_chans: int = 1,
        out_chans: int = 1,
        width: int = 64,
        n_blocks: int = 8,
        res_scale: float = 1.0,
        upsampler: Literal["pixelshuffle", "pixelshuffledirect"] = "pixelshuffledirect",
        num_feat: int = 64,
    ):
        super().__init__()
        n = int(round(math.log2(upscale)))
        if upscale < 1 or 2**n != upscale:
            raise ValueError(f"upscale must be a power of 2, got {upscale}")
        self.upscale = int(upscale)
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.upsampler = upsampler
        self.head = nn.Conv2d(in_chans, width, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(width, res_scale) for _ in range(n_blocks)))
        self.conv_after_body = nn.Conv2d(width, width, 3, padding=1)
        if upsampler == "pixelshuffledirect":
            self.tail = nn.Sequential(
                nn.Conv2d(width, out_chans * self.upscale**2, 3, padding=1),
                nn.PixelShuffle(self.upscale),
            )
        elif upsampler == "pixelshuffle":
            mods: list[nn.Module] = [
                nn.Conv2d(width, num_feat, 3, padding=1),
                nn.ReLU(inplace=True),
            ]
            for _ in range(n):
                mods += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)]
            mods.append(nn.Conv2d(num_feat, out_chans, 3, padding=1))
            self.tail = nn.Sequential(*mods)
        else:
            raise ValueError(
                f"upsampler must be 'pixelshuffle' or 'pixelshuffledirect', got {upsampler!r}"
            )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        # start every residual branch near zero so a deep stack begins close to the identity
        for blk in self.body:
            blk.conv2.weight.data.mul_(0.1)
        # and the output layer small, so the initial output is O(0.1) rather than O(1)
        self.tail[-2 if upsampler == "pixelshuffledirect" else -1].weight.data.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"expected input (B, {self.in_chans}, h, w), got {tuple(x.shape)}")
        f = self.head(x)
        f = self.conv_after_body(self.body(f)) + f
        return self.tail(f)
