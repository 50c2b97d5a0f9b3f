"""PhaseD2NN: a stack of phase-only diffractive layers in free space.

Geometry (paper defaults, λ 632.8 nm, neurons 316.4 nm = λ/2, 256² neurons = 81 µm aperture):
sample → 3.373 µm → layer 1 → 3.373 µm → … → layer n → 5.904 µm → detector. Every hop is an angular
spectrum propagation zero padded ×``pad_factor`` and cropped back to the layer aperture.

Each layer i carries a learnable positive output power P_i (softplus, initialised to 1) used by the
progressive schedule of the paper's Algorithm 1: when only the first i layers are active, the detector
sits ``output_distance_um`` behind layer i and records P_i·|E|². With all layers active P_n is the
system's output power.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import DiffractiveConfig
from .grids import as_batch, require_complex
from .propagation import AngularSpectrum

_SOFTPLUS_ONE = math.log(math.e - 1.0)  # softplus(x) = 1


class PhaseD2NN(nn.Module):
    """Diffractive optical network; ``forward(field, n_active)`` returns the detector-plane field."""

    def __init__(self, config: DiffractiveConfig | None = None, *, init: str = "random",
                 generator: torch.Generator | None = None):
        super().__init__()
        self.config = cfg = config or DiffractiveConfig()
        n = cfg.n_neurons
        shape = (cfg.n_layers, n, n)
        if init == "random":  # the authors' initialisation: phase ~ N(0, 1) rad
            phase = torch.randn(shape, generator=generator)
        elif init == "zeros":
            phase = torch.zeros(shape)
        else:
            raise ValueError(f"unknown init '{init}' for a PhaseD2NN; use 'random' or 'zeros' (the designed "
                             "filters zernike, knife_edge and dpc are Fourier filters: LFF presets only)")
        self.phase_rad = nn.Parameter(phase)
        if cfg.mode == "amplitude_phase":
            self.amplitude_logit = nn.Parameter(torch.full(shape, 3.0))
        else:
            self.register_parameter("amplitude_logit", None)
        self.power_logit = nn.Parameter(torch.full((cfg.n_layers,), _SOFTPLUS_ONE))
        grid = dict(pixel_size_um=cfg.grid.pixel_size_um, wavelength_um=cfg.grid.wavelength_um,
                    pad_factor=cfg.pad_factor, band_limit=cfg.band_limit)
        self.to_first = AngularSpectrum(cfg.input_distance_um, **grid)
        self.between = AngularSpectrum(cfg.layer_spacing_um, **grid)
        self.to_detector = AngularSpectrum(cfg.output_distance_um, **grid)

    @property
    def powers(self) -> torch.Tensor:
        """Positive per-layer output powers P_1 … P_n (intensity scale factors)."""
        return nn.functional.softplus(self.power_logit)

    def layer_transmission(self, index: int) -> torch.Tensor:
        amplitude = 1.0 if self.amplitude_logit is None else torch.sigmoid(self.amplitude_logit[index])
        return amplitude * torch.polar(torch.ones_like(self.phase_rad[index]), self.phase_rad[index])

    def forward(self, field: torch.Tensor, n_active: int | None = None) -> torch.Tensor:
        """Field at the detector behind layer ``n_active`` (default: all), scaled by sqrt(P_n_active)."""
        require_complex(field)
        cfg = self.config
        n_active = cfg.n_layers if n_active is None else int(n_active)
        if not 1 <= n_active <= cfg.n_layers:
            raise ValueError(f"n_active must be in 1..{cfg.n_layers}, got {n_active}")
        batch, added = as_batch(field)
        if tuple(batch.shape[-2:]) != (cfg.n_neurons, cfg.n_neurons):
            raise ValueError(
                f"the PhaseD2NN aperture is {cfg.n_neurons}×{cfg.n_neurons} neurons "
                f"({cfg.n_neurons * cfg.grid.pixel_size_um:.1f} µm); got a field of "
                f"{tuple(batch.shape[-2:])}. Split larger fields of view into tiles of this size."
            )
        x = self.to_first(batch)
        for i in range(n_active):
            x = x * self.layer_transmission(i)
            x = self.to_detector(x) if i == n_active - 1 else self.between(x)
        x = x * torch.sqrt(self.powers[n_active - 1]).to(x.dtype)
        return x[0] if added else x

    def context_px(self) -> int:
        return 0

    def layer_count(self) -> int | None:
        """The diffractive layers (Algorithm 1 trains them one by one)."""
        return int(self.config.n_layers)

    def tile_px(self) -> int | None:
        """The aperture (object pixels): a larger field of view is acquired tile by tile."""
        return int(self.config.n_neurons)
