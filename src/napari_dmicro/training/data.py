"""Training data: fields from a folder, split by field of view, patches for training and evaluation.

- Splits are by file (one field of view per file): a field's patches never appear in two splits.
- Training patches are random ``patch_px`` crops with random flips, drawn from a generator seeded by
  (seed, stage, step): the batch of step k is the same whether or not the run was resumed.
- Validation and test patches are a fixed grid of n × n patches per field, aligned to the camera
  pixels, so their measurements are exact crops of the full-field measurement.
- Options of :class:`~napari_dmicro.training.config.DataConfig` (all off by default: an old run draws
  exactly the same crops): targets in the background-referenced phase convention, extra folders of
  the user's fields mixed into the training split with a weight, 90° rotations (the transposed fields
  join the training set as views, so a crop still names the whole field it is cut from), amplitude and
  phase scaling of crops, and sampling that prefers crops with thick (> 3 rad) pixels.
- Crops carry ``context_px`` of surrounding field (beyond the field's edge: the encoder's
  ``outside_field`` rule, :func:`~napari_dmicro.optics.grids.crop_with_surroundings`) so a crop's
  simulated measurement equals the same region of the full-field measurement (learnable Fourier filter),
  and name the field they come from so they are exposed as part of its acquisition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np

from ..optics.grids import crop_with_surroundings

FIELD_SUFFIXES = (".zarr", ".npy", ".npz")


def discover_fields(data_dir) -> list[Path]:
    """Field files (.zarr stores, .npy, .npz) directly inside ``data_dir``, sorted by name."""
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{root} is a file; give a folder of field files (.zarr, .npy, .npz)")
    paths = sorted(p for p in root.iterdir() if p.suffix in FIELD_SUFFIXES and not p.name.startswith("."))
    if not paths:
        raise ValueError(f"no field files (.zarr, .npy, .npz) in {root}; generate some with "
                         f"`dmicro phantom --out {root} --count 40`")
    return paths


def split_by_field(paths: list[Path], val_fraction: float, test_fraction: float,
                   seed: int) -> dict[str, list[Path]]:
    """Shuffle files with ``seed`` and cut them into train / val / test (at least one each if >= 3)."""
    order = list(paths)
    np.random.default_rng([seed, 4]).shuffle(order)
    n = len(order)
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 and n >= 3 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 and n >= 3 else 0
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} field(s) are too few to split into train/val/test; add fields")
    return {"val": sorted(order[:n_val]), "test": sorted(order[n_val:n_val + n_test]),
            "train": sorted(order[n_val + n_test:])}


@dataclass(frozen=True)
class Augment:
    """Per-crop augmentations of training patches (None / 0: off)."""

    amplitude_scale: tuple[float, float] | None = None
    phase_scale: tuple[float, float] | None = None
    thick_weight: float = 0.0
    thick_threshold_rad: float = 3.0

    @classmethod
    def of(cls, data) -> Augment:
        return cls(data.amplitude_scale, data.phase_scale, data.thick_weight, data.thick_threshold_rad)


@dataclass
class FieldSet:
    """Fields held in memory (complex64) with their phase targets φ/2π (``absolute``: in [0, 1);
    ``background``: background-referenced, unwrapped). ``weights``: sampling probability of each field
    (None: uniform); ``augment``: per-crop augmentations of training patches (None: none)."""

    paths: list[Path]
    fields: list[np.ndarray]
    targets: list[np.ndarray]
    weights: np.ndarray | None = None
    augment: Augment | None = None
    #: fields brought to the model's grid (path → what was done; napari_dmicro.model_grid)
    adaptations: dict = dc_field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fields)


def phase_target(field: np.ndarray, phase_reference: str = "absolute") -> np.ndarray:
    """The training target of a field, φ/2π (float32): φ mod 2π, or background-referenced unwrapped φ."""
    if phase_reference == "absolute":
        return (np.mod(np.angle(field), 2 * np.pi) / (2 * np.pi)).astype(np.float32)
    if phase_reference == "background":
        from ..phase_reference import referenced_phase_rad

        return (referenced_phase_rad(field) / np.float32(2 * np.pi)).astype(np.float32)
    raise ValueError(f"phase_reference {phase_reference!r}: use 'absolute' or 'background'")


def load_fieldset(paths: list[Path], *, pixel_size_um: float, wavelength_um: float,
                  min_side_px: int, phase_reference: str = "absolute") -> FieldSet:
    """Read fields, bring those of another grid to the model's by the one rule of simulate and reconstruct
    (:mod:`napari_dmicro.model_grid`: resampled, phase rescaled for another wavelength; what was done is in
    ``FieldSet.adaptations``, as is every file read on the model's grid because it records no scale);
    refuse what that rule refuses and fields smaller than a patch."""
    from ..io.fields import read_field
    from ..model_grid import plan_on_grid, to_model_grid

    fields, targets, adaptations = [], [], {}
    for path in paths:
        image = read_field(path)
        field = np.asarray(image.data).astype(np.complex64)
        if field.ndim != 2:
            raise ValueError(f"{path}: a stack of {field.shape[0]} fields; training reads 2-D fields, one per file "
                             "(write each plane to its own file)")
        try:
            plan = plan_on_grid(field, pixel_size_um=image.pixel_size_um, wavelength_um=image.wavelength_um,
                                model_pixel_size_um=pixel_size_um, model_wavelength_um=wavelength_um)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if not plan.identity:
            field = to_model_grid(field, plan)
            adaptations[str(path)] = plan.describe()
        elif image.attrs.get("defaults_used"):  # recorded, not silent: the file gives no scale
            adaptations[str(path)] = (f"records no {' or '.join(image.attrs['defaults_used'])}: read as on the model's "
                                      f"grid ({pixel_size_um:g} µm, λ {wavelength_um:g} µm)")
        if min(field.shape) < min_side_px:
            raise ValueError(f"{path}: {field.shape[0]}×{field.shape[1]} px is smaller than one "
                             f"{min_side_px}-px training patch")
        fields.append(field)
        targets.append(phase_target(field, phase_reference))
    return FieldSet(list(paths), fields, targets, adaptations=adaptations)


def extra_field_paths(data) -> list[Path]:
    """The fields of a DataConfig's ``extra_data`` folders (training only)."""
    return [p for folder in data.extra_data for p in discover_fields(folder)]


def mixing_weights(n_main: int, n_extra: int, extra_weight: float | None) -> np.ndarray | None:
    """Per-field probabilities of drawing a training crop: the extra fields share ``extra_weight``, the
    training split the rest (None: no weight given or no extra fields, every field alike)."""
    if extra_weight is None or not n_extra:
        return None
    w = float(extra_weight)
    return np.array([(1 - w) / n_main] * n_main + [w / n_extra] * n_extra)


def training_fieldset(paths: list[Path], data, **load) -> FieldSet:
    """The training split with the options of ``data`` (a DataConfig): targets in its phase convention,
    its extra folders mixed in (``extra_data_weight``), transposed views of every field (``rotations``:
    with the flips, all 8 orientations) and its per-crop augmentations. Off: :func:`load_fieldset`."""
    main = load_fieldset(paths, phase_reference=data.phase_reference, **load)
    extra = load_fieldset(extra_field_paths(data), phase_reference=data.phase_reference, **load)
    out = FieldSet(main.paths + extra.paths, main.fields + extra.fields, main.targets + extra.targets,
                   adaptations={**main.adaptations, **extra.adaptations})
    out.weights = mixing_weights(len(main), len(extra), data.extra_data_weight)
    if data.rotations:  # a transposed field + flips = the 90° rotations; views, no copies
        out = FieldSet(out.paths + [Path(f"{p} (transposed)") for p in out.paths],
                       out.fields + [f.T for f in out.fields], out.targets + [t.T for t in out.targets],
                       None if out.weights is None else np.concatenate([out.weights, out.weights]) / 2,
                       adaptations=out.adaptations)
    augment = Augment.of(data)
    out.augment = augment if augment != Augment() else None
    return out


def fingerprint(fieldset: FieldSet) -> str:
    """sha256 over file names and field bytes: identifies the exact training data."""
    h = hashlib.sha256()
    for path, field in zip(fieldset.paths, fieldset.fields, strict=True):
        h.update(Path(path).name.encode())
        h.update(np.ascontiguousarray(field).tobytes())
    return h.hexdigest()


def step_rng(seed: int, stage_number: int, step: int) -> np.random.Generator:
    """The generator of one training step: a pure function of (seed, stage, step)."""
    return np.random.default_rng([seed, stage_number, step])


def flip(a: np.ndarray, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    """``a`` mirrored top-bottom and/or left-right (a view)."""
    if flip_rows:
        a = a[::-1]
    if flip_cols:
        a = a[:, ::-1]
    return a


@dataclass
class TrainingPatches:
    """A batch of training crops: ``regions`` (B, P + 2c, P + 2c) complex64 with ``context_px`` = c of
    surrounding field, ``targets`` (B, P, P) float32 φ/2π, and where each came from (``sources``: field
    index and flips), so the acquisition it is part of (the whole flipped field) can be named."""

    regions: np.ndarray
    targets: np.ndarray
    sources: list[tuple[int, bool, bool]]

    def take(self, share: slice) -> TrainingPatches:
        """The patches of a slice of the batch (one process's share)."""
        return TrainingPatches(self.regions[share], self.targets[share], self.sources[share])


def sample_training_patches(fieldset: FieldSet, rng: np.random.Generator, batch: int, patch_px: int,
                            context_px: int = 0, flips: bool = True, align_px: int = 1,
                            outside: str = "reflect") -> TrainingPatches:
    """Random patches of the (randomly flipped) fields, with ``context_px`` of surroundings, augmented
    by ``fieldset.augment`` (random numbers are drawn for an option only when it is on)."""
    regions, targets, sources = [], [], []
    size = patch_px + 2 * context_px
    aug = fieldset.augment
    for _ in range(batch):
        for _attempt in range(THICK_MAX_TRIES):
            if fieldset.weights is None:
                k = int(rng.integers(len(fieldset)))
            else:
                k = int(rng.choice(len(fieldset), p=fieldset.weights))
            field, target = fieldset.fields[k], fieldset.targets[k]
            top = int(rng.integers((field.shape[0] - patch_px) // align_px + 1)) * align_px
            left = int(rng.integers((field.shape[1] - patch_px) // align_px + 1)) * align_px
            crop_target = target[top:top + patch_px, left:left + patch_px]
            if aug is None or not aug.thick_weight or keep_thick(rng, crop_target, aug):
                break
        fr, fc = (bool(rng.integers(2)), bool(rng.integers(2))) if flips else (False, False)
        region = crop_with_surroundings(field, top - context_px, left - context_px, size, size, outside)
        if aug is not None:
            region, crop_target = _augment(rng, aug, region, crop_target, target,
                                           (top - context_px, left - context_px, size, outside))
        regions.append(flip(region, fr, fc))
        targets.append(flip(crop_target, fr, fc))
        sources.append((k, fr, fc))
    return TrainingPatches(np.ascontiguousarray(np.stack(regions)), np.ascontiguousarray(np.stack(targets)),
                           sources)


#: rejection sampling of thick crops gives up after this many candidates (and keeps the last)
THICK_MAX_TRIES = 64


def thick_fraction(target: np.ndarray, threshold_rad: float) -> float:
    """Fraction of a target crop (φ/2π) whose phase exceeds ``threshold_rad``."""
    return float(np.mean(target > threshold_rad / (2 * np.pi)))


def keep_thick(rng, crop_target: np.ndarray, aug: Augment) -> bool:
    """Accept a candidate crop with probability (1 + w·f) / (1 + w): sampling ∝ 1 + w·(thick fraction f)."""
    f = thick_fraction(crop_target, aug.thick_threshold_rad)
    return bool(rng.random() < (1 + aug.thick_weight * f) / (1 + aug.thick_weight))


def _augment(rng, aug: Augment, region: np.ndarray, crop_target: np.ndarray, target: np.ndarray, where):
    """Phase scale (background-referenced targets: the region's phase becomes s·φ, the target s·φ/2π,
    the background stays 0) and amplitude scale (log-uniform) of one training crop."""
    if aug.phase_scale is not None:
        s = float(rng.uniform(*aug.phase_scale))
        top, left, size, outside = where
        phase = crop_with_surroundings(target, top, left, size, size, outside) * np.float32(2 * np.pi * s)
        region = (np.abs(region) * np.exp(1j * phase)).astype(np.complex64)
        crop_target = (crop_target * np.float32(s)).astype(np.float32)
    if aug.amplitude_scale is not None:
        lo, hi = aug.amplitude_scale
        region = (region * np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi))))).astype(np.complex64)
    return region, crop_target


def grid_offsets(length_px: int, patch_px: int, per_side: int, align_px: int) -> list[int]:
    """``per_side`` patch offsets spread over ``length_px``, multiples of ``align_px``."""
    covered = (length_px // align_px) * align_px
    if covered < patch_px:
        raise ValueError(f"a side of {length_px} px cannot hold a {patch_px}-px patch")
    last = ((covered - patch_px) // align_px) * align_px
    if per_side == 1:
        return [last // 2 // align_px * align_px]
    return sorted({int(round(last * i / (per_side - 1) / align_px)) * align_px for i in range(per_side)})


@dataclass(frozen=True)
class FixedPatch:
    field_index: int
    top: int
    left: int


def fixed_patches(fieldset: FieldSet, patch_px: int, per_side: int, align_px: int) -> list[FixedPatch]:
    """The deterministic evaluation patches: an n × n grid per field."""
    out = []
    for k, field in enumerate(fieldset.fields):
        rows = grid_offsets(field.shape[0], patch_px, per_side, align_px)
        cols = grid_offsets(field.shape[1], patch_px, per_side, align_px)
        out.extend(FixedPatch(k, r, c) for r in rows for c in cols)
    return out
