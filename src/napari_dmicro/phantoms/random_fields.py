"""Random ingredients of a phantom: slow fields, textures, Gaussian blobs, sub-pixel splatting."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage


def _slow_field(rng: np.random.Generator, shape: tuple[int, int], length_px: float) -> np.ndarray:
    """Smooth Gaussian random field with correlation length ``length_px``, scaled to span exactly [-1, 1].

    Evaluated as a separable sum of a few low-frequency Fourier modes whose period is twice the field
    (so the field is not periodic over the field of view): ``Re(Ey @ C @ Ex^T)``; cost O(H·W·K) with
    K ≤ 2·32 + 1 modes per axis.
    """
    h, w = shape
    kmax_y = int(min(32, math.ceil(2 * h / (math.pi * length_px) * 3.0)))
    kmax_x = int(min(32, math.ceil(2 * w / (math.pi * length_px) * 3.0)))
    ky = np.arange(-kmax_y, kmax_y + 1)
    kx = np.arange(-kmax_x, kmax_x + 1)
    fy = ky / (2.0 * h)  # cycles per pixel
    fx = kx / (2.0 * w)
    gain = np.exp(-(math.pi * length_px) ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2) / 2.0)
    coef = (rng.standard_normal(gain.shape) + 1j * rng.standard_normal(gain.shape)) * gain
    ey = np.exp(2j * math.pi * np.outer(np.arange(h), fy))
    ex = np.exp(2j * math.pi * np.outer(np.arange(w), fx))
    out = ((ey @ coef) @ ex.T).real
    lo, hi = out.min(), out.max()
    if hi - lo <= 0:
        return np.zeros(shape, np.float32)
    return ((out - 0.5 * (hi + lo)) / (0.5 * (hi - lo))).astype(np.float32)


def _texture_pair(
    rng: np.random.Generator, shape: tuple[int, int], sigma_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent zero-mean, unit-std Gaussian textures with Gaussian correlation ``sigma_px``.

    Complex white noise is filtered in the Fourier domain; the real and imaginary parts of its inverse
    transform are independent real fields. The grid is padded to an FFT-friendly size (789 = 3·263).
    """
    h, w = shape
    ph, pw = sp_fft.next_fast_len(h + 8), sp_fft.next_fast_len(w + 8)
    fy = sp_fft.fftfreq(ph).astype(np.float32)
    fx = sp_fft.fftfreq(pw).astype(np.float32)
    gain = np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2)).astype(np.float32)
    z = filtered_white_noise(rng, gain, np.float32)[:h, :w]
    return unit_std(z.real), unit_std(z.imag)


def filtered_white_noise(rng: np.random.Generator, gain: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Complex white noise (``dtype`` draws, shape of ``gain``) times the Fourier-domain ``gain``, transformed
    back: its real and imaginary parts are independent real Gaussian fields with power spectrum ∝ gain²."""
    noise = rng.standard_normal((2, *gain.shape), dtype=dtype)
    spec = (noise[0] + 1j * noise[1]).astype(np.result_type(dtype, np.complex64))
    spec *= gain
    return sp_fft.ifft2(spec, workers=1)


def unit_std(part: np.ndarray) -> np.ndarray:
    """``part`` shifted to zero mean and scaled to unit standard deviation (float32; a constant stays 0)."""
    part = part - part.mean()
    s = part.std()
    return (part / s if s > 0 else part).astype(np.float32)


def _coarse_texture(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std texture with a long correlation, made on a 4× coarser grid and upsampled."""
    f = 4 if sigma_px >= 8 else 1
    small = (shape[0] // f + 2, shape[1] // f + 2)
    t, _ = _texture_pair(rng, small, sigma_px / f)
    if f == 1:
        return t[: shape[0], : shape[1]]
    big = ndimage.zoom(t, f, order=1, grid_mode=False)[: shape[0], : shape[1]]
    big = big - big.mean()
    return (big / max(float(big.std()), 1e-12)).astype(np.float32)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if lo <= 0 or hi <= lo:
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _add_gaussian(img: np.ndarray, cy: float, cx: float, sy: float, sx: float, angle: float, amp: float):
    """Add an (anisotropic, rotated) Gaussian blob in place, evaluated on a local ±4σ box."""
    r = 4.0 * max(sy, sx)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, img.shape[0])
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, img.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    img[y0:y1, x0:x1] += amp * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


class _Splatter:
    """Collects weighted sub-pixel points (bilinear splatting) into one image, blurred once at the end."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.ys: list[np.ndarray] = []
        self.xs: list[np.ndarray] = []
        self.ws: list[np.ndarray] = []

    def add(self, y: np.ndarray, x: np.ndarray, w: np.ndarray):
        self.ys.append(np.asarray(y, np.float64).ravel())
        self.xs.append(np.asarray(x, np.float64).ravel())
        self.ws.append(np.broadcast_to(np.asarray(w, np.float64), np.shape(y)).ravel())

    def render(self, sigma_px: float) -> np.ndarray:
        h, w = self.shape
        if not self.ys:
            return np.zeros(self.shape, np.float32)
        y = np.concatenate(self.ys)
        x = np.concatenate(self.xs)
        wt = np.concatenate(self.ws)
        y0 = np.floor(y).astype(np.int64)
        x0 = np.floor(x).astype(np.int64)
        fy = y - y0
        fx = x - x0
        acc = np.zeros(h * w, np.float64)
        for oy, ox, ww in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            yy = y0 + oy
            xx = x0 + ox
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            acc += np.bincount(yy[ok] * w + xx[ok], weights=(wt * ww)[ok], minlength=h * w)
        img = acc.reshape(h, w).astype(np.float32)
        return ndimage.gaussian_filter(img, sigma_px, mode="constant", truncate=3.5)

