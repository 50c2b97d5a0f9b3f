"""Deterministic patch evaluation for model selection (validation) and the final test.

Measurements come from the one acquisition (:class:`~napari_dmicro.optics.acquisition.Acquisition`):
for the learnable Fourier filter the whole field of view is one image (one exposure) and the fixed
patches' measurements are crops of it; a PhaseD2NN images each patch through its own aperture (one
exposure each). Noise, when the detector has it, is exact Poisson + read noise seeded by (seed, field
index): the same model scores the same on every call.
Metrics are per patch and averaged per patch ("patch metrics"), predictions clipped to [0, 1].
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ..metrics import psnr, ssim
from .data import FieldSet, FixedPatch

_EVAL_STREAM = 7  # generator stream reserved for evaluation noise


def _field_seed(seed: int, field_index: int) -> int:
    """Noise seed of the acquisition of evaluation field ``field_index``."""
    return int(np.random.SeedSequence([seed, _EVAL_STREAM, field_index]).generate_state(1)[0])


@torch.no_grad()
def simulate_patches(model, fieldset: FieldSet, patches: list[FixedPatch], patch_px: int, seed: int,
                     device, *, need_intensity: bool = False, optics_kwargs: dict | None = None):
    """Measurements (N, p/b, p/b), targets (N, p, p) and optionally full-resolution intensities, as the
    microscope records them (:meth:`Acquisition.acquire_patches`: crops of the one full-field exposure,
    or one aperture exposure per patch)."""
    encoder = model.encoder
    acquisition = encoder.acquisition()
    noise = "exact" if acquisition.noisy else "none"
    by_field: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(patches):
        by_field[p.field_index].append(i)
    b = acquisition.binning
    n = len(patches)
    meas = torch.empty(n, patch_px // b, patch_px // b)
    targets = torch.empty(n, patch_px, patch_px)
    intens = torch.empty(n, patch_px, patch_px) if need_intensity else None
    for k, idx in by_field.items():
        corners = [(patches[i].top, patches[i].left) for i in idx]
        m, inten = acquisition.acquire_patches(fieldset.fields[k], corners, patch_px, noise=noise,
                                               seed=_field_seed(seed, k), device=device,
                                               keep_intensity=need_intensity, **(optics_kwargs or {}))
        for j, i in enumerate(idx):
            top, left = corners[j]
            meas[i] = m[j]
            if intens is not None:
                intens[i] = inten[j]
            targets[i] = torch.from_numpy(fieldset.targets[k][top:top + patch_px, left:left + patch_px])
    return meas, targets, intens


def _patch_metrics(pred: torch.Tensor, target: torch.Tensor, prefix: str = "") -> dict[str, float]:
    l1 = (pred - target).abs().mean(dim=(-2, -1))
    clipped = pred.clamp(0, 1)
    return {f"{prefix}l1": float(l1.mean()), f"{prefix}psnr_db": float(psnr(clipped, target).mean()),
            f"{prefix}ssim": float(ssim(clipped, target).mean())}


@torch.no_grad()
def evaluate_patches(model, fieldset: FieldSet, patches: list[FixedPatch], patch_px: int, seed: int,
                     device, *, optical: bool = True, decoder: bool = True, batch_size: int = 16,
                     optics_kwargs: dict | None = None) -> dict:
    """Patch metrics: ``optical_*`` (all-optical intensity vs φ/2π) and/or decoder ``l1/psnr_db/ssim``."""
    was_training = model.training
    model.eval()
    try:
        meas, targets, intens = simulate_patches(model, fieldset, patches, patch_px, seed, device,
                                                 need_intensity=optical, optics_kwargs=optics_kwargs)
        out: dict[str, float] = {"patches": len(patches)}
        if optical:
            out.update(_patch_metrics(intens, targets, "optical_"))
        if decoder:
            preds = torch.cat([model.decode(meas[i:i + batch_size].to(device)).cpu()
                               for i in range(0, len(meas), batch_size)])
            out.update(_patch_metrics(preds, targets))
        return out
    finally:
        model.train(was_training)
