"""The public API (a stable contract; the CLI and the napari widgets call exactly these):

    import napari_dmicro as dm
    model = dm.load_model("lff-x64")            # a shipped model name, or a checkpoint path
    meas  = dm.simulate(field, model, photons=None, read_noise=0.0, seed=0)
    phase = dm.reconstruct(meas, model)          # radians, same shape as the field
    report = dm.evaluate(phase, reference)       # PSNR, SSIM, SSIM map (φ/2π, data range 1)

``field`` is a 2-D complex numpy (or dask) array of any size; ``meas`` is the camera image, a float32
numpy array (a :class:`MeasurementArray`, which also remembers the field's shape and how it was made).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field as dc_field
from pathlib import Path

import numpy as np
import torch

from .device import resolve_device


class MeasurementArray(np.ndarray):
    """A float32 camera image (a plain numpy array) that remembers its acquisition in ``.attrs``.

    ``attrs["field_shape"]`` is the object field's (rows, cols): ``reconstruct`` crops to it.
    """

    def __new__(cls, data, attrs: dict | None = None):
        obj = np.asarray(data, dtype=np.float32).view(cls)
        obj.attrs = dict(attrs or {})
        return obj

    def __array_finalize__(self, obj):
        self.attrs = dict(getattr(obj, "attrs", {}) or {})


def load_model(name_or_path, device: str = "cpu"):
    """A shipped model (``dmicro models`` lists them) or a checkpoint file / run folder → Microscope.

    The model is in eval mode on ``device``; ``model.card`` is its model card and ``model.source`` the
    file it came from.
    """
    from .io.checkpoints import load_checkpoint
    from .pretrained import resolve_model

    path = resolve_model(name_or_path)
    model, info = load_checkpoint(path, device=device)
    model.card = info.card
    model.source = str(path)
    model.name = str(name_or_path)
    return model


def simulate(field, model, photons: float | None = None, read_noise: float = 0.0, seed: int = 0,
             device: str = "cpu", progress=None) -> MeasurementArray:
    """Camera image of ``field`` through the model's optics; ``photons=None`` means noise free.

    The whole field of view is one image for a learnable Fourier filter (a linear convolution over
    the field, computed blockwise for large fields); a PhaseD2NN images it tile by tile through its
    aperture. The camera covers the field, rounded up to whole camera pixels (tiles), with the
    specimen mirrored beyond the edge (the encoder's ``outside_field`` rule).
    """
    from .inference.simulate import simulate_full_field

    data, attrs = simulate_full_field(field, model.encoder, max_photons=photons, read_noise_e=read_noise,
                                      seed=seed, device=resolve_device(device), progress=progress)
    attrs["model"] = getattr(model, "name", None) or getattr(model, "source", None)
    return MeasurementArray(data, attrs)


def reconstruct(meas, model, *, overlap: int | None = None, device: str = "cpu", shape=None,
                progress=None) -> np.ndarray:
    """Phase in radians (float32) from a camera image, on the object grid.

    The output has the field's shape when ``meas`` came from :func:`simulate` (or ``shape`` is given),
    else the camera shape × binning. Decoder windows overlap by ``overlap`` camera pixels and are
    blended smoothly (no seams); a PhaseD2NN measurement is reconstructed tile by tile.
    """
    from .inference.reconstruct import reconstruct_full_field

    attrs = getattr(meas, "attrs", {}) or {}
    check_measurement_matches_model(attrs, model)
    target_shape = tuple(shape) if shape is not None else tuple(attrs.get("field_shape") or ())
    unit = reconstruct_full_field(np.asarray(meas, dtype=np.float32), model, overlap=overlap,
                                  device=resolve_device(device), progress=progress)
    phase = (2 * np.pi * unit).astype(np.float32)
    if target_shape:
        phase = phase[: target_shape[0], : target_shape[1]]
    return phase


def check_measurement_matches_model(attrs: dict, model) -> None:
    """Refuse a measurement recorded by another kind of microscope; warn if another trained model made it.

    ``attrs`` is a measurement's metadata (empty for a bare lab image: nothing to check). A decoder only
    inverts the optics it was trained with: another optics type or compression is an error; another
    trained model of the same type (different learned optics) gives a wrong phase, hence the warning.
    """
    cfg = model.config
    name = getattr(model, "name", None) or getattr(model, "source", None)
    made_by = attrs.get("model")
    if attrs.get("optics") not in (None, cfg.optics_kind):
        raise ValueError(f"this measurement was recorded through {attrs['optics']} optics"
                         f"{f' (model {made_by})' if made_by else ''} but model {name} has {cfg.optics_kind} optics; "
                         "reconstruct with the model whose optics recorded it")
    if attrs.get("compression") not in (None, cfg.compression):
        raise ValueError(f"this measurement is x{attrs['compression']} but model {name} is x{cfg.compression}; "
                         "reconstruct with the model whose optics recorded it")
    if made_by and name and str(made_by) != str(name) and Path(str(made_by)).stem != Path(str(name)).stem:
        warnings.warn(f"this measurement was simulated with model {made_by}, but {name} reconstructs it: its "
                      "decoder was trained for its own learned optics, so the phase will be wrong unless both "
                      "models share the optics", stacklevel=3)


@dataclass
class EvaluationReport:
    """Quality of a phase reconstruction in the paper's convention (φ/2π, data range 1, clipped).

    ``psnr_db``/``ssim``: full field (PSNR of the pooled error; mean of the SSIM map). ``patch_*``: mean
    over the 256² patches of a non-overlapping grid (the paper's "patch FoV" numbers, always higher).
    """

    psnr_db: float
    ssim: float
    ssim_map: np.ndarray
    patch_psnr_db: float | None = None
    patch_ssim: float | None = None
    n_patches: int = 0
    patch_psnrs_db: list[float] = dc_field(default_factory=list)
    patch_ssims: list[float] = dc_field(default_factory=list)
    extra: dict = dc_field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"psnr_db": self.psnr_db, "ssim": self.ssim, "patch_psnr_db": self.patch_psnr_db,
                "patch_ssim": self.patch_ssim, "n_patches": self.n_patches, **self.extra}


def _reference_phase(reference) -> np.ndarray:
    ref = np.asarray(reference)
    if np.iscomplexobj(ref):
        return np.mod(np.angle(ref), 2 * np.pi).astype(np.float32)
    return ref.astype(np.float32)


def evaluate(phase, reference, *, patch_px: int = 256) -> EvaluationReport:
    """Compare a phase map (radians) with a reference field (complex) or phase map (radians)."""
    from .metrics import psnr, ssim_map

    pred = np.asarray(phase, dtype=np.float32)
    ref = _reference_phase(reference)
    if pred.shape != ref.shape:
        raise ValueError(f"phase {pred.shape} and reference {ref.shape} differ in shape; reconstruct on the "
                         "reference's grid (or crop both to the same region)")
    p = torch.from_numpy(np.clip(pred / (2 * np.pi), 0, 1))
    t = torch.from_numpy(ref / (2 * np.pi))
    smap = ssim_map(p, t)[0, 0]
    full_psnr = float(psnr(p, t)[0])
    rows, cols = pred.shape
    tops = range(0, rows - patch_px + 1, patch_px)
    lefts = range(0, cols - patch_px + 1, patch_px)
    patch_p, patch_s = [], []
    for r in tops:
        for c in lefts:
            pp, tt = p[r:r + patch_px, c:c + patch_px], t[r:r + patch_px, c:c + patch_px]
            patch_p.append(float(psnr(pp, tt)[0]))
            patch_s.append(float(ssim_map(pp, tt).mean()))
    return EvaluationReport(
        psnr_db=full_psnr, ssim=float(smap.mean()), ssim_map=smap.numpy(),
        patch_psnr_db=float(np.mean(patch_p)) if patch_p else None,
        patch_ssim=float(np.mean(patch_s)) if patch_s else None, n_patches=len(patch_p),
        patch_psnrs_db=patch_p, patch_ssims=patch_s)
