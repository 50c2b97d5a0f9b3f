"""Foreign inputs: complex zarr arrays, zarr groups with a ``field`` or ``amplitude`` + ``phase`` arrays,
``.npy``/``.npz`` files, and bare real camera images (``.npy``, ``.npz``, ``.tif``, zarr).

Leading singleton axes (``(1, rows, cols)``) are dropped (recorded in ``attrs["squeezed_from_shape"]``); a
3-D ``(planes, rows, cols)`` array is read as a stack without a named axis (``attrs`` has no ``stack_axis``:
``dmicro`` takes it from ``--stack-axis``);
complex128 is returned as complex64 (``attrs["source_dtype"]``). Sampling comes from the attributes
(:mod:`~napari_dmicro.io.units`), else the defaults, listed in ``attrs["defaults_used"]``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import dask.array as da
import numpy as np
import zarr

from .camera_images import read_camera_image
from .chunks import check_complete
from .errors import FieldFormatError, MissingArrayError, UnitError
from .images import ATTRS_KEY, CHUNK, ImageData, check_shape, describe, scan_finite
from .targets import looks_like_zarr
from .units import resolve_sampling

#: ``.npy`` files larger than this are memory-mapped and wrapped in dask when ``lazy`` is None.
LAZY_NPY_BYTES = 256 * 2**20


def detect_format(path) -> str | None:
    """Cheaply classify ``path`` without reading array data.

    Returns ``"napari_dmicro"`` (our store, possibly broken), ``"zarr-array"`` (root complex
    array), ``"zarr-field"`` (group with a ``field`` array), ``"zarr-amplitude-phase"``, ``"npy"``
    (complex), ``"npz"`` (with a field) or None for anything else.
    """
    p = Path(os.fspath(path))
    try:
        if p.is_dir():
            if not looks_like_zarr(p):
                return None
            node = zarr.open(str(p), mode="r")
            if isinstance(node, zarr.Array):
                return "zarr-array" if np.dtype(node.dtype).kind == "c" else None
            if ATTRS_KEY in node.attrs:
                return "napari_dmicro"
            names = set(node.array_keys())
            if "field" in names:
                return "zarr-field"
            if {"amplitude", "phase"} <= names:
                return "zarr-amplitude-phase"
            return None
        suffix = p.suffix.lower()
        if suffix == ".npy" and p.is_file():
            with open(p, "rb") as fh:
                dtype = _npy_header_dtype(fh)
            return "npy" if dtype.kind == "c" else None
        if suffix == ".npz" and p.is_file():
            with zipfile.ZipFile(p) as zf:
                members = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
                if "field" in members or {"amplitude", "phase"} <= members.keys():
                    return "npz"
                complex_ = []
                for member in members.values():
                    with zf.open(member) as fh:
                        dtype, shape = _npy_header(fh)
                    if shape:
                        complex_.append(dtype.kind == "c")
                return "npz" if complex_ == [True] else None
    except Exception:  # noqa: BLE001 - sniffing must never raise; the real reader reports problems
        # unreadable metadata that still names us: claim it so that reading reports the problem
        try:
            if p.is_dir() and ATTRS_KEY.encode() in (p / "zarr.json").read_bytes():
                return "napari_dmicro"
        except OSError:
            pass
        return None
    return None


def _npy_header(fh) -> tuple[np.dtype, tuple]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return np.dtype(dtype), tuple(shape)


def _npy_header_dtype(fh) -> np.dtype:
    return _npy_header(fh)[0]


def _squeeze_leading(array, where: str, attrs: dict):
    if array.ndim > 2 and all(s == 1 for s in array.shape[:-2]):
        attrs["squeezed_from_shape"] = list(array.shape)
        array = array.reshape(array.shape[-2:])
    check_shape(array, where, stack=True)  # a 3-D array is a stack; its axis is not recorded (the caller names it)
    return array


def _finish_field(array, where: str, attrs: dict, lazy: bool) -> da.Array | np.ndarray:
    """Validate a foreign complex array and return complex64 (dask if lazy)."""
    dt = np.dtype(array.dtype)
    if dt.kind != "c":
        raise FieldFormatError(
            f"{where} is real-valued ({describe(array)}) but a complex field was expected; give a "
            "complex64/complex128 array, or amplitude and phase arrays, or use write_phase for a phase map"
        )
    array = _squeeze_leading(array, where, attrs)
    if dt != np.complex64:
        attrs["source_dtype"] = str(dt)
        array = array.astype(np.complex64)
    if not lazy and isinstance(array, da.Array):
        array = array.compute()
    scan_finite(array, where, None)
    return array


def _real(array, where: str, name: str, attrs: dict):
    dt = np.dtype(array.dtype)
    if dt.kind not in "iuf":
        raise FieldFormatError(f"{where}: the {name!r} array must be real, got {describe(array)}")
    return _squeeze_leading(array, f"{where}: {name!r}", attrs).astype(np.float32)


def _combine(amplitude, phase, where: str, attrs: dict, lazy: bool):
    sub: dict = {}
    amp = _real(amplitude, where, "amplitude", sub)
    ph = _real(phase, where, "phase", sub)
    if amp.shape != ph.shape:
        raise FieldFormatError(
            f"{where}: amplitude has shape {tuple(amp.shape)} but phase has shape {tuple(ph.shape)}; "
            "they must match"
        )
    if isinstance(amp, da.Array) or isinstance(ph, da.Array):
        amp = amp if isinstance(amp, da.Array) else da.from_array(amp, chunks=CHUNK)
        ph = (ph if isinstance(ph, da.Array) else da.from_array(ph, chunks=CHUNK)).rechunk(amp.chunks)
        if not lazy:
            amp, ph = amp.compute(), ph.compute()
    if isinstance(amp, da.Array):
        field = amp.astype(np.complex64) * da.exp(1j * ph.astype(np.complex64))
    else:
        field = amp * np.exp(1j * ph).astype(np.complex64)
    attrs.update(sub)
    scan_finite(field, where + " (amplitude·exp(i·phase))", None)
    return field.astype(np.complex64)


def _merge_attrs(outer: Mapping, inner: Mapping, where: str) -> dict:
    merged = dict(inner)
    for k, v in outer.items():
        if k in merged and merged[k] != v:
            raise UnitError(f"{where}: attribute {k!r} is {v!r} on the group but {merged[k]!r} on the array")
        merged[k] = v
    return merged


def _foreign(data, raw_attrs: Mapping, where: str, fmt: str, path: Path) -> ImageData:
    ps, wl, defaults = resolve_sampling(raw_attrs, where)
    attrs: dict = {"source": str(path), "source_format": fmt}
    if defaults:
        attrs["defaults_used"] = defaults
    for key, value in data[1].items():
        attrs[key] = value
    return ImageData(data[0], "field", ps, wl, attrs)


def zarr_data(zarray, store_dir: Path, lazy: bool, where: str):
    """The data of a zarr array in a local store, refused up front if any chunk is missing."""
    check_complete(zarray, store_dir, where)
    return da.from_zarr(zarray) if lazy else np.asarray(zarray[...])


def read_foreign_zarr(node, p: Path, lazy: bool) -> ImageData:
    """A field from a foreign zarr root array or group (``field``, or ``amplitude`` + ``phase``)."""
    where = str(p)
    if isinstance(node, zarr.Array):
        attrs: dict = {}
        data = _finish_field(zarr_data(node, p, True, where), f"{where} (root array)", attrs, lazy)
        return _foreign((data, attrs), dict(node.attrs), where, "zarr-array", p)
    gattrs = dict(node.attrs)
    names = set(node.array_keys())
    if "field" in names:
        arr = node["field"]
        raw = _merge_attrs(gattrs, dict(arr.attrs), where)
        attrs = {}
        data = _finish_field(zarr_data(arr, p, True, where), f"{where}: 'field' array", attrs, lazy)
        return _foreign((data, attrs), raw, where, "zarr-field", p)
    if {"amplitude", "phase"} <= names:
        amp, ph = node["amplitude"], node["phase"]
        raw = _merge_attrs(gattrs, _merge_attrs(dict(amp.attrs), dict(ph.attrs), where), where)
        attrs = {}
        data = _combine(zarr_data(amp, p, True, where), zarr_data(ph, p, True, where), where, attrs, lazy)
        return _foreign((data, attrs), raw, where, "zarr-amplitude-phase", p)
    hint = ""
    if "ome" in gattrs or "multiscales" in gattrs:
        hint = " (an OME-Zarr image is not a complex field; open it with napari-ome-zarr)"
    raise MissingArrayError(
        f"{where} is a zarr group without the expected arrays: need a complex 'field' array, or "
        f"real 'amplitude' and 'phase' arrays, or napari-dmicro metadata; found arrays "
        f"{sorted(names) or 'none'}{hint}"
    )


def _load_npy(p: Path, lazy: bool | None):
    if lazy is None:
        lazy = p.stat().st_size > LAZY_NPY_BYTES
    try:
        arr = np.load(p, mmap_mode="r" if lazy else None, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise FieldFormatError(f"{p} could not be read as a .npy array: {exc}") from exc
    if lazy:
        arr = da.from_array(arr, chunks=(CHUNK,) * arr.ndim if arr.ndim else ())
    return arr, lazy


def _load_npz(p: Path) -> tuple[dict, dict]:
    """(0-d entries as attributes, array entries) of an ``.npz`` archive."""
    try:
        with np.load(p, allow_pickle=False) as npz:
            entries = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001
        raise FieldFormatError(f"{p} could not be read as a .npz archive: {exc}") from exc
    raw = {k: v.item() for k, v in entries.items() if v.ndim == 0}
    return raw, {k: v for k, v in entries.items() if v.ndim > 0}


def read_npy(p: Path, lazy: bool | None) -> ImageData:
    """A complex field from a ``.npy`` file (memory-mapped when large)."""
    arr, lazy = _load_npy(p, lazy)
    attrs: dict = {}
    data = _finish_field(arr, str(p), attrs, lazy)
    return _foreign((data, attrs), {}, str(p), "npy", p)


def read_npz(p: Path) -> ImageData:
    """A complex field from an ``.npz`` archive (``field``, ``amplitude`` + ``phase``, or one complex array)."""
    where = str(p)
    raw, arrays = _load_npz(p)
    attrs: dict = {}
    if "field" in arrays:
        data = _finish_field(arrays["field"], f"{where}: 'field'", attrs, False)
    elif {"amplitude", "phase"} <= arrays.keys():
        data = _combine(arrays["amplitude"], arrays["phase"], where, attrs, False)
    elif len(arrays) == 1:
        (key, value), = arrays.items()
        data = _finish_field(value, f"{where}: {key!r}", attrs, False)
    else:
        raise MissingArrayError(
            f"{where} does not contain the expected arrays: need 'field' (complex), or 'amplitude' and "
            f"'phase', or a single complex array; found {sorted(arrays) or 'no arrays'}"
        )
    return _foreign((data, attrs), raw, where, "npz", p)


CAMERA_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".png")


def read_camera_measurement(p: Path) -> ImageData:
    """A bare real 2-D camera image (``.npy``, ``.npz``, ``.tif``/``.tiff``, ``.png`` — see
    :func:`~napari_dmicro.io.camera_images.read_camera_image` — or a real zarr root array) as a
    ``measurement``. A zarr array's attributes may give its pixel size (as for fields); otherwise
    ``attrs["defaults_used"]`` lists ``pixel_size_um``: the camera pitch is unknown."""
    where = str(p)
    raw: dict = {}
    if p.is_dir():
        node = zarr.open(str(p), mode="r")
        if not isinstance(node, zarr.Array) or np.dtype(node.dtype).kind not in "iuf":
            raise FieldFormatError(f"{where}: a bare camera image stored as zarr must be a real root array")
        raw = dict(node.attrs)
        attrs: dict = {}
        data = _squeeze_leading(zarr_data(node, p, True, where), where, attrs).astype(np.float32)
        scan_finite(data, where, None)
    else:
        try:
            data, attrs = read_camera_image(p, stack=True), {}
        except ValueError as exc:
            raise FieldFormatError(f"{where}: {exc}") from exc
    image = _foreign((data, attrs), raw, where, "camera image", p)
    return ImageData(image.data, "measurement", image.pixel_size_um, image.wavelength_um, image.attrs)
