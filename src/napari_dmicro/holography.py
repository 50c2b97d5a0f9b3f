"""Off-axis hologram → complex field (the acquisition a lab brings), with a record of every step.

:func:`field_from_hologram` runs, in order:

1. **Sideband detection and filtering** (qpretrieve's ``OffAxisHologram``): the hologram's Fourier
   transform is searched for the +1 order, a filter (``filter_name``, ``filter_size`` as a fraction of
   the sideband's distance from the zero order) cuts it out, and it is moved to the origin.
2. **Reference division**: when a background (reference) hologram of the empty sample is given, its
   field, retrieved with the same sideband and filter, divides the hologram's field. This removes the
   carrier residue, the illumination's own phase and the fixed-pattern amplitude.
3. **Refocus** (optional): angular-spectrum propagation by ``refocus_um`` in a medium of index
   ``medium_index`` (:func:`napari_dmicro.optics.propagation.propagate`).
4. **Phase unwrapping** (``skimage.restoration.unwrap_phase``).
5. **Background correction** of the phase: ``"tilt"`` (a plane fitted to the background, then the
   offset) or ``"offset"`` only, or ``None``. The background is ``background_mask`` when given, else a
   ``border_px`` frame. The offset puts the background at 0 rad: the mean over the mask, or without a
   mask :func:`napari_dmicro.phase_reference.background_phase_rad` (the mode of the phase histogram,
   robust to cells that touch the border). The amplitude is divided by its background median.

Scale is never guessed: ``pixel_size_um`` (at the sample) and ``wavelength_um`` are required.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from .phase_reference import BACKGROUND_WINDOW_RAD, background_phase_rad

__all__ = ["HologramField", "HologramRecord", "field_from_hologram"]

CORRECTIONS = ("tilt", "offset", None)
#: background frame (px) fitted when no mask is given (qpimage's default for its examples)
BORDER_PX = 5


@dataclass(frozen=True)
class HologramRecord:
    """What :func:`field_from_hologram` did; ``to_attrs()`` is written into the field store's attrs."""

    pixel_size_um: float
    wavelength_um: float
    filter_name: str
    filter_size: float
    sideband_freq: tuple[float, float]  # cycles/px on the padded grid (qpretrieve's convention)
    background: str  # "reference hologram" or "none"
    refocus_um: float | None
    medium_index: float
    unwrapped: bool
    correction: str | None
    correction_region: str  # "border N px" or "mask (N px)"
    tilt_rad_per_px: tuple[float, float]  # (d/dy, d/dx) removed
    offset_rad: float  # removed
    amplitude_scale: float  # the background amplitude divided out
    retrieval: str

    def to_attrs(self) -> dict:
        attrs = {f"hologram_{k}": (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                 if k not in ("pixel_size_um", "wavelength_um")}
        return {"source_kind": "off-axis hologram", **attrs}


@dataclass(frozen=True)
class HologramField:
    """The retrieved field (complex64, background phase ≈ 0 and amplitude ≈ 1), its phase map (rad,
    unwrapped when asked: values beyond ±π that the complex field cannot hold) and the record."""

    field: np.ndarray
    phase_rad: np.ndarray
    record: HologramRecord

    def __array__(self, dtype=None, copy=None):
        return self.field if dtype is None else self.field.astype(dtype)


def _required_length(value, name: str, flag: str) -> float:
    if value is None:
        raise ValueError(f"{name} is required ({flag}): the hologram's scale is never guessed")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} ({flag}) must be a positive number of µm; got {value}")
    return value


