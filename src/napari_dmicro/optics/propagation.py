"""Scalar free-space propagation by the angular spectrum method.

H(fx, fy) = exp(i·2π·z·sqrt(1/λ² − fx² − fy²)) for propagating frequencies; evanescent components
(fx² + fy² > 1/λ²) are removed. Optionally band limited (Matsushima & Shimobaba, Opt. Express 17,
19662, 2009): on a computation window of width W the transfer function is sampled without aliasing
only for |fx| < 1/(λ·sqrt((2z/W)² + 1)) (likewise fy), so frequencies outside are set to zero.
The field is zero padded by ``pad_factor`` (linear rather than circular propagation) and cropped back.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .grids import as_batch, center_crop, center_pad, frequency_grid, require_complex


def angular_spectrum_transfer(shape: tuple[int, int], pixel_size_um: float, wavelength_um: float,
                              distance_um: float, *, band_limit: bool = True) -> torch.Tensor:
    """Transfer function on an unshifted (FFT-order) grid of ``shape``; complex64 tensor.

    Computed in float64 (the phase 2πz/λ reaches thousands of radians) and cast to complex64.
    ``distance_um`` may be negative (back propagation: the conjugate of the forward function).
    """
    fy, fx = frequency_grid(shape, pixel_size_um)
    inv_lambda_sq = 1.0 / wavelength_um ** 2
    arg = inv_lambda_sq - fx ** 2 - fy ** 2
    propagating = arg > 0
    kz = torch.sqrt(torch.clamp(arg, min=0.0))
    phase = 2.0 * math.pi * distance_um * kz
    keep = propagating
    if band_limit and distance_um != 0:
        width_y_um = shape[0] * pixel_size_um
        width_x_um = shape[1] * pixel_size_um
        fy_lim = 1.0 / (wavelength_um * math.sqrt((2.0 * distance_um / width_y_um) ** 2 + 1.0))
        fx_lim = 1.0 / (wavelength_um * math.sqrt((2.0 * distance_um / width_x_um) ** 2 + 1.0))
        keep = keep & (fx.abs() < fx_lim) & (fy.abs() < fy_lim)
    transfer = torch.polar(keep.to(torch.float64), phase)
    return transfer.to(torch.complex64)


def propagate(field: torch.Tensor, distance_um: float, *, pixel_size_um: float, wavelength_um: float,
              pad_factor: int = 2, band_limit: bool = True) -> torch.Tensor:
    """Propagate a complex field ``(rows, cols)`` or ``(B, rows, cols)`` by ``distance_um``.

    ``pad_factor`` 1 gives periodic (circular) propagation on the input grid; 2 or more zero pads the
    field to ``pad_factor`` times its size so light leaving the window is not wrapped around. The
    output has the input's shape (light that left the window is lost, as through an aperture).
    """
    return AngularSpectrum(distance_um, pixel_size_um=pixel_size_um, wavelength_um=wavelength_um,
                           pad_factor=pad_factor, band_limit=band_limit)(field)


class AngularSpectrum(nn.Module):
    """Free-space propagation over ``distance_um`` as a module; caches the transfer function per size."""

    def __init__(self, distance_um: float, *, pixel_size_um: float, wavelength_um: float,
                 pad_factor: int = 2, band_limit: bool = True):
        super().__init__()
        if pad_factor < 1:
            raise ValueError(f"pad_factor must be >= 1, got {pad_factor}")
        self.distance_um = float(distance_um)
        self.pixel_size_um = float(pixel_size_um)
        self.wavelength_um = float(wavelength_um)
        self.pad_factor = int(pad_factor)
        self.band_limit = bool(band_limit)
        self._cache: dict[tuple, torch.Tensor] = {}

    def transfer(self, padded_shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        key = (padded_shape, str(device))
        if key not in self._cache:
            h = angular_spectrum_transfer(padded_shape, self.pixel_size_um, self.wavelength_um,
                                          self.distance_um, band_limit=self.band_limit)
            self._cache[key] = h.to(device)
        return self._cache[key]

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        require_complex(field)
        batch, added = as_batch(field)
        shape = tuple(batch.shape[-2:])
        padded_shape = (shape[0] * self.pad_factor, shape[1] * self.pad_factor)
        padded = center_pad(batch, padded_shape) if self.pad_factor > 1 else batch
        out = torch.fft.ifft2(torch.fft.fft2(padded) * self.transfer(padded_shape, batch.device))
        if self.pad_factor > 1:
            out = center_crop(out, shape)
        return out[0] if added else out

    def extra_repr(self) -> str:
        return (f"distance_um={self.distance_um}, pixel_size_um={self.pixel_size_um}, "
                f"wavelength_um={self.wavelength_um}, pad_factor={self.pad_factor}, "
                f"band_limit={self.band_limit}")
