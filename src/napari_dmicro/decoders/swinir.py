"""SwinIR decoder: residual Swin transformer groups on the camera grid, pixel-shuffle upsampling.

Architecture (Liang et al., "SwinIR: Image Restoration Using Swin Transformer", 2021), written here
in plain torch:

* shallow features: one 3x3 convolution ``in_chans -> embed_dim``;
* deep features: ``len(depths)`` residual Swin transformer blocks (RSTB). Each RSTB is a stack of
  Swin transformer layers that alternate plain and shifted (by ``window_size // 2``) window
  attention, followed by a convolution (``"1conv"``: one 3x3; ``"3conv"``: a 3x3 / 1x1 / 3x3
  bottleneck) and a residual connection around the whole group. A LayerNorm, a 3x3 convolution and
  a long skip from the shallow features close the body;
* reconstruction: ``"pixelshuffle"`` (the paper's progressive upsampler: conv to ``num_feat`` +
  LeakyReLU, ``log2(upscale)`` x [3x3 conv -> PixelShuffle(2)], 3x3 conv to ``out_chans``) or
  ``"pixelshuffledirect"`` (one 3x3 conv to ``out_chans * upscale**2`` and a single
  PixelShuffle(upscale); far cheaper on a CPU because no convolution runs at the output resolution).

Window attention uses a learned relative position bias (one ``(2w-1)**2 x heads`` table per
attention layer) and, in shifted layers, a mask that forbids attention between tokens that the
cyclic shift brought together across the image border. The mask depends on the (padded) image size;
it is computed on first use for each size and cached.

Inputs of any size are accepted: the image is padded (reflect; replicate when the image is smaller
than the pad) to a multiple of ``window_size`` before the first convolution and the output is
cropped back to ``(h * upscale, w * upscale)``. There is no input mean normalisation (the input is a
detector intensity) and no output clamping.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SwinIR",
    "RSTB",
    "SwinTransformerLayer",
    "WindowAttention",
    "DropPath",
    "relative_position_index",
    "shifted_window_mask",
    "window_partition",
    "window_reverse",
    "pad_to_multiple",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad ``x`` (B, C, h, w) at the bottom/right to a multiple of ``multiple``.

    Reflect padding is used when possible (it needs the pad to be smaller than the image side);
    otherwise replicate. Returns the padded tensor and the original ``(h, w)``.
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, ws*ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B, nW, ws*ws, C) -> (B, H, W, C)."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """Index (ws², ws²) into a ((2ws-1)², heads) bias table for each (query, key) token pair.

    Token ``i`` sits at ``(y_i, x_i)`` in the window (row-major). The pair (i, j) maps to the offset
    ``(y_i - y_j, x_i - x_j)`` shifted to be non-negative and flattened with stride ``2ws - 1``.
    Hence ``index[i, j] + index[j, i] == (2ws - 1)**2 - 1`` and the diagonal is the centre entry.
    """
    coords = torch.arange(ws)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    y = yy.reshape(-1)
    x = xx.reshape(-1)
    dy = y[:, None] - y[None, :] + (ws - 1)
    dx = x[:, None] - x[None, :] + (ws - 1)
    return dy * (2 * ws - 1) + dx


def _region_labels(length: int, ws: int, shift: int) -> torch.Tensor:
    """Per-coordinate region id along one axis of the *shifted* image (0, 1 or 2).

    After rolling by ``-shift`` the last window along the axis holds ``ws - shift`` pixels that
    were contiguous in the original image (region 1) and ``shift`` pixels that wrapped around from
    the opposite border (region 2); all other windows are region 0.
    """
    c = torch.arange(length)
    lab = torch.zeros(length, dtype=torch.long)
    lab[c >= length - ws] = 1
    lab[c >= length - shift] = 2
    return lab


def shifted_window_mask(
    h: int, w: int, ws: int, shift: int, *, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Additive attention mask (nW, ws², ws²) for shifted-window attention on an (h, w) grid.

    Entry (k, i, j) is 0 when tokens i and j of window k belong to the same region of the rolled
    image and ``-inf`` otherwise. ``h`` and ``w`` must be multiples of ``ws``; ``0 < shift < ws``.
    """
    if h % ws or w % ws:
        raise ValueError(f"grid {h}x{w} is not a multiple of the window size {ws}")
    if not 0 < shift < ws:
        raise ValueError(f"shift must be in (0, {ws}), got {shift}")
    lab = _region_labels(h, ws, shift)[:, None] * 3 + _region_labels(w, ws, shift)[None, :]
    win = window_partition(lab[None, :, :, None], ws)[0, :, :, 0]  # (nW, N)
    same = win[:, :, None] == win[:, None, :]
    mask = torch.zeros(same.shape, dtype=dtype)
    mask.masked_fill_(~same, float("-inf"))
    return mask.to(device)


