"""Point-spread functions on the specimen grid (Gaussian by NA and wavelength, or a file), always
normalised to unit sum, and the two convolutions of the microscope.

- excitation: the PSF blurs the periodic pattern by a CIRCULAR convolution over the period (exact for a
  periodic pattern: the PSF is wrapped onto the period, its aliases added);
- emission: the PSF blurs the emitted image by a linear convolution; beyond the field the emitted image
  continues mirrored (``reflect``, the same rule as the phase modality's ``outside_field``).
Both are true convolutions (kernel flipped), so asymmetric PSFs are applied the right way round.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..optics.grids import crop_with_surroundings
from .config import PSFConfig

#: σ of the Gaussian approximation of the Airy disk: σ = 0.21·λ/NA (FWHM 2.355σ ≈ 0.49·λ/NA).
GAUSSIAN_SIGMA_PER_LAMBDA_OVER_NA = 0.21


def normalise_psf(psf: np.ndarray, what: str = "PSF") -> np.ndarray:
    """The PSF as float64 with unit sum; refuses non-2-D, even-sided, negative or empty PSFs."""
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2:
        raise ValueError(f"the {what} must be a 2-D image, got shape {psf.shape}")
    if psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        raise ValueError(f"the {what} has even sides {psf.shape}; crop it to odd sides with its peak at the "
                         "centre pixel (the centre of an even image lies between pixels)")
    if not np.all(np.isfinite(psf)):
        raise ValueError(f"the {what} contains NaN or infinite values")
    if psf.min() < 0:
        raise ValueError(f"the {what} has negative values (min {psf.min():.3g}); subtract the background "
                         "and clip at 0 before using it")
    total = psf.sum()
    if total <= 0:
        raise ValueError(f"the {what} sums to {total}; it needs some positive values")
    return psf / total


def gaussian_psf(na: float, wavelength_um: float, pixel_size_um: float) -> np.ndarray:
    """Gaussian PSF with σ = 0.21·λ/NA sampled on pixels of ``pixel_size_um`` (±4σ, odd side, unit sum)."""
    sigma_px = GAUSSIAN_SIGMA_PER_LAMBDA_OVER_NA * wavelength_um / na / pixel_size_um
    radius = max(1, math.ceil(4 * sigma_px))
    r = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (r / sigma_px) ** 2)
    return normalise_psf(np.outer(g, g), "Gaussian PSF")


def read_psf_file(path, file_pixel_size_um: float, pixel_size_um: float) -> np.ndarray:
    """A PSF from a .npy or .tif file sampled at ``file_pixel_size_um``, resampled to ``pixel_size_um``
    (linear interpolation about the centre pixel), unit sum."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"PSF file {path} does not exist")
    if suffix == ".npy":
        psf = np.load(path, allow_pickle=False)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        psf = tifffile.imread(path)
    else:
        raise ValueError(f"PSF file {path.name}: unknown format {suffix!r}; give a .npy or .tif file")
    psf = np.squeeze(psf)
    psf = normalise_psf(psf, f"PSF in {path.name}")
    if not math.isclose(file_pixel_size_um, pixel_size_um, rel_tol=1e-6):
        psf = _resample(psf, file_pixel_size_um / pixel_size_um)
        psf = normalise_psf(psf, f"PSF in {path.name} resampled to {pixel_size_um} µm")
    return psf


def _resample(psf: np.ndarray, zoom: float) -> np.ndarray:
    """Resample about the centre pixel by ``zoom`` (new pixels per old pixel), keeping odd sides."""
    from scipy.ndimage import map_coordinates

    centre = np.array(psf.shape) // 2
    half = np.maximum(1, np.floor(centre * zoom).astype(int))
    axes = [(np.arange(-h, h + 1) / zoom) + c for h, c in zip(half, centre, strict=True)]
    rows, cols = np.meshgrid(*axes, indexing="ij")
    return np.clip(map_coordinates(psf, [rows, cols], order=1, mode="constant", cval=0.0), 0, None)


def build_psf(config: PSFConfig, pixel_size_um: float) -> np.ndarray | None:
    """The PSF a config describes on the specimen grid (unit sum), or None for an impulse."""
    if config.kind == "none":
        return None
    if config.kind == "gaussian":
        return gaussian_psf(config.na, config.wavelength_um, pixel_size_um)
    return read_psf_file(config.path, config.file_pixel_size_um, pixel_size_um)


def wrap_psf(psf: torch.Tensor, period: int) -> torch.Tensor:
    """The PSF folded onto a ``period × period`` torus with its centre at index (0, 0) (aliases added)."""
    kr, kc = psf.shape
    rows = (torch.arange(kr) - kr // 2) % period
    cols = (torch.arange(kc) - kc // 2) % period
    flat = (rows[:, None] * period + cols[None, :]).reshape(-1)
    out = torch.zeros(period * period, dtype=psf.dtype, device=psf.device)
    out.index_add_(0, flat.to(psf.device), psf.reshape(-1))
    return out.reshape(period, period)


def blur_periodic(patterns: torch.Tensor, psf: torch.Tensor | None) -> torch.Tensor:
    """Circular convolution of (…, P, P) periodic patterns with a unit-sum PSF (mean preserved)."""
    if psf is None:
        return patterns
    period = patterns.shape[-1]
    otf = torch.fft.rfft2(wrap_psf(psf.to(patterns.dtype), period))
    return torch.fft.irfft2(torch.fft.rfft2(patterns) * otf, s=patterns.shape[-2:])


def blur_reflect(image: torch.Tensor, psf: torch.Tensor | None) -> torch.Tensor:
    """Linear convolution of (…, H, W) images with a unit-sum PSF; the image continues mirrored."""
    if psf is None:
        return image
    rows, cols = image.shape[-2:]
    hr, hc = psf.shape[0] // 2, psf.shape[1] // 2
    padded = crop_with_surroundings(image, -hr, -hc, rows + 2 * hr, cols + 2 * hc, "reflect")
    size = padded.shape[-2:]
    kernel = torch.zeros(size, dtype=image.dtype, device=image.device)
    kernel[: psf.shape[0], : psf.shape[1]] = psf.to(image.dtype)
    full = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(kernel), s=size)
    return full[..., 2 * hr: 2 * hr + rows, 2 * hc: 2 * hc + cols]
