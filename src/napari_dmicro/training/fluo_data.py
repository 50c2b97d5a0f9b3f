"""Fluorescence training data: stores (image + instance labels) from a folder, split by field, random crops
for training and the deterministic whole-field evaluation (binary patterns, exact noise).

- Splits: :func:`~.data.split_by_field` on the store files (one field of view per store): a field's pixels
  are in exactly one of train / val / test, every field once (no duplicated pools, the authors' O3); two
  stores holding the same image are refused (:func:`refuse_duplicated_fields`).
- Images are normalised per field to [0, 1] by their minimum and maximum (the reconstruction target; data
  range 1); labels are int32 instance ids (0 = background; all zero for a store without labels, which
  the segmentation stages refuse).
- Every field must be at the model's pixel size (never resampled silently: the error names the fix).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..metrics import psnr, ssim
from .evaluation import _field_seed


class FluorescenceDataError(ValueError):
    """The fluorescence data cannot be used for this run; the message says why and what to do."""


def normalise_unit_range(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to [0, 1] by its minimum and maximum (float32; a constant image becomes 0)."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


@dataclass
class FluorescenceSet:
    """Fields of one split: paths, images in [0, 1] (H, W) float32, labels (H, W) int32 and which stores
    had labels."""

    paths: list[Path]
    fields: list[np.ndarray]
    labels: list[np.ndarray]
    has_labels: list[bool]
    adaptations: dict = field(default_factory=dict)
    #: probability of drawing each field for a training crop (None: uniform)
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)


def load_fluorescence_set(paths: Sequence[Path], *, pixel_size_um: float, min_side_px: int) -> FluorescenceSet:
    """Read fluorescence stores; refuses a pixel size other than the model's or a field smaller than a crop."""
    from ..io.fluorescence import read_fluorescence

    out = FluorescenceSet([], [], [], [])
    for path in paths:
        image, labels, ps = read_fluorescence(path)
        if not math.isclose(ps, pixel_size_um, rel_tol=1e-4):
            raise FluorescenceDataError(
                f"{path} is at {ps:g} µm per pixel but the model's specimen grid is {pixel_size_um:g} µm; "
                f"generate the fields at that pixel size (dmicro phantom --modality fluorescence "
                f"--pixel-size-um {pixel_size_um:g}) or use a preset at {ps:g} µm")
        if min(image.shape) < min_side_px:
            raise FluorescenceDataError(f"{path} is {image.shape[0]}×{image.shape[1]} px, smaller than the "
                                        f"{min_side_px}-px training crops; use larger fields or smaller crops")
        out.paths.append(Path(path))
        out.fields.append(normalise_unit_range(image))
        out.has_labels.append(labels is not None)
        out.labels.append(np.zeros(image.shape, np.int32) if labels is None else labels.astype(np.int32))
    return out


def fingerprint(*sets: FluorescenceSet) -> str:
    """sha256 over file names, normalised images and labels: identifies the exact data of a run."""
    h = hashlib.sha256()
    for s in sets:
        for path, image, labels in zip(s.paths, s.fields, s.labels, strict=True):
            h.update(Path(path).name.encode())
            h.update(np.ascontiguousarray(image).tobytes())
            h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def refuse_duplicated_fields(*sets: FluorescenceSet) -> None:
    """Refuse data in which two stores hold the same image (after normalisation): a duplicated field would be
    trained on twice or, across splits, leak into validation or test (the authors' O3 saved the same grids
    400 times and overlapped their val/test pools). Names the first pair found."""
    seen: dict[str, Path] = {}
    for s in sets:
        for path, image in zip(s.paths, s.fields, strict=True):
            key = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() + str(image.shape)
            if key in seen:
                raise FluorescenceDataError(
                    f"{Path(path).name} and {seen[key].name} hold the same image: a duplicated field would be "
                    "trained on twice or leak across the train/val/test split; remove one (generate distinct "
                    "fields with dmicro phantom --modality fluorescence)")
            seen[key] = Path(path)


def training_set(paths: Sequence[Path], data, **load) -> FluorescenceSet:
    """The training split plus the fields of ``data``'s (a DataConfig) extra folders (training only, never
    validated or tested on), crops drawn by its ``extra_data_weight`` (:func:`~.data.mixing_weights`)."""
    from .data import extra_field_paths, mixing_weights

    main = load_fluorescence_set(paths, **load)
    extra = load_fluorescence_set(extra_field_paths(data), **load)
    return FluorescenceSet(main.paths + extra.paths, main.fields + extra.fields, main.labels + extra.labels,
                           main.has_labels + extra.has_labels, {**main.adaptations, **extra.adaptations},
                           mixing_weights(len(main), len(extra), data.extra_data_weight))


