"""The fluorescence microscope up to the camera: patterned excitation → emission → binning camera.

For a specimen x ≥ 0 (fluorophore density, (B, H, W) on the DMD grid) and T periodic patterns:

    y_t = SUM_{d×d}( emPSF ⋆ ( x ⊙ tile(exPSF ⊛ e·H_t) ) )

with ⊛ the circular convolution over the period and ⋆ the linear convolution (field mirrored beyond
its edges). With K = ``photons_per_unit`` the expected counts are λ = K·y + γ, sampled exactly
(Poisson + read noise) or differentiably; the measurement is returned in units of y: (counts − γ)/K.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..optics.detector import _check_divisible, bin_sum, sample_counts
from .config import FluorescenceEncoderConfig
from .patterns import IlluminationPatterns, tile_periodic
from .psf import blur_periodic, blur_reflect, build_psf

NoiseMode = Literal["none", "exact", "differentiable"]
#: Differentiable shot noise uses sqrt(max(λ, 1 photon)): exact moments for λ ≥ 1, bounded gradients.
VARIANCE_FLOOR_PHOTONS = 1.0


class FluorescenceEncoder(nn.Module):
    """Specimen (B, H, W) → measurement (B, T, H/d, W/d), float32; H, W any multiples of d."""

    def __init__(self, config: FluorescenceEncoderConfig | None = None, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.config = config or FluorescenceEncoderConfig()
        cfg = self.config
        self.illumination = IlluminationPatterns(cfg.patterns, cfg.period_px, generator)
        for name, psf_config in (("excitation_psf", cfg.excitation), ("emission_psf", cfg.emission)):
            psf = build_psf(psf_config, cfg.pixel_size_um)
            self.register_buffer(name, None if psf is None else torch.as_tensor(psf, dtype=torch.float32))

    # --- geometry -----------------------------------------------------------------------------------
    @property
    def n_patterns(self) -> int:
        return self.config.patterns.n_patterns

    @property
    def bin_px(self) -> int:
        return self.config.detector.bin_px

    @property
    def period_px(self) -> int:
        return self.config.period_px

    @property
    def compression(self) -> float:
        return self.config.compression

    @property
    def pixel_size_um(self) -> float:
        return self.config.pixel_size_um

    @property
    def camera_pixel_size_um(self) -> float:
        return self.config.camera_pixel_size_um

    # --- patterns -----------------------------------------------------------------------------------
    @property
    def sharpness(self) -> torch.Tensor:
        """m of the soft patterns (a buffer, saved with the weights; set by a SharpnessSchedule)."""
        return self.illumination.sharpness

    def set_sharpness(self, value: float) -> None:
        self.illumination.set_sharpness(value)

    def _binary(self, binary: bool | None) -> bool:
        return (not self.training) if binary is None else bool(binary)

    def patterns(self, binary: bool | None = None) -> torch.Tensor:
        """Dose-normalised DMD illumination e·H_t over one period (T, P, P); binary: exactly {0, e}.
        ``binary`` defaults to deployment (binary) in eval mode and soft in training mode."""
        return self.illumination(self._binary(binary))

    def excitation(self, binary: bool | None = None) -> torch.Tensor:
        """Illumination reaching the specimen over one period (T, P, P): patterns ⊛ excitation PSF."""
        return blur_periodic(self.patterns(binary), self.excitation_psf)

    # --- imaging ------------------------------------------------------------------------------------
    def _check_specimen(self, x: torch.Tensor) -> None:
        if x.ndim != 3:
            raise ValueError(f"the specimen must be a batch of 2-D images (B, H, W), got shape "
                             f"{tuple(x.shape)}; add a batch axis with x[None]")
        if x.is_complex():
            raise ValueError("the fluorescence specimen is a real fluorophore density, got a complex tensor")
        _check_divisible(x, self.bin_px)

    def emitted(self, x: torch.Tensor, binary: bool | None = None) -> torch.Tensor:
        """Emitted light on the camera's specimen-plane grid (B, T, H, W) before binning."""
        self._check_specimen(x)
        rows, cols = x.shape[-2:]
        tiled = tile_periodic(self.excitation(binary), rows, cols)
        emitted = x.to(torch.float32)[:, None] * tiled[None]
        return blur_reflect(emitted, self.emission_psf)

    def expected_counts(self, y: torch.Tensor) -> torch.Tensor:
        """λ = K·y + γ photons per camera pixel and frame (needs photons_per_unit)."""
        det = self.config.detector
        return det.photons_per_unit * y.clamp_min(0) + det.background_photons

    def forward(self, x: torch.Tensor, noise: NoiseMode = "none", generator: torch.Generator | None = None,
                binary: bool | None = None) -> torch.Tensor:
        """Measurement (B, T, H/d, W/d) in units of the noise-free sum y (photons/K minus background)."""
        y = bin_sum(self.emitted(x, binary), self.bin_px)
        det = self.config.detector
        if noise not in ("none", "exact", "differentiable"):
            raise ValueError(f"unknown noise mode '{noise}'; use 'none', 'exact' or 'differentiable'")
        if noise == "none" or not det.noisy:
            return y
        counts = sample_counts(self.expected_counts(y), noise, det.read_noise_e, generator,
                               variance_floor=VARIANCE_FLOOR_PHOTONS)
        return (counts - det.background_photons) / det.photons_per_unit
