"""Background noise and the measured-like amplitude of a phantom: correlated noise, amplitude texture inside
cells (independent of the phase), correlated amplitude noise, and edge rings of a slightly defocused field."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .config import TWO_PI, PhantomConfig
from .random_fields import _texture_pair

#: Gaussian σ (µm) of the phase smoothing before its Laplacian (rings of ~1 µm width)
RING_SMOOTHING_UM = 0.35


def correlated_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian noise (float32), Gaussian-correlated with ``sigma_px`` (≤ 0.05: white)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if sigma_px > 0.05:
        noise = ndimage.gaussian_filter(noise, sigma_px, mode="reflect", truncate=3.0)
        noise /= max(float(noise.std()), 1e-12)
    return noise


def edge_rings(cell_phase_rad: np.ndarray, defocus_um: float, pixel_size_um: float,
               wavelength_um: float, max_ring: float) -> np.ndarray:
    """Relative amplitude change of a field defocused by ``defocus_um`` (transport of intensity, float32).

    To first order in z, I(z) = I₀·(1 − (z/k)·∇²φ) with k = 2π/λ, so the amplitude changes by
    −(z/2k)·∇²φ: bright and dark rings where a cell's edge curves the phase. Clamped to ±``max_ring``.
    """
    smooth = ndimage.gaussian_filter(cell_phase_rad.astype(np.float32), RING_SMOOTHING_UM / pixel_size_um)
    laplacian_per_um2 = ndimage.laplace(smooth) / np.float32(pixel_size_um**2)
    k_per_um = TWO_PI / wavelength_um
    ring = np.float32(-defocus_um / (2.0 * k_per_um)) * laplacian_per_um2
    return np.clip(ring, -max_ring, max_ring).astype(np.float32)


def measured_like_amplitude(rng: np.random.Generator, cfg: PhantomConfig, amplitude: np.ndarray,
                            cell_phase_rad: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """``amplitude`` times the measured-like terms of ``cfg`` (each draws random numbers only when enabled).

    * a texture inside cells (``cell_amplitude_std``), independent of the phase;
    * correlated amplitude noise everywhere (``background_amplitude_std``);
    * edge rings of a defocus drawn per field (``edge_ring_defocus_um``, random sign).
    """
    px = cfg.pixel_size_um
    if cfg.cell_amplitude_std[1] > 0:
        std = rng.uniform(*cfg.cell_amplitude_std)
        texture, _ = _texture_pair(rng, amplitude.shape, cfg.cell_amplitude_length_um / px)
        amplitude = amplitude * (1.0 + np.float32(std) * texture * footprint)
    if cfg.background_amplitude_std[1] > 0:
        std = rng.uniform(*cfg.background_amplitude_std)
        noise = correlated_noise(rng, amplitude.shape, cfg.amplitude_noise_correlation_um / px)
        amplitude = amplitude * (1.0 + np.float32(std) * noise)
    if cfg.edge_ring_defocus_um[1] > 0:
        z = rng.uniform(*cfg.edge_ring_defocus_um) * (1.0 if rng.uniform() < 0.5 else -1.0)
        amplitude = amplitude * (1.0 + edge_rings(cell_phase_rad, z, px, cfg.wavelength_um, cfg.edge_ring_max))
    return amplitude
