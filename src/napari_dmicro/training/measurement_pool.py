"""Stage 2's inputs: whole acquisitions simulated once with the frozen optics, sampled as camera crops."""

from __future__ import annotations

import numpy as np
import torch

from . import data as D


class MeasurementPool:
    """Stage 2 inputs with the optics frozen, simulated once through the acquisition.

    The pool holds whole raw acquisitions (noise free, before the flat field) with their photon reference:
    full field — every training field (in its four flips) as one image; tiled — a bank of random aperture
    patches. A sample is a camera-aligned crop of one (tiled: the whole aperture), exactly what the microscope records;
    noise is added per sample from the step's generator with the acquisition's photon reference.
    """

    def __init__(self, trainer):
        cfg = trainer.config
        self.acq, self.device = trainer.acquisition, trainer.device
        self.b = self.acq.binning
        self.patch = cfg.data.patch_px
        self.cameras: list[torch.Tensor] = []   # usable noise-free camera image of each acquisition
        self.targets: list[np.ndarray] = []     # φ/2π over the same object pixels
        self.references: list[float] = []      # brightest camera pixel of the whole acquisition
        self.weights: list[float] | None = None  # sampling probability of each acquisition (None: uniform)
        fieldset = trainer.train_set
        self.augment = fieldset.augment       # only its thick-crop sampling applies to stored acquisitions
        with torch.no_grad():  # the optics are frozen: one flat field for the whole stage
            self.flat = self.acq.flat_camera(self.device) if self.acq.flat_field else None
            if self.acq.tile_px is None:
                self._add_full_fields(trainer.train_set, cfg.data.flips)
            else:
                self._add_bank(trainer.train_set, cfg)

    def _add_full_fields(self, fieldset: D.FieldSet, flips: bool) -> None:
        variants = ((False, False), (True, False), (False, True), (True, True)) if flips else ((False, False),)
        if fieldset.weights is not None:  # the field's weight shared by its flipped acquisitions
            self.weights = [float(w) / len(variants) for w in fieldset.weights for _ in variants]
        for field, target in zip(fieldset.fields, fieldset.targets, strict=True):
            for fr, fc in variants:
                acq = self.acq.acquire_field(D.flip(field, fr, fc), device=self.device, apply_flat=False)
                rows, cols = field.shape[0] // self.b, field.shape[1] // self.b
                self.cameras.append(torch.from_numpy(acq.camera[:rows, :cols].copy()))
                self.targets.append(np.ascontiguousarray(D.flip(target, fr, fc)))
                self.references.append(acq.photon_reference)

    def _add_bank(self, fieldset: D.FieldSet, cfg) -> None:
        self.augment = None  # the bank's crops were drawn with the weights and thick sampling already
        rng = np.random.default_rng([cfg.seed, 2, 10 ** 6])
        bank = D.sample_training_patches(fieldset, rng, cfg.data.d2nn_bank_size, self.patch, 0, cfg.data.flips)
        for i in range(0, len(bank.regions), 8):
            cams = self.acq.camera_image(torch.from_numpy(bank.regions[i:i + 8]).to(self.device)).cpu()
            for cam, target in zip(cams, bank.targets[i:i + 8], strict=True):
                self.cameras.append(cam)
                self.targets.append(target)
                self.references.append(max(float(cam.max()), 1e-12))  # each aperture is one exposure

    def all_measurements(self) -> torch.Tensor:
        """Every noise-free camera pixel of the pool (flattened)."""
        return torch.cat([c.flatten() for c in self.cameras])

    def sample(self, rng, batch: int, noise_gen):
        h = self.patch // self.b
        meas, targets, refs = [], [], []
        aug = self.augment
        for _ in range(batch):
            for _attempt in range(D.THICK_MAX_TRIES):
                u = int(rng.integers(len(self.cameras))) if self.weights is None else \
                    int(rng.choice(len(self.cameras), p=self.weights))
                cam = self.cameras[u]
                top = int(rng.integers(cam.shape[0] - h + 1))
                left = int(rng.integers(cam.shape[1] - h + 1))
                t0, l0 = top * self.b, left * self.b
                target = self.targets[u][t0:t0 + self.patch, l0:l0 + self.patch]
                if aug is None or not aug.thick_weight or D.keep_thick(rng, target, aug):
                    break
            meas.append(cam[top:top + h, left:left + h])
            refs.append(self.references[u])
            targets.append(torch.from_numpy(np.ascontiguousarray(target)))
        meas_t = torch.stack(meas).to(self.device)
        if self.acq.noisy or self.flat is not None:  # raw exposures: noise, then the flat field
            meas_t = self.acq.expose(meas_t, "exact" if self.acq.noisy else "none", noise_gen,
                                     torch.tensor(refs, dtype=torch.float32, device=self.device), self.flat)
        return meas_t, torch.stack(targets).to(self.device)
