"""Designed Fourier-plane filters, as exact initialisations of the learnable Fourier filter (LFF).

Both are written in the LFF's own parametrisation (``t = sigmoid(a)·exp(i·p)`` inside the pupil), so a
learned filter can start from them; amplitudes of exactly 0 or 1 are clamped to the logits ∓12, i.e.
the represented amplitude is within :data:`AMPLITUDE_TOLERANCE` (6.2e-6) of the design.

- ``"zernike"``: phase contrast. The DC region (a disc of ``dc_radius_px`` frequency pixels around DC;
  one frequency pixel is 1/(N·dx), N = ``filter_size_px``) is attenuated to amplitude ``a`` (default
  0.5) and shifted by +π/2; everything else passes. A weak phase object φ (zero mean, spectrum outside
  the DC region) gives I ≈ a² + 2a·φ (bright where the phase is high), periodic in φ for thick objects.
- ``"knife_edge"``: asymmetric amplitude mask, phase 0. The amplitude rises linearly across the pupil
  along one diagonal, t(f) = (1 + f·u/ρ)/2 with ρ = NA/λ the pupil radius and u the unit vector at
  ``direction_deg`` (45°: the diagonal +x +y), from 0 at one edge of the pupil to 1 at the other. A plane
  wave tilted by the local phase gradient k = ∇φ/2π passes with |t(k)|², which rises monotonically with
  the gradient along u: the camera reads phase gradients, not folded levels.
- ``"dpc"``: the same ramp made steeper, rising from 0 to 1 over |f·u| ≤ ``DPC_RAMP_NA``/λ and clamped
  beyond (a half-plane knife edge for fine detail). As in differential phase contrast, whose sensitivity
  the illumination NA sets, a steeper ramp reads the gentle gradients of cells (0.1–2 rad/µm) with
  ~NA/DPC_RAMP_NA times the contrast (4x at NA 1), and saturates only above 2π·DPC_RAMP_NA/λ ≈ 2.5 rad/µm.
"""

from __future__ import annotations

import math

import torch

from .grids import frequency_grid

#: amplitude logit of a fully open (sigmoid(12) = 1 − 6.1e-6) or closed (6.1e-6) bin
ALL_PASS_LOGIT = 12.0
#: largest difference between a designed amplitude and the one its clamped logit represents
AMPLITUDE_TOLERANCE = 6.2e-6
#: the designed filters (``init=`` of the LFF)
DESIGNED_FILTERS = ("zernike", "knife_edge", "dpc")
#: defaults of the designs
ZERNIKE_AMPLITUDE = 0.5
ZERNIKE_PHASE_RAD = math.pi / 2
ZERNIKE_DC_RADIUS_PX = 1.0
KNIFE_EDGE_DIRECTION_DEG = 45.0
#: NA over which the ``dpc`` ramp rises from 0 to 1 (``knife_edge``: the whole pupil)
DPC_RAMP_NA = 0.25


def designed_transmission(config, kind: str, *, amplitude: float = ZERNIKE_AMPLITUDE,
                          phase_step_rad: float = ZERNIKE_PHASE_RAD, dc_radius_px: float = ZERNIKE_DC_RADIUS_PX,
                          direction_deg: float = KNIFE_EDGE_DIRECTION_DEG) -> tuple[torch.Tensor, torch.Tensor]:
    """(amplitude, phase_rad) of a designed filter on the centred N × N grid of an LFF ``config``
    (pupil not applied; the LFF multiplies by its pupil)."""
    n = config.filter_size_px
    fy, fx = frequency_grid((n, n), config.grid.pixel_size_um, centered=True)
    if kind == "zernike":
        if not 0 <= amplitude <= 1:
            raise ValueError(f"Zernike DC amplitude {amplitude} must lie in [0, 1]")
        if dc_radius_px < 0:
            raise ValueError(f"dc_radius_px {dc_radius_px} must be >= 0 (0: the DC bin alone)")
        df = 1.0 / (n * config.grid.pixel_size_um)  # one frequency pixel, cycles/µm
        dc = (fx ** 2 + fy ** 2) <= (dc_radius_px * df) ** 2 * (1 + 1e-9)
        amp = torch.where(dc, torch.tensor(float(amplitude)), torch.tensor(1.0))
        phase = torch.where(dc, torch.tensor(float(phase_step_rad)), torch.tensor(0.0))
        return amp, phase
    if kind in ("knife_edge", "dpc"):
        na = config.pupil_na if config.pupil_na is not None else 1.0
        radius = (na if kind == "knife_edge" else min(DPC_RAMP_NA, na)) / config.grid.wavelength_um
        angle = math.radians(direction_deg)
        along = (fx * math.cos(angle) + fy * math.sin(angle)) / radius
        amp = ((1 + along) / 2).clamp(0, 1)
        return amp, torch.zeros(n, n)
    raise ValueError(f"unknown designed filter {kind!r}; use one of {', '.join(DESIGNED_FILTERS)}")


def designed_logits(config, kind: str, **design) -> tuple[torch.Tensor, torch.Tensor]:
    """(amplitude logit, phase_rad) of a designed filter: the LFF parameters that represent it."""
    amp, phase = designed_transmission(config, kind, **design)
    lo = 1 / (1 + math.exp(ALL_PASS_LOGIT))
    logit = torch.logit(amp.clamp(lo, 1 - lo).double()).float().clamp(-ALL_PASS_LOGIT, ALL_PASS_LOGIT)
    return logit, phase.float()