def sample_crops(data: FluorescenceSet, rng: np.random.Generator, batch: int, patch_px: int,
                 flips: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random crops (images (B, p, p) float32, labels (B, p, p) int32), with random flips and
    transposes (all 8 orientations) when ``flips``. Fields are drawn uniformly."""
    images = np.empty((batch, patch_px, patch_px), np.float32)
    labels = np.empty((batch, patch_px, patch_px), np.int32)
    for i in range(batch):
        k = int(rng.integers(len(data))) if data.weights is None else int(rng.choice(len(data), p=data.weights))
        img, lab = data.fields[k], data.labels[k]
        top = int(rng.integers(img.shape[0] - patch_px + 1))
        left = int(rng.integers(img.shape[1] - patch_px + 1))
        ci, cl = img[top:top + patch_px, left:left + patch_px], lab[top:top + patch_px, left:left + patch_px]
        if flips:
            fr, fc, tr = (bool(b) for b in rng.integers(0, 2, size=3))
            ci, cl = ci[::-1 if fr else 1, ::-1 if fc else 1], cl[::-1 if fr else 1, ::-1 if fc else 1]
            if tr:
                ci, cl = ci.T, cl.T
        images[i], labels[i] = ci, cl
    return images, labels


def evaluation_view(image: np.ndarray, period_px: int) -> tuple[slice, slice]:
    """The part of a field the evaluation measures: its top-left corner, cut to whole pattern periods."""
    rows, cols = (s // period_px * period_px for s in image.shape)
    if rows == 0 or cols == 0:
        raise FluorescenceDataError(f"a field of {image.shape} px is smaller than one pattern period "
                                    f"({period_px} px)")
    return slice(0, rows), slice(0, cols)


@torch.no_grad()
def evaluate_fluorescence(model, data: FluorescenceSet, seed: int, device, *, segmentation: bool | None = None,
                          min_size_px: int = 0) -> dict:
    """Whole-field metrics as the microscope is deployed: BINARY patterns, exact Poisson + read noise
    (when the detector has photons) seeded by (seed, field index), the decoder's image clipped to [0, 1].
    Image metrics (l1, psnr_db, ssim) are averaged over fields; with a segmentation head and labelled
    fields also foreground Dice and IoU-matched F1 at 0.5 (instances from :func:`instance_labels`)."""
    from ..decoders.locality import instance_labels
    from ..segmentation_metrics import dice, matched_f1

    segmentation = model.has_seg_head if segmentation is None else segmentation
    was_training = model.training
    model.eval()
    try:
        noisy = model.config.encoder.detector.noisy
        rows: list[dict] = []
        for k, image in enumerate(data.fields):
            view = evaluation_view(image, model.encoder.period_px)
            x = torch.from_numpy(np.ascontiguousarray(image[view]))[None].to(device)
            gen = torch.Generator(device=device).manual_seed(_field_seed(seed, k))
            meas = model.measure(x, noise="exact" if noisy else "none", generator=gen, binary=True)
            pred, logits = model.decode_all(meas)
            clipped = pred.clamp(0, 1)
            row = {"l1": float((pred - x).abs().mean()), "psnr_db": float(psnr(clipped, x)[0]),
                   "ssim": float(ssim(clipped, x)[0])}
            if segmentation and logits is not None and data.has_labels[k]:
                labels = instance_labels(logits[0, 0], logits[0, 1], min_size_px=min_size_px,
                                         pixel_size_um=model.config.encoder.pixel_size_um)
                truth = data.labels[k][view]
                row.update(dice=dice(labels, truth), f1=matched_f1(labels, truth)["f1"])
            rows.append(row)
        out: dict = {"fields": len(rows), "patterns": "binary", "noise": "exact" if noisy else "none"}
        for key in ("l1", "psnr_db", "ssim", "dice", "f1"):
            values = [r[key] for r in rows if key in r]
            if values:
                out[key] = float(np.mean(values))
        return out
    finally:
        model.train(was_training)


__all__ = ["FluorescenceDataError", "FluorescenceSet", "evaluate_fluorescence", "evaluation_view", "fingerprint",
           "load_fluorescence_set", "normalise_unit_range", "refuse_duplicated_fields", "sample_crops",
           "training_set"]
