"""Read and write complex fields, camera measurements and phase maps: the public entry points.

This is the I/O engine shared by the CLI, the napari reader/writer and the widgets; it imports
neither Qt nor napari. The work is done by one module per concern:

* :mod:`.images` — the four kinds, :class:`ImageData`, validation;
* :mod:`.store` — our zarr v3 / OME-Zarr 0.5 store format (layout documented there);
* :mod:`.ome` — the OME metadata (built and validated with ``ome-zarr-models``);
* :mod:`.foreign` — foreign complex zarr / amplitude+phase / npy / npz and bare camera images;
* :mod:`.units` — units of pixel size and wavelength;
* :mod:`.chunks` — missing chunks are refused at open;
* :mod:`.pyramid` — display pyramids;
* :mod:`.targets`, :mod:`.atomic` — output names, replacement rules, atomic writes with a lock.

Non-finite values: numpy inputs are scanned completely. Dask inputs are checked block by block
while being written (an error aborts the write, nothing is left behind); on reading, lazy arrays
are scanned only when smaller than :data:`~.images.FINITE_SCAN_LIMIT_BYTES` so that opening a
huge store stays instantaneous.
"""

from __future__ import annotations

import os
from pathlib import Path

import zarr

from .errors import FieldFormatError, MissingArrayError, NotAZarrStoreError, UnitError
from .foreign import CAMERA_SUFFIXES, detect_format, read_camera_measurement, read_foreign_zarr, read_npy, read_npz
from .images import ATTRS_KEY, CHANNELS, FORMAT_VERSION, KINDS, ImageData, ImageKind, validate_field, validate_image
from .pyramid import PYRAMID_MIN_SIZE, display_levels, open_pyramid
from .store import read_ours, write_field, write_image, write_measurement, write_phase
from .targets import looks_like_zarr
from .units import check_length_um


def _read_zarr(p: Path, lazy: bool) -> ImageData:
    where = str(p)
    if not looks_like_zarr(p):
        raise NotAZarrStoreError(
            f"{where} is a directory but not a zarr store (no zarr.json, .zgroup or .zarray inside); "
            "give a .zarr store, a .npy or a .npz file"
        )
    try:
        node = zarr.open(str(p), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise NotAZarrStoreError(f"{where} could not be opened as a zarr store: {exc}") from exc
    if isinstance(node, zarr.Group) and ATTRS_KEY in node.attrs:
        return read_ours(node, p, lazy)
    return read_foreign_zarr(node, p, lazy)


def _existing(path) -> Path:
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    return p


def read_image(path, *, lazy: bool | None = None) -> ImageData:
    """Read any napari-dmicro store, or a foreign complex zarr / amplitude+phase group / npy / npz.

    ``lazy``: ``None`` (default) means dask for zarr stores and for ``.npy`` files over
    :data:`~.foreign.LAZY_NPY_BYTES` (memory-mapped), numpy otherwise; ``True``/``False`` force it
    (``.npz`` is always loaded). Raises :class:`FileNotFoundError` for a missing path and
    :class:`FieldFormatError` (or a subclass) with the reason for anything unreadable, including a
    zarr store with missing chunks.
    """
    p = _existing(path)
    if p.is_dir():
        return _read_zarr(p, True if lazy is None else lazy)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return read_npy(p, lazy)
    if suffix == ".npz":
        return read_npz(p)
    raise FieldFormatError(
        f"{p}: unsupported file type {suffix or '(no suffix)'!r}; napari-dmicro reads .zarr stores "
        "(directories), .npy and .npz"
    )


def read_field(path, *, lazy: bool | None = None) -> ImageData:
    """Like :func:`read_image`, but the result must be a complex field."""
    img = read_image(path, lazy=lazy)
    if img.kind != "field":
        raise FieldFormatError(
            f"{path} holds a {img.kind}, not a complex field; use read_image to read it, "
            "or give a field store"
        )
    return img


def read_measurement(path) -> ImageData:
    """A camera measurement: our ``measurement`` store, or a bare real 2-D camera image (``.npy``,
    ``.npz`` with one array, ``.tif``/``.tiff``, a real zarr array) without our metadata.

    A bare image has no recorded optics; unless its attributes give a pixel size,
    ``attrs["defaults_used"]`` contains ``"pixel_size_um"`` (the pitch is unknown).
    """
    p = _existing(path)
    bare = detect_format(p) is None and (p.suffix.lower() in CAMERA_SUFFIXES or _is_zarr_array(p))
    image = read_camera_measurement(p) if bare else read_image(p)
    if image.kind != "measurement":
        raise FieldFormatError(
            f"{path} is a {image.kind}, not a camera measurement; simulate one with `dmicro simulate` "
            "or give a lab camera image (a real 2-D .npy/.npz/.tif/.zarr array, or a 3-D (planes, rows, cols) stack)"
        )
    return image


def _is_zarr_array(p: Path) -> bool:
    try:
        return looks_like_zarr(p) and isinstance(zarr.open(str(p), mode="r"), zarr.Array)
    except Exception:  # noqa: BLE001 - unreadable: let read_image report it
        return False


__all__ = [
    "ATTRS_KEY",
    "CHANNELS",
    "FORMAT_VERSION",
    "KINDS",
    "PYRAMID_MIN_SIZE",
    "FieldFormatError",
    "ImageData",
    "ImageKind",
    "MissingArrayError",
    "NotAZarrStoreError",
    "UnitError",
    "check_length_um",
    "detect_format",
    "display_levels",
    "open_pyramid",
    "read_field",
    "read_image",
    "read_measurement",
    "validate_field",
    "validate_image",
    "write_field",
    "write_image",
    "write_measurement",
    "write_phase",
]
