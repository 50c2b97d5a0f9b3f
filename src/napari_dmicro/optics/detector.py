"""The camera: intensity, demagnification by binning, photon scaling and noise (assembled with the
optics in :mod:`.acquisition`).

Intensity is |E|² (one square). Demagnification onto a camera with ``compression``× fewer pixels is
modelled by binning b × b object pixels into one camera pixel (b = sqrt(compression)). The recorded
value is the mean intensity of the bin (the paper's stacked 2×2 average pooling), in units where a
unit-amplitude plane wave gives 1; photon counts are the same numbers times a photon scale.

Noise: with ``max_photons = K`` the expected count of a pixel is λ = K·I/I_ref, where I_ref is the
brightest camera pixel of the whole acquisition (``photon_reference="image_max"``: the exposure puts the
brightest pixel of the field of view, or of the aperture tile, at K photons; a crop carries the
reference of the acquisition it is cut from) or 1 (``"unit_intensity"``: an unobstructed beam gives K
photons). Counts are Poisson(λ) plus Gaussian read noise N(0, σ²) in electrons; the measurement
returned is counts·I_ref/K, back in intensity units. Two samplers, both seeded by a ``torch.Generator``:
- ``"exact"``: torch.poisson — for evaluation and simulation of acquisitions (no gradient);
- ``"differentiable"``: λ + sqrt(λ)·z₁ + σ·z₂ with z ~ N(0, 1) — for training (reparameterised).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..config import DetectorConfig

NoiseMode = Literal["none", "exact", "differentiable"]


def _check_divisible(image: torch.Tensor, factor: int) -> None:
    rows, cols = image.shape[-2:]
    if rows % factor or cols % factor:
        raise ValueError(
            f"an image of {rows}×{cols} pixels cannot be binned {factor}×{factor}; crop or pad it to a "
            f"multiple of {factor} (e.g. {rows - rows % factor}×{cols - cols % factor})"
        )


def bin_sum(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Sum non-overlapping ``factor × factor`` blocks of the last two axes (photons are conserved)."""
    _check_divisible(image, factor)
    rows, cols = image.shape[-2:]
    blocks = image.reshape(*image.shape[:-2], rows // factor, factor, cols // factor, factor)
    return blocks.sum(dim=(-3, -1))


def bin_mean(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean of non-overlapping ``factor × factor`` blocks (the paper's stacked 2×2 average pooling)."""
    return bin_sum(image, factor) / float(factor * factor)


def sample_counts(expected: torch.Tensor, mode: NoiseMode, read_noise_e: float = 0.0,
                  generator: torch.Generator | None = None, *, variance_floor: float = 0.0) -> torch.Tensor:
    """Photo-electron counts of pixels whose expected count is ``expected`` (λ ≥ 0): shot noise plus
    Gaussian read noise of standard deviation ``read_noise_e`` — the one noise rule of every modality.

    ``"exact"``: Poisson(λ) + σ·N(0, 1) (torch.poisson, no gradient); ``"differentiable"``:
    λ + sqrt(max(λ, floor))·z₁ + σ·z₂ (reparameterised: the same mean λ and variance λ + σ² for
    λ ≥ ``variance_floor``; a floor > 0 keeps the gradient of the square root bounded where λ → 0);
    ``"none"``: λ itself.
    """
    if mode == "none":
        return expected
    read = torch.randn(expected.shape, generator=generator, device=expected.device, dtype=expected.dtype)
    if mode == "exact":
        return torch.poisson(expected.detach(), generator=generator) + read_noise_e * read
    if mode == "differentiable":
        shot = torch.randn(expected.shape, generator=generator, device=expected.device, dtype=expected.dtype)
        return expected + torch.sqrt(expected.clamp_min(variance_floor) + 1e-12) * shot + read_noise_e * read
    raise ValueError(f"unknown noise mode '{mode}'; use 'none', 'exact' or 'differentiable'")


class Detector(nn.Module):
    """Intensity camera with demagnification, photon scaling and Poisson + Gaussian read noise."""

    def __init__(self, config: DetectorConfig | None = None):
        super().__init__()
        self.config = config or DetectorConfig()

    @staticmethod
    def intensity(field: torch.Tensor) -> torch.Tensor:
        """|E|² as float32 (one square; never |E|⁴)."""
        return field.real.square() + field.imag.square()

    def demagnify(self, intensity: torch.Tensor) -> torch.Tensor:
        return bin_mean(intensity, self.config.binning)

    def photon_scale(self, binned: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Photons per intensity unit, shape (B, 1, 1); the reference is detached from the graph.

        ``reference`` (B,) overrides the brightest pixel of ``binned`` for ``image_max`` exposure, e.g.
        when ``binned`` is a crop of a larger image whose exposure was set on the whole image.
        """
        cfg = self.config
        if cfg.max_photons is None:
            raise ValueError("photon scaling needs DetectorConfig.max_photons")
        if cfg.photon_reference == "unit_intensity":
            ref = torch.ones(binned.shape[0], 1, 1, device=binned.device, dtype=binned.dtype)
        elif reference is not None:
            ref = reference.detach().reshape(-1, 1, 1).to(binned.dtype).clamp_min(1e-12)
        else:
            ref = binned.detach().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        return cfg.max_photons / ref

    def add_noise(self, binned: torch.Tensor, mode: NoiseMode, generator: torch.Generator | None = None,
                  reference: torch.Tensor | None = None) -> torch.Tensor:
        """Apply shot and read noise to a batch of binned intensities; returns intensity units."""
        cfg = self.config
        if mode == "none" or not cfg.noisy:
            return binned
        scale = self.photon_scale(binned, reference)
        counts = sample_counts(binned.clamp_min(0) * scale, mode, cfg.read_noise_e, generator)
        return counts / scale
