"""Learnable Fourier filter (LFF) in a 4f system.

The Fourier-plane mask is sampled on an ``N × N`` grid (``N = filter_size_px``) at frequency pitch
1/(N·dx), DC at index N/2: t = sigmoid(a)·exp(i·p) inside a circular pupil of radius NA/λ
(``mode="phase"`` fixes |t| = 1). Its point-spread function is the N × N inverse DFT of t.

- ``convolution="linear"`` (default): the PSF is applied as a linear (zero padded) convolution to a
  field of any size. A whole field of view is then one physical image, and a crop's output equals the
  same region of the full-field output as long as the crop carries N/2 pixels of context.
- ``convolution="circular"``: the authors' periodic model on an N × N input, kept for comparison.

The 4f image inversion (x → −x) is not modelled: it is equivalent to reading the camera rotated by 180°.

Initialisations (``init=``): ``"random"`` (the paper: both logits ~ N(0, 1)), ``"all_pass"``, and two
designed filters that the learned optics can start from (:mod:`.designed_filters`): ``"zernike"``
(phase contrast) and ``"knife_edge"`` and ``"dpc"`` (asymmetric, phase gradient → intensity; ``dpc`` a steeper ramp).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import FourierFilterConfig
from .designed_filters import ALL_PASS_LOGIT, DESIGNED_FILTERS, designed_logits
from .grids import as_batch, frequency_grid, require_complex

#: sigmoid(12) = 1 − 6e-6: the amplitude logit used for an all-pass filter.
_ALL_PASS_LOGIT = ALL_PASS_LOGIT
#: every accepted ``init``
LFF_INITS = ("random", "all_pass", *DESIGNED_FILTERS)


class LearnableFourierFilter(nn.Module):
    """4f system with a learnable complex Fourier-plane mask; maps a complex field to a complex field."""

    def __init__(self, config: FourierFilterConfig | None = None, *, init: str = "random",
                 generator: torch.Generator | None = None):
        super().__init__()
        self.config = config or FourierFilterConfig()
        n = self.config.filter_size_px
        if init == "random":  # as in the paper: both logits ~ N(0, 1)
            amp = torch.randn(n, n, generator=generator)
            phase = torch.randn(n, n, generator=generator)
        elif init == "all_pass":
            amp = torch.full((n, n), _ALL_PASS_LOGIT)
            phase = torch.zeros(n, n)
        elif init in DESIGNED_FILTERS:
            if self.config.mode != "amplitude_phase":
                raise ValueError(f"init '{init}' needs an amplitude mask: use mode='amplitude_phase'")
            amp, phase = designed_logits(self.config, init)
        else:
            raise ValueError(f"unknown init '{init}'; use one of {', '.join(LFF_INITS)}")
        self.phase_rad = nn.Parameter(phase)
        if self.config.mode == "amplitude_phase":
            self.amplitude_logit = nn.Parameter(amp)
        else:
            self.register_parameter("amplitude_logit", None)
        self.register_buffer("pupil", self._pupil_mask(), persistent=False)

    def _pupil_mask(self) -> torch.Tensor:
        cfg = self.config
        n = cfg.filter_size_px
        if cfg.pupil_na is None:
            return torch.ones(n, n)
        fy, fx = frequency_grid((n, n), cfg.grid.pixel_size_um, centered=True)
        radius = cfg.pupil_na / cfg.grid.wavelength_um
        # a tiny tolerance keeps the bins exactly on the circle (the authors' x²+y² <= r² convention)
        return (fx ** 2 + fy ** 2 <= radius ** 2 * (1 + 1e-9)).to(torch.float32)

    def transmission(self) -> torch.Tensor:
        """Complex mask t on the centred N × N frequency grid (DC at N/2), pupil applied."""
        amplitude = torch.ones_like(self.phase_rad) if self.amplitude_logit is None else torch.sigmoid(
            self.amplitude_logit)
        return torch.polar(amplitude * self.pupil, self.phase_rad)

    def point_spread_function(self) -> torch.Tensor:
        """PSF h on an N × N grid with the origin at index (N/2, N/2); complex64."""
        t = self.transmission()
        h = torch.fft.ifft2(torch.fft.ifftshift(t))
        return torch.fft.fftshift(h)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        require_complex(field)
        batch, added = as_batch(field)
        if self.config.convolution == "circular":
            out = self._circular(batch)
        else:
            out = self._linear(batch)
        return out[0] if added else out

    def _circular(self, field: torch.Tensor) -> torch.Tensor:
        n = self.config.filter_size_px
        if tuple(field.shape[-2:]) != (n, n):
            raise ValueError(
                f"circular convolution needs a {n}×{n} field, got {tuple(field.shape[-2:])}; "
                "use convolution='linear' for fields of any size"
            )
        t = torch.fft.ifftshift(self.transmission())
        return torch.fft.ifft2(torch.fft.fft2(field) * t)

    def _linear(self, field: torch.Tensor) -> torch.Tensor:
        n = self.config.filter_size_px
        rows, cols = field.shape[-2:]
        padded = (_fast_size(rows + n), _fast_size(cols + n))
        kernel = torch.zeros(padded, dtype=torch.complex64, device=field.device)
        kernel[:n, :n] = self.point_spread_function()
        spectrum = torch.fft.fft2(field, s=padded) * torch.fft.fft2(kernel)
        out = torch.fft.ifft2(spectrum)
        half = n // 2
        return out[..., half:half + rows, half:half + cols]

    def context_px(self) -> int:
        """Pixels of context a crop needs on each side for its output to equal the full-field output."""
        return self.config.filter_size_px // 2 if self.config.convolution == "linear" else 0

    def tile_px(self) -> int | None:
        """None: the whole field of view is one image (a linear convolution with the PSF)."""
        return None

    def layer_count(self) -> int | None:
        """None: one mask, no layers to train progressively."""
        return None


def _fast_size(n: int) -> int:
    """Smallest size >= n whose only prime factors are 2, 3 and 5 (fast FFT lengths)."""
    size = n
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


def all_pass_filter(config: FourierFilterConfig | None = None) -> LearnableFourierFilter:
    """An LFF whose mask is 1 inside the pupil (identity for band-limited fields)."""
    return LearnableFourierFilter(config, init="all_pass")

