"""Dilated residual CNN decoder whose receptive field covers a whole cell (family ``"dilated"``).

On the camera grid: 3x3 conv ``in_chans -> width`` -> residual blocks whose two 3x3 convolutions are
dilated by ``dilations[i]`` -> 3x3 conv -> global skip -> 3x3 conv to ``out_chans * upscale**2`` ->
PixelShuffle(upscale); then a small full-resolution refinement (3x3 conv ``out -> refine_width``, ReLU,
3x3 conv back, added to its input). Thick cells fold in intensity; a decoder that sees the whole cell
(≥ 20 µm = 8 camera pixels at x64) can unfold the level from its context (see docs/training.md).

:func:`receptive_field_camera_px` states the receptive field on the camera grid; the refinement adds
±2 object pixels, which stay inside the same camera pixel for output pixels ≥ 2 px from its border
(e.g. the centre of a camera pixel at x64 and beyond; at upscale ≤ 4 it can reach one more camera pixel).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .conv import ResBlock

__all__ = ["DilatedConvDecoder", "receptive_field_camera_px"]


def receptive_field_camera_px(dilations) -> int:
    """Side of the receptive field on the camera grid (camera pixels): head, blocks (2 convs each with
    reach ``d``), the conv after the body and the conv before the PixelShuffle each reach ``d`` (or 1)."""
    return 1 + 2 * (1 + 2 * sum(int(d) for d in dilations) + 1 + 1)


class DilatedConvDecoder(nn.Module):
    """(B, in_chans, h, w) -> (B, out_chans, h*upscale, w*upscale); see the module docstring."""

    def __init__(self, *, upscale: int = 8, in_chans: int = 1, out_chans: int = 1, width: int = 64,
                 dilations: tuple[int, ...] = (1, 2, 4, 4, 2, 1), res_scale: float = 1.0, refine_width: int = 16):
        super().__init__()
        n = int(round(math.log2(upscale)))
        if upscale < 1 or 2 ** n != upscale:
            raise ValueError(f"upscale must be a power of 2, got {upscale}")
        if any(int(d) < 1 for d in dilations):
            raise ValueError(f"dilations {tuple(dilations)} must be >= 1")
        self.upscale, self.in_chans, self.out_chans = int(upscale), in_chans, out_chans
        self.dilations = tuple(int(d) for d in dilations)
        self.head = nn.Conv2d(in_chans, width, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(width, res_scale, d) for d in self.dilations))
        self.conv_after_body = nn.Conv2d(width, width, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(width, out_chans * self.upscale ** 2, 3, padding=1),
                                  nn.PixelShuffle(self.upscale))
        self.refine = nn.Sequential(nn.Conv2d(out_chans, refine_width, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(refine_width, out_chans, 3, padding=1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for blk in self.body:  # residual branches start near zero: the deep stack begins near the identity
            blk.conv2.weight.data.mul_(0.1)
        self.tail[0].weight.data.mul_(0.1)
        self.refine[-1].weight.data.mul_(0.1)

    @property
    def receptive_field_camera_px(self) -> int:
        """Side of the receptive field on the camera grid, in camera pixels."""
        return receptive_field_camera_px(self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"expected input (B, {self.in_chans}, h, w), got {tuple(x.shape)}")
        f = self.head(x)
        f = self.conv_after_body(self.body(f)) + f
        y = self.tail(f)
        return y + self.refine(y)