# ----------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------
def residual_conv(dim: int, kind: str) -> nn.Module:
    """The convolution closing a residual group: ``"1conv"`` one 3x3, ``"3conv"`` a 3x3/1x1/3x3 bottleneck."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, padding=1)
    if kind == "3conv":
        mid = max(dim // 4, 1)
        return nn.Sequential(
            nn.Conv2d(dim, mid, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(mid, mid, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(mid, dim, 3, padding=1),
        )
    raise ValueError(f"resi_connection must be '1conv' or '3conv', got {kind!r}")


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch per sample with probability ``p`` (training)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * noise / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows with relative position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_bias(self) -> torch.Tensor:
        """(heads, N, N) bias gathered from the table."""
        n = self.window_size**2
        idx = self.relative_position_index.reshape(-1)
        bias = self.relative_position_bias_table[idx].view(n, n, self.num_heads)
        return bias.permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, nW, N, C); mask: (nW, N, N) additive or None. Returns (B, nW, N, C)."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b * nw, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B*nW, heads, N, d)
        bias = self.relative_bias().to(x.dtype)[None]  # (1, heads, N, N)
        if mask is not None:
            # (B*nW, heads, N, N): materialised because windows differ in their mask; the fused
            # CPU attention kernel is markedly faster with 4-d inputs than with broadcast 5-d ones
            bias = (bias + mask.to(x.dtype)[:, None]).expand(b, nw, -1, n, n)
            bias = bias.reshape(b * nw, self.num_heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = out.transpose(1, 2).reshape(b, nw, n, c)
        return self.proj(out)


class SwinTransformerLayer(nn.Module):
    """One Swin transformer layer on a (B, H, W, C) grid whose sides are multiples of the window."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift: int,
        mlp_ratio: float,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, H, W, C). ``mask`` is the shifted-window mask, used only when ``shift > 0``."""
        _, h, w, _ = x.shape
        ws, s = self.window_size, self.shift
        y = self.norm1(x)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = window_reverse(self.attn(window_partition(y, ws), mask if s else None), ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class RSTB(nn.Module):
    """Residual Swin transformer block: ``depth`` Swin layers + convolution + residual."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop_path: Sequence[float],
        resi_connection: Literal["1conv", "3conv"] = "1conv",
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            SwinTransformerLayer(
                dim,
                num_heads,
                window_size,
                shift=0 if i % 2 == 0 else window_size // 2,
                mlp_ratio=mlp_ratio,
                drop_path=drop_path[i],
            )
            for i in range(depth)
        )
        self.conv = residual_conv(dim, resi_connection)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, H, W, C) channels-last tokens."""
        y = x
        for layer in self.layers:
            y = layer(y, mask)
        y = self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + y


def _progressive_upsampler(num_feat: int, upscale: int) -> nn.Sequential:
    n = int(round(math.log2(upscale)))
    if 2**n != upscale:
        raise ValueError(f"upscale must be a power of 2, got {upscale}")
    mods: list[nn.Module] = []
    for _ in range(n):
        mods += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)]
    return nn.Sequential(*mods)


class SwinIR(nn.Module):
    """SwinIR image-to-image decoder: (B, in_chans, h, w) -> (B, out_chans, h*upscale, w*upscale).

    See the module docstring for the architecture. ``img_size`` is nominal (the camera side the
    model was designed for) and only recorded; any input size works.
    """

    def __init__(
        self,
        *,
        upscale: int = 8,
        in_chans: int = 1,
        out_chans: int = 1,
        img_size: int = 32,
        embed_dim: int = 180,
        depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        resi_connection: Literal["1conv", "3conv"] = "1conv",
        upsampler: Literal["pixelshuffle", "pixelshuffledirect"] = "pixelshuffle",
        num_feat: int = 64,
        drop_path_rate: float = 0.1,
    ):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads must have the same length")
        self.upscale = int(upscale)
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.img_size = img_size
        self.window_size = int(window_size)
        self.shift = self.window_size // 2
        self.embed_dim = embed_dim
        self.upsampler = upsampler

        # shallow features
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1)
        self.patch_norm = nn.LayerNorm(embed_dim)

        # deep features
        total = sum(depths)
        dpr = torch.linspace(0, drop_path_rate, total).tolist() if total else []
        self.layers = nn.ModuleList()
        start = 0
        for depth, heads in zip(depths, num_heads):
            self.layers.append(
                RSTB(
                    embed_dim,
                    depth,
                    heads,
                    self.window_size,
                    mlp_ratio,
                    dpr[start : start + depth],
                    resi_connection,
                )
            )
            start += depth
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = residual_conv(embed_dim, resi_connection)

        # reconstruction
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, num_feat, 3, padding=1), nn.LeakyReLU(inplace=True)
            )
            self.upsample = _progressive_upsampler(num_feat, self.upscale)
            self.conv_last = nn.Conv2d(num_feat, out_chans, 3, padding=1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(embed_dim, out_chans * self.upscale**2, 3, padding=1),
                nn.PixelShuffle(self.upscale),
            )
        else:
            raise ValueError(
                f"upsampler must be 'pixelshuffle' or 'pixelshuffledirect', got {upsampler!r}"
            )

        self.apply(self._init_weights)
        self._mask_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        # convolutions keep PyTorch's default (Kaiming-uniform) initialisation, as in the paper

    # -- shifted-window mask, cached per padded size ------------------------------------------
    def attention_mask(self, h: int, w: int, device, dtype) -> torch.Tensor | None:
        """The shifted-window mask for a padded (h, w) grid (cached, at most 16 sizes)."""
        if self.shift == 0:
            return None
        key = (h, w, str(device), dtype)
        mask = self._mask_cache.get(key)
        if mask is None:
            # a normal (not inference-mode) tensor so it can later be reused under autograd
            with torch.inference_mode(False):
                mask = shifted_window_mask(
                    h, w, self.window_size, self.shift, device=device, dtype=dtype
                )
            self._mask_cache[key] = mask
            while len(self._mask_cache) > 16:
                self._mask_cache.popitem(last=False)
        else:
            self._mask_cache.move_to_end(key)
        return mask

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) embedded features (H, W multiples of the window) -> same shape."""
        _, _, h, w = x.shape
        mask = self.attention_mask(h, w, x.device, x.dtype)
        t = self.patch_norm(x.permute(0, 2, 3, 1))
        for layer in self.layers:
            t = layer(t, mask)
        t = self.norm(t)
        return t.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"expected input (B, {self.in_chans}, h, w), got {tuple(x.shape)}"
            )
        x, h, w = pad_to_multiple(x, self.window_size)
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = self.upsample(x)
        return x[..., : h * self.upscale, : w * self.upscale]
