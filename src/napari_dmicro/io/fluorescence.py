"""Fluorescence images: our stores (image + instance labels) and measured 2-D TIFFs with optional masks.

Both return a :class:`FluorescenceImage` ``(image, labels | None, pixel_size_um)``: ``image`` float32
(rows, cols), ``labels`` int32 instance ids renumbered 1..N (0 = background) or None. A measured TIFF rarely
records its pixel size reliably, so :func:`load_fluorescence_tiff` requires it as an argument: scale is never
guessed (e.g. the DSB2018 nuclei of ``../shared/realdata/fluo_stardist_dsb2018_nuclei`` carry none).

A fluorescence MEASUREMENT (``dm.simulate`` with a fluorescence model) is stored with
:func:`write_fluorescence_measurement` and read back with :func:`read_fluorescence_measurement` (the store
layout is :func:`~napari_dmicro.io.store.write_fluorescence_measurement`'s; docs/file-formats.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import zarr
from skimage.segmentation import relabel_sequential

from .errors import FieldFormatError, UnitError
from .images import PATTERN_AXIS
from .store import read_labels, read_patterns
from .units import check_length_um

#: what a stored fluorescence measurement's values are
MEASUREMENT_UNITS = ("noise-free detector sum of the input image normalised to [0, 1] (photon counts = "
                     "photons_per_unit · value + background_photons)")
#: the in-memory measurement's specimen pixel size (``attrs["pixel_size_um"]``) is stored under this key: a store's
#: ``pixel_size_um`` is the pitch of ITS pixels, the camera's
SPECIMEN_PIXEL_KEY = "specimen_pixel_size_um"


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


def write_fluorescence_measurement(path, meas, **replace_rule):
    """Write a :class:`~napari_dmicro.inference.fluorescence.FluorescenceMeasurement` (``dm.simulate`` with a
    fluorescence model) as a measurement store: the (T, h, w) frames at the camera pixel, the binary patterns,
    every attribute (the specimen pixel size as ``specimen_pixel_size_um``, the emission wavelength as the
    store's ``wavelength_um``). ``replace_rule``: ``overwrite`` / ``overwrite_foreign``."""
    from .store import write_fluorescence_measurement as write_store

    attrs = dict(meas.attrs)
    if attrs.get("modality") != "fluorescence":
        raise FieldFormatError("not a fluorescence measurement (its attributes have no modality 'fluorescence'); "
                               "write a phase microscope's camera image with write_measurement")
    if meas.patterns is None:
        raise FieldFormatError("the measurement does not carry its binary illumination patterns; simulate it with "
                               "dm.simulate so that it is self-describing")
    wavelength = attrs.pop("emission_wavelength_um", None)
    if wavelength is None:
        raise UnitError("the emission wavelength is unknown: neither the model's emission PSF nor the image records "
                        "it; give the image's emission wavelength (dm.simulate on a store that records it, or "
                        "dmicro simulate --wavelength-um)")
    attrs[SPECIMEN_PIXEL_KEY] = attrs.pop("pixel_size_um")
    attrs["units"] = {"measurement": MEASUREMENT_UNITS, SPECIMEN_PIXEL_KEY: "micrometer"}
    return write_store(path, meas.data, meas.patterns, camera_pixel_size_um=attrs["camera_pixel_size_um"],
                       emission_wavelength_um=wavelength, attrs=attrs, **replace_rule)


def is_fluorescence_measurement(image) -> bool:
    """Whether an :class:`~napari_dmicro.io.images.ImageData` is a stored fluorescence measurement."""
    return image.kind == "measurement" and image.attrs.get("modality") == "fluorescence"


def read_fluorescence_measurement(path):
    """A stored fluorescence measurement → :class:`~napari_dmicro.inference.fluorescence.FluorescenceMeasurement`
    (the attributes as ``dm.simulate`` gave them, the patterns); other stores are refused with what they are."""
    from ..inference.fluorescence import FluorescenceMeasurement
    from .fields import read_image

    img = read_image(path, lazy=False)
    if not is_fluorescence_measurement(img):
        what = "a phase microscope's camera image" if img.kind == "measurement" else f"a {img.kind}"
        raise FieldFormatError(f"{path} is {what}, not a fluorescence measurement; simulate one with a "
                               "fluorescence model (dmicro simulate IMAGE --model fluo-…)")
    attrs = {k: v for k, v in img.attrs.items() if k not in ("units", "stack_axis", "software", "software_version",
                                                             "format_version", "every_chunk_written")}
    if img.attrs.get("stack_axis") != PATTERN_AXIS or SPECIMEN_PIXEL_KEY not in attrs:
        raise FieldFormatError(f"{path}: a fluorescence measurement store needs stack_axis {PATTERN_AXIS!r} and "
                               f"{SPECIMEN_PIXEL_KEY}; the store is incomplete or was modified")
    camera = float(attrs[SPECIMEN_PIXEL_KEY]) * int(attrs.get("bin_px", 0))
    if abs(camera - img.pixel_size_um) > 1e-9 * img.pixel_size_um:
        raise FieldFormatError(f"{path}: the camera pixel ({img.pixel_size_um:g} µm) is not bin_px × the specimen "
                               f"pixel ({camera:g} µm); the metadata is inconsistent")
    attrs["pixel_size_um"] = float(attrs.pop(SPECIMEN_PIXEL_KEY))
    attrs["emission_wavelength_um"] = float(img.wavelength_um)
    patterns = read_patterns(zarr.open_group(os.fspath(path), mode="r"), Path(path), int(img.shape[0]))
    return FluorescenceMeasurement(np.asarray(img.data, np.float32), attrs, patterns)


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


__all__ = ["MEASUREMENT_UNITS", "FluorescenceImage", "is_fluorescence_measurement", "load_fluorescence_tiff",
           "read_fluorescence", "read_fluorescence_measurement", "write_fluorescence_measurement"]
