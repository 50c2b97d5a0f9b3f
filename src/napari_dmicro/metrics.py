"""Image quality metrics in the paper's convention, as differentiable torch functions.

Convention (paper and its code, pytorch-ignite): images are φ/2π with data range 1, the prediction is
clipped to [0, 1] for reporting (not inside a loss), SSIM uses an 11 × 11 Gaussian window with σ 1.5,
K1 0.01, K2 0.03 (C1 = 1e-4, C2 = 9e-4), reflect padding of 5 pixels, and population (not sample)
statistics; the SSIM of an image is the mean of its full-size SSIM map.

Aggregation over a data set is always per image: the mean of per-image values ("patch metrics" when
the images are 256² patches), never a mean over batches of unequal size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_WINDOW_PX = 11
SSIM_SIGMA_PX = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
#: pixels of context the SSIM window needs on each side
SSIM_HALO_PX = SSIM_WINDOW_PX // 2


def _as_nchw(image: torch.Tensor) -> torch.Tensor:
    if image.ndim == 2:
        return image[None, None]
    if image.ndim == 3:
        return image[:, None]
    if image.ndim == 4:
        return image
    raise ValueError(f"expected an image (H, W), (B, H, W) or (B, 1, H, W); got shape {tuple(image.shape)}")


def _gaussian_kernel(device, dtype) -> torch.Tensor:
    half = SSIM_WINDOW_PX // 2
    x = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(x ** 2) / (2 * SSIM_SIGMA_PX ** 2))
    g = g / g.sum()
    return g.to(device=device, dtype=dtype)


def _blur_valid(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter without padding: the output loses ``SSIM_HALO_PX`` px on every side.

    Every image is its own channel of one depthwise convolution (7× faster on a CPU than a batch of
    single-channel images).
    """
    b, c, h, w = x.shape
    x = x.reshape(1, b * c, h, w)
    kx = kernel.view(1, 1, 1, -1).expand(b * c, 1, 1, -1)
    ky = kernel.view(1, 1, -1, 1).expand(b * c, 1, -1, 1)
    out = F.conv2d(F.conv2d(x, kx, groups=b * c), ky, groups=b * c)
    return out.reshape(b, c, out.shape[-2], out.shape[-1])


def ssim_map(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM, same shape as the inputs' (B, 1, H, W) form; differentiable."""
    x, y = _as_nchw(prediction).float(), _as_nchw(target).float()
    if x.shape != y.shape:
        raise ValueError(f"prediction {tuple(x.shape)} and target {tuple(y.shape)} differ in shape")
    if min(x.shape[-2:]) <= SSIM_HALO_PX:
        raise ValueError(f"images must be larger than {SSIM_HALO_PX} px per side for SSIM")
    pad = (SSIM_HALO_PX,) * 4
    return ssim_map_of_extended(F.pad(x, pad, mode="reflect"), F.pad(y, pad, mode="reflect"), data_range)


def ssim_map_of_extended(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM map of images already extended by ``SSIM_HALO_PX`` px on every side (by their neighbours
    in a larger image, or mirrored at its border): the output is ``2·SSIM_HALO_PX`` px smaller per axis.
    A block of a large image read with this halo gives exactly the whole image's SSIM map there."""
    x, y = _as_nchw(prediction).float(), _as_nchw(target).float()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    k = _gaussian_kernel(x.device, x.dtype)
    mu_x, mu_y = _blur_valid(x, k), _blur_valid(y, k)
    sxx = _blur_valid(x * x, k) - mu_x ** 2
    syy = _blur_valid(y * y, k) - mu_y ** 2
    sxy = _blur_valid(x * y, k) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return num / den


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM per image, shape (B,): the mean of each image's SSIM map."""
    return ssim_map(prediction, target, data_range).mean(dim=(1, 2, 3))


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR per image in dB, shape (B,)."""
    x, y = _as_nchw(prediction).float(), _as_nchw(target).float()
    mse = (x - y).square().mean(dim=(1, 2, 3)).clamp_min(1e-20)
    return 10 * torch.log10(data_range ** 2 / mse)


def pooled_psnr(squared_error_sum: float, pixel_count: int, data_range: float = 1.0) -> float:
    """PSNR of the pooled error over many pixels (the full-FoV number; lower than per-patch means)."""
    mse = max(squared_error_sum / max(pixel_count, 1), 1e-20)
    return 10 * math.log10(data_range ** 2 / mse)


def report_metrics(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image PSNR and SSIM with the prediction clipped to [0, 1], as the paper reports them."""
    clipped = prediction.clamp(0.0, 1.0)
    return {"psnr_db": psnr(clipped, target), "ssim": ssim(clipped, target)}
