"""Fluorescence images: our stores (image + instance labels) and measured 2-D TIFFs with optional masks.

Both return a :class:`FluorescenceImage` ``(image, labels | None, pixel_size_um)``: ``image`` float32
(rows, cols), ``labels`` int32 instance ids renumbered 1..N (0 = background) or None. A measured TIFF rarely
records its pixel size reliably, so :func:`load_fluorescence_tiff` requires it as an argument: scale is never
guessed (e.g. the DSB2018 nuclei of ``../shared/realdata/fluo_stardist_dsb2018_nuclei`` carry none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import zarr
from skimage.segmentation import relabel_sequential

from .errors import FieldFormatError, UnitError
from .store import read_labels
from .units import check_length_um


class FluorescenceImage(NamedTuple):
    image: np.ndarray
    labels: np.ndarray | None
    pixel_size_um: float


def read_fluorescence(path) -> FluorescenceImage:
    """A fluorescence store written by :func:`~napari_dmicro.io.store.write_fluorescence` (or ``dmicro phantom
    --modality fluorescence``): the image, its labels (None when the store has none) and its pixel size."""
    from .fields import read_image

    img = read_image(path, lazy=False)
    if img.kind != "fluorescence":
        raise FieldFormatError(f"{path} holds a {img.kind}, not a fluorescence image; read it with read_image")
    labels = read_labels(zarr.open_group(os.fspath(path), mode="r"), Path(path), img.shape)
    return FluorescenceImage(np.asarray(img.data, np.float32), labels, float(img.pixel_size_um))


def _read_2d(path: Path, what: str, channel: int | None) -> np.ndarray:
    import tifffile

    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        data = np.asarray(tifffile.imread(path))
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a format problem
        raise FieldFormatError(f"{what} {path} could not be read as a TIFF: {exc}") from exc
    data = np.squeeze(data)
    if data.ndim == 3 and channel is not None:
        axis = int(np.argmin(data.shape))  # the channel axis is the short one (C, Y, X) or (Y, X, C)
        if not 0 <= channel < data.shape[axis]:
            raise FieldFormatError(f"{what} {path} has {data.shape[axis]} channels; channel={channel} is out of range")
        data = np.take(data, channel, axis=axis)
    if data.ndim != 2:
        raise FieldFormatError(f"{what} {path} has shape {data.shape}; a 2-D (rows, cols) image is required "
                               "(give channel= for a multi-channel image)")
    return data


def load_fluorescence_tiff(image_path, mask_path=None, *, pixel_size_um: float | None = None,
                           channel: int | None = None) -> FluorescenceImage:
    """A measured 2-D fluorescence TIFF (float32, raw values) and optional instance mask (int32, 1..N).

    ``pixel_size_um`` — the specimen pixel pitch in µm — is required: measured images are used at a stated
    scale, never a guessed one. ``channel`` picks a channel of a multi-channel file.
    """
    if pixel_size_um is None:
        raise UnitError(f"pixel_size_um is required to load {image_path}: the pixel size of a measured "
                        "fluorescence image is not guessed; give it in micrometres, e.g. "
                        "load_fluorescence_tiff(path, mask, pixel_size_um=0.5)")
    ps = check_length_um(pixel_size_um, "pixel_size")
    image = _read_2d(Path(os.fspath(image_path)), "fluorescence image", channel)
    if image.dtype.kind not in "iuf" or not np.isfinite(image).all():
        raise FieldFormatError(f"fluorescence image {image_path} must be real and finite (dtype {image.dtype})")
    labels = None
    if mask_path is not None:
        mask = _read_2d(Path(os.fspath(mask_path)), "mask", None)
        if mask.shape != image.shape:
            raise FieldFormatError(f"mask {mask_path} has shape {mask.shape} but the image {image.shape}")
        if mask.dtype.kind not in "iub" or (mask.size and mask.min() < 0):
            raise FieldFormatError(f"mask {mask_path} must hold non-negative integer instance ids (got {mask.dtype})")
        labels = relabel_sequential(mask.astype(np.int64))[0].astype(np.int32)
    return FluorescenceImage(image.astype(np.float32), labels, ps)


__all__ = ["FluorescenceImage", "load_fluorescence_tiff", "read_fluorescence"]