def _hologram_array(data, name: str) -> np.ndarray:
    array = np.squeeze(np.asarray(data))
    if array.ndim != 2 or np.iscomplexobj(array) or array.dtype.kind not in "fiub":
        raise ValueError(f"the {name} must be a real 2-D image; got dtype {array.dtype}, shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"the {name} contains NaN or infinite values")
    if min(array.shape) < 16:
        raise ValueError(f"the {name} is {array.shape[0]}×{array.shape[1]} px: too small to hold fringes")
    return array


def _qpretrieve():
    with warnings.catch_warnings():  # "Interface 'FFTFilterPyFFTW' unavailable!": numpy's FFT is used
        warnings.filterwarnings("ignore", message="Interface .* unavailable", category=UserWarning)
        import qpretrieve
    return qpretrieve


def _retrieve(array: np.ndarray, sideband_freq, filter_name: str, filter_size: float):
    OffAxisHologram = _qpretrieve().OffAxisHologram

    holo = OffAxisHologram(array)
    field = holo.run_pipeline(filter_name=filter_name, filter_size=filter_size, sideband_freq=sideband_freq)
    freq = tuple(float(f) for f in holo.pipeline_kws["sideband_freq"])
    return np.asarray(field).reshape(array.shape), freq


def _region(shape: tuple[int, int], mask, border_px: int) -> tuple[np.ndarray, str]:
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != shape:
            raise ValueError(f"background_mask is {mask.shape}, the hologram {shape}")
        if mask.sum() < 3:
            raise ValueError("background_mask selects fewer than 3 pixels")
        return mask, f"mask ({int(mask.sum())} px)"
    if not 0 < 2 * border_px < min(shape):
        raise ValueError(f"border_px {border_px} does not fit a {shape[0]}×{shape[1]} field")
    region = np.ones(shape, bool)
    region[border_px:-border_px, border_px:-border_px] = False
    return region, f"border {border_px} px"


def _fit_tilt(phase: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Plane slopes (d/dy, d/dx) of ``phase`` over ``region``; one refit without outliers (cells in it)."""
    yy, xx = np.nonzero(region)
    values = phase[region]
    keep = np.ones(values.size, bool)
    for _ in range(2):
        design = np.column_stack([np.ones(keep.sum()), yy[keep], xx[keep]])
        coef = np.linalg.lstsq(design, values[keep], rcond=None)[0]
        residual = values - (coef[0] + coef[1] * yy + coef[2] * xx)
        mad = float(np.median(np.abs(residual - np.median(residual))))
        keep = np.abs(residual) <= max(4.0 * 1.4826 * mad, 1e-6)
        if keep.sum() < 3:
            break
    return float(coef[1]), float(coef[2])


def _offset(phase: np.ndarray, mask) -> float:
    if mask is not None:
        return float(np.mean(phase[mask]))
    bg = background_phase_rad(phase)  # wrapped, (−π, π]: put it on the unwrapped phase's own turn
    near = np.abs(np.mod(phase - bg + math.pi, 2 * math.pi) - math.pi) <= BACKGROUND_WINDOW_RAD
    return float(bg + 2 * math.pi * round((float(np.median(phase[near])) - bg) / (2 * math.pi)))


def field_from_hologram(hologram, *, pixel_size_um: float | None, wavelength_um: float | None,
                        background=None, filter_name: str = "smooth disk", filter_size: float = 0.5,
                        refocus_um: float | None = None, medium_index: float = 1.0, unwrap: bool = True,
                        correct_background: str | None = "tilt", background_mask=None,
                        border_px: int = BORDER_PX) -> HologramField:
    """Complex field of an off-axis ``hologram`` (real 2-D image), see the module docstring.

    ``background``: the reference hologram of the empty sample (same shape), or None.
    ``filter_name``: a qpretrieve filter ("disk", "smooth disk", "gauss", "square", "smooth square",
    "tukey"); ``filter_size``: its radius as a fraction of the sideband distance (0 < size < 1).
    ``background_mask``: True where there is no specimen (fits the correction there; default: the
    ``border_px`` frame). Returns a :class:`HologramField` (``np.asarray`` of it is the field).
    """
    from skimage.restoration import unwrap_phase

    pixel_size_um = _required_length(pixel_size_um, "pixel_size_um", "--pixel-size-um")
    wavelength_um = _required_length(wavelength_um, "wavelength_um", "--wavelength-um")
    if correct_background not in CORRECTIONS:
        raise ValueError(f"correct_background must be 'tilt', 'offset' or None; got {correct_background!r}")
    if not 0 < float(filter_size) < 1:
        raise ValueError(f"filter_size is a fraction of the sideband distance, 0 < size < 1; got {filter_size}")
    if not (math.isfinite(medium_index) and medium_index >= 1):
        raise ValueError(f"medium_index must be >= 1; got {medium_index}")
    data = _hologram_array(hologram, "hologram")
    field, freq = _retrieve(data, None, filter_name, float(filter_size))
    if background is not None:
        bg = _hologram_array(background, "background hologram")
        if bg.shape != data.shape:
            raise ValueError(f"the background hologram is {bg.shape[0]}×{bg.shape[1]} px, the hologram "
                             f"{data.shape[0]}×{data.shape[1]}: they must be the same camera frame")
        bg_field, _ = _retrieve(bg, freq, filter_name, float(filter_size))
        if not np.all(np.abs(bg_field) > 0):
            raise ValueError("the background hologram's field is zero somewhere: no fringes there")
        field = field / bg_field
    if refocus_um:
        import torch

        from .optics.propagation import propagate

        field = propagate(torch.from_numpy(field.astype(np.complex64)), float(refocus_um),
                          pixel_size_um=pixel_size_um, wavelength_um=wavelength_um / medium_index).numpy()
    region, region_name = _region(data.shape, background_mask, int(border_px))
    phase = np.angle(field)
    if unwrap:
        phase = unwrap_phase(phase)
    tilt = (0.0, 0.0)
    offset = 0.0
    if correct_background is not None:
        # a tilt on a wrapped phase is fitted on its unwrapped copy (the plane is smooth)
        fit_phase = phase if unwrap else unwrap_phase(phase)
        if correct_background == "tilt":
            tilt = _fit_tilt(fit_phase, region)
            yy, xx = np.indices(data.shape)
            plane = tilt[0] * yy + tilt[1] * xx
            phase = phase - plane
            fit_phase = fit_phase - plane
        offset = _offset(fit_phase, background_mask)
        phase = phase - offset
        if not unwrap:
            phase = np.angle(np.exp(1j * phase))
    amplitude = np.abs(field)
    scale = float(np.median(amplitude[region])) if correct_background is not None else 1.0
    if not scale > 0:
        raise ValueError("the background amplitude is zero: no fringes in the background region")
    out = (amplitude / scale * np.exp(1j * phase)).astype(np.complex64)
    record = HologramRecord(
        pixel_size_um=pixel_size_um, wavelength_um=wavelength_um, filter_name=filter_name,
        filter_size=float(filter_size), sideband_freq=freq,
        background="reference hologram" if background is not None else "none",
        refocus_um=float(refocus_um) if refocus_um else None, medium_index=float(medium_index),
        unwrapped=bool(unwrap), correction=correct_background, correction_region=region_name,
        tilt_rad_per_px=tilt, offset_rad=offset, amplitude_scale=scale,
        retrieval=f"qpretrieve {_qpretrieve().__version__} OffAxisHologram")
    return HologramField(field=out, phase_rad=phase.astype(np.float32), record=record)


def field_from_phase_amplitude_files(phase_path, amplitude_path=None) -> np.ndarray:
    """complex64 field amplitude·exp(i·phase) from a phase image (rad) and an optional amplitude image (1 if
    none); the two must have the same shape."""
    from .io.camera_images import read_camera_image

    phase = read_camera_image(phase_path)
    amplitude = read_camera_image(amplitude_path) if amplitude_path else np.ones_like(phase)
    if amplitude.shape != phase.shape:
        raise ValueError(f"the amplitude image is {amplitude.shape}, the phase {phase.shape}: they must match")
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def read_hologram_files(path, background=None) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """(hologram, reference hologram or None, where the reference came from) of a hologram file.

    ``background``: a reference-hologram file; without it, an ``.npz`` in qpimage's layout (``data`` and
    ``bg_data``) brings its own reference.
    """
    from .io.camera_images import read_camera_image

    keys: set[str] = set()
    if str(path).lower().endswith(".npz"):
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
    hologram = read_camera_image(path, key="data" if "data" in keys else None)
    if background:
        return hologram, read_camera_image(background), str(background)
    if "bg_data" in keys:
        return hologram, read_camera_image(path, key="bg_data"), f"{path}:bg_data"
    return hologram, None, None
