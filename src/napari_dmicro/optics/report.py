"""How far trained optics moved from their initialisation, and how much light they pass.

- :func:`optics_movement`: correlation of the phase masks with their initialisation, mean |Δphase|
  (wrapped to (−π, π]) overall and, for the Fourier filter, above NA 0.25 (inside the pupil), and the
  mean |Δamplitude|;
- :func:`light_throughput`: the fraction of the object-plane energy that reaches the camera, for a
  blank (unit) field or any field; the PhaseD2NN's learned output power (a gain, not optics) is removed.
"""

from __future__ import annotations

import math

import torch

from .grids import frequency_grid

#: the Fourier filter's movement is also reported above this NA (the object spectra are weak there)
HIGH_NA = 0.25


def _wrapped(delta: torch.Tensor) -> torch.Tensor:
    return torch.remainder(delta + math.pi, 2 * math.pi) - math.pi


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 else float("nan")


def _optics(model):
    """The optics module of a Microscope, an Encoder or the optics themselves."""
    for attr in ("encoder", "optics"):
        if hasattr(model, attr) and isinstance(getattr(model, attr), torch.nn.Module):
            model = getattr(model, attr)
    return model


@torch.no_grad()
def optics_movement(model, init_model) -> dict:
    """Movement of ``model``'s optics from ``init_model``'s (same architecture): a dict of floats.

    Keys: ``phase_corr`` (Pearson correlation of the phase masks), ``mean_abs_dphase_rad`` (wrapped),
    ``amplitude_corr`` and ``mean_abs_damplitude`` (when amplitudes are learned); the Fourier filter
    restricts all of these to its pupil and adds ``mean_abs_dphase_above_na_rad`` (NA > 0.25); the
    PhaseD2NN adds ``layer_phase_corr`` and ``layer_mean_abs_dphase_rad`` (one per layer; a correlation with a
    flat, all-pass start is undefined: NaN).
    """
    new, old = _optics(model), _optics(init_model)
    if type(new) is not type(old) or new.phase_rad.shape != old.phase_rad.shape:
        raise ValueError("optics_movement needs two optics of the same kind and shape")
    select = torch.ones_like(new.phase_rad, dtype=torch.bool)
    high = None
    if hasattr(new, "pupil"):
        select = new.pupil > 0
        cfg = new.config
        n = cfg.filter_size_px
        fy, fx = frequency_grid((n, n), cfg.grid.pixel_size_um, centered=True)
        high = select & ((fx ** 2 + fy ** 2).sqrt() * cfg.grid.wavelength_um > HIGH_NA)
    dphase = _wrapped(new.phase_rad - old.phase_rad)
    out = {"phase_corr": _corr(new.phase_rad[select], old.phase_rad[select]),
           "mean_abs_dphase_rad": float(dphase[select].abs().mean())}
    if high is not None:
        out["mean_abs_dphase_above_na_rad"] = float(dphase[high].abs().mean())
    if new.amplitude_logit is not None and old.amplitude_logit is not None:
        a_new, a_old = torch.sigmoid(new.amplitude_logit), torch.sigmoid(old.amplitude_logit)
        out["amplitude_corr"] = _corr(a_new[select], a_old[select])
        out["mean_abs_damplitude"] = float((a_new - a_old)[select].abs().mean())
    if new.phase_rad.ndim == 3:
        out["layer_phase_corr"] = [_corr(p, q) for p, q in zip(new.phase_rad, old.phase_rad, strict=True)]
        out["layer_mean_abs_dphase_rad"] = [float(d.abs().mean()) for d in dphase]
    return out


@torch.no_grad()
def light_throughput(encoder, field=None, *, size_px: int | None = None) -> float:
    """Energy at the camera / energy of the object field (the fraction of light the optics pass).

    ``field``: a 2-D complex field (default: a blank unit field of ``size_px``, by default the aperture
    of tiled optics or 256 px). The Fourier filter is applied with its context (the field continued by
    the encoder's ``outside_field`` rule); the PhaseD2NN's learned output power is divided out.
    """
    from .acquisition import _complex_tensor
    from .grids import crop_with_surroundings

    optics = _optics(encoder)
    tile = optics.tile_px()
    if field is None:
        side = size_px or tile or 256
        field = torch.ones(side, side, dtype=torch.complex64)
    field = _complex_tensor(field)
    if field.ndim != 2:
        raise ValueError(f"light_throughput needs one 2-D field, got shape {tuple(field.shape)}")
    if tile is not None and tuple(field.shape) != (tile, tile):
        raise ValueError(f"tiled optics image one {tile}² aperture at a time; got {tuple(field.shape)}")
    device = next(optics.parameters()).device
    ctx = int(optics.context_px())
    rows, cols = field.shape
    outside = getattr(getattr(encoder, "config", None), "outside_field", "reflect")
    region = crop_with_surroundings(field, -ctx, -ctx, rows + 2 * ctx, cols + 2 * ctx, outside) if ctx else field
    out = optics(region.to(device))
    if ctx:
        out = out[ctx:-ctx, ctx:-ctx]
    energy = float((out.abs() ** 2).sum())
    if hasattr(optics, "powers"):
        energy /= float(optics.powers[-1])
    return energy / float((field.abs() ** 2).sum())
