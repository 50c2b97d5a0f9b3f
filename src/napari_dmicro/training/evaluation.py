"""Deterministic patch evaluation for model selection (validation) and the final test.

For the learnable Fourier filter the whole field of view is simulated as one image and the fixed
patches' measurements are crops of it (so they are what a camera would record). A PhaseD2NN images
each patch through its own aperture. Noise, when the detector has it, is exact Poisson + read noise
from a generator seeded by (seed, field index): the same model scores the same on every call.
Metrics are per patch and averaged per patch ("patch metrics"), predictions clipped to [0, 1].
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ..metrics import psnr, ssim
from .data import FieldSet, FixedPatch

_EVAL_STREAM = 7  # generator stream reserved for evaluation noise


def _exact_noise_generator(seed: int, field_index: int, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, _EVAL_STREAM, field_index]).generate_state(1)[0]))
    return g


@torch.no_grad()
def simulate_patches(model, fieldset: FieldSet, patches: list[FixedPatch], patch_px: int, seed: int,
                     device, *, need_intensity: bool = False, optics_kwargs: dict | None = None):
    """Measurements (N, p/b, p/b), targets (N, p, p) and optionally full-resolution intensities."""
    encoder = model.encoder
    b = encoder.config.detector.binning
    noise = "exact" if encoder.config.detector.noisy else "none"
    by_field: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(patches):
        by_field[p.field_index].append(i)
    n = len(patches)
    meas = torch.empty(n, patch_px // b, patch_px // b)
    targets = torch.empty(n, patch_px, patch_px)
    intens = torch.empty(n, patch_px, patch_px) if need_intensity else None
    for k, idx in by_field.items():
        field = fieldset.fields[k]
        gen = _exact_noise_generator(seed, k, device)
        if encoder.config.optics.kind == "lff":
            rows, cols = (field.shape[0] // b) * b, (field.shape[1] // b) * b
            det_field = encoder.full_field_detector(torch.from_numpy(field).to(device))[:rows, :cols]
            intensity = encoder.detector.intensity(det_field)
            full_meas = encoder.detector.add_noise(encoder.detector.demagnify(intensity[None]), noise, gen)[0]
            for i in idx:
                p = patches[i]
                meas[i] = full_meas[p.top // b:(p.top + patch_px) // b, p.left // b:(p.left + patch_px) // b].cpu()
                if intens is not None:
                    intens[i] = intensity[p.top:p.top + patch_px, p.left:p.left + patch_px].cpu()
        else:  # one acquisition per patch through the diffractive aperture
            crops = np.stack([field[patches[i].top:patches[i].top + patch_px,
                                    patches[i].left:patches[i].left + patch_px] for i in idx])
            det_field = encoder.optics(torch.from_numpy(crops).to(device), **(optics_kwargs or {}))
            intensity = encoder.detector.intensity(det_field)
            m = encoder.detector.add_noise(encoder.detector.demagnify(intensity), noise, gen)
            for j, i in enumerate(idx):
                meas[i] = m[j].cpu()
                if intens is not None:
                    intens[i] = intensity[j].cpu()
        for i in idx:
            p = patches[i]
            targets[i] = torch.from_numpy(fieldset.targets[k][p.top:p.top + patch_px, p.left:p.left + patch_px])
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
