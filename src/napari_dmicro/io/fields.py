"""Read and write complex fields, camera measurements and phase maps.

This module is the I/O engine shared by the CLI, the napari reader/writer and the widgets. It imports
neither Qt nor napari.

Store layout (one zarr v3 directory, conventionally named ``*.zarr``)
---------------------------------------------------------------------
Root group attributes::

    "napari_dmicro": {
        "format_version": 1,
        "kind": "field" | "measurement" | "phase" | "amplitude",
        "pixel_size_um": <pitch of THIS array's pixels, micrometres>,
        "wavelength_um": <vacuum wavelength, micrometres>,
        "units": {"pixel_size": "micrometer", "wavelength": "micrometer", "phase": "rad", ...},
        "software": "napari-dmicro", "software_version": "<napari_dmicro.__version__>",
        ... provenance given by the caller (model, compression, photons, read_noise_e, seed, source, ...)
    },
    "ome": {"version": "0.5", "multiscales": [...], "omero": {...}}

Arrays:

* ``field`` (complex64), ``measurement``, ``phase`` (radians) or ``amplitude`` (float32), shape
  ``(rows, cols)``, chunks up to 1024², holding the exact data;
* ``0``, ``1``, ... an OME-Zarr 0.5 multiscale image with axes ``c, y, x`` (y/x in micrometres,
  ``scale`` transform = physical pixel size × 2**level) of float32 real channels: ``amplitude`` and
  ``phase`` (rad, in (−π, π]) for a field, ``intensity`` for a measurement, ``phase`` for a phase map,
  ``amplitude`` for an amplitude map. Level *k+1* is the 2×2 mean of level *k* (odd trailing
  rows/columns dropped); the phase channel of a field is the amplitude-weighted circular mean
  (angle of the mean phasor), a phase map is averaged linearly. Levels are added until the image
  is at most 512 pixels on its longer side (at most 8 levels). These levels are for display
  (napari multiscale, napari-ome-zarr, Fiji); the exact data is always the named array.

Everything is written blockwise with dask, so a field larger than memory can be written and read.
Writes are atomic: the store is written to a hidden temporary sibling and renamed onto the target
when complete; on any error the temporary is removed and the target is untouched.

Foreign inputs understood by :func:`read_image`
------------------------------------------------
* a zarr (v2 or v3) whose root is a complex array;
* a zarr group with a complex ``field`` array, or with real ``amplitude`` and ``phase`` arrays of
  the same shape (field = amplitude·exp(i·phase), computed lazily);
* ``.npy`` holding a complex array; ``.npz`` with a ``field`` array, ``amplitude``+``phase``
  arrays, or a single complex array (0-d entries such as ``pixel_size_um`` are read as attributes).

Leading singleton axes of foreign data (``(1, rows, cols)``) are dropped on reading (recorded in
``attrs["squeezed_from_shape"]``); the writers require exactly 2-D data. Foreign complex128 is
returned as complex64 (``attrs["source_dtype"]`` records the original).

Units of foreign attributes: ``pixel_size_um``/``_nm``/``_m``/``_mm`` and
``wavelength_um``/``_nm``/``_m``/``_mm`` are converted to micrometres; a bare ``pixel_size`` or
``wavelength`` needs a ``pixel_size_unit``/``wavelength_unit`` attribute (``"m"``, ``"mm"``,
``"um"``, ``"µm"``, ``"micrometer"``, ``"nm"``, ...), otherwise it is rejected as ambiguous. Two
attributes for the same quantity that disagree are rejected. Missing values fall back to
:data:`~napari_dmicro.config.DEFAULT_PIXEL_SIZE_UM` / :data:`~napari_dmicro.config.DEFAULT_WAVELENGTH_UM`
and ``attrs["defaults_used"]`` lists them. Converted values must be plausible micrometres
(pixel size 0.001–1000 µm, wavelength 0.1–20 µm, the ranges of
:class:`~napari_dmicro.config.GridConfig`);
values that look like metres or nanometres are rejected with a hint.

Non-finite values: numpy inputs are scanned completely. Dask inputs are checked block by block
while being written (an error aborts the write, nothing is left behind); on reading, lazy arrays
are scanned only when smaller than :data:`FINITE_SCAN_LIMIT_BYTES` so that opening a huge store
stays instantaneous.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field as dataclass_field, replace
from pathlib import Path
from typing import Any, Literal, Mapping, get_args

import dask.array as da
import numpy as np
import zarr

from ..config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from .errors import FieldFormatError, MissingArrayError, NotAZarrStoreError, UnitError

ImageKind = Literal["field", "measurement", "phase", "amplitude"]
KINDS: tuple[str, ...] = get_args(ImageKind)

#: Key of the namespaced attribute block in the root group.
ATTRS_KEY = "napari_dmicro"
FORMAT_VERSION = 1
#: Chunk side of every written array (smaller arrays get one chunk).
CHUNK = 1024
#: Pyramid levels are added until the longer side is at most this.
PYRAMID_MIN_SIZE = 512
MAX_PYRAMID_LEVELS = 8
#: Lazily read arrays at most this large are scanned for NaN/inf on reading.
FINITE_SCAN_LIMIT_BYTES = 256 * 2**20
#: ``.npy`` files larger than this are memory-mapped and wrapped in dask when ``lazy`` is None.
LAZY_NPY_BYTES = 256 * 2**20

PIXEL_SIZE_RANGE_UM = (1e-3, 1e3)
WAVELENGTH_RANGE_UM = (0.1, 20.0)

_DTYPES = {
    "field": np.dtype(np.complex64),
    "measurement": np.dtype(np.float32),
    "phase": np.dtype(np.float32),
    "amplitude": np.dtype(np.float32),
}
#: OME channel labels per kind.
CHANNELS = {
    "field": ("amplitude", "phase"),
    "measurement": ("intensity",),
    "phase": ("phase",),
    "amplitude": ("amplitude",),
}
_FIXED_UNITS = {"pixel_size": "micrometer", "wavelength": "micrometer", "phase": "rad"}
_DEFAULT_UNITS = {
    "field": {"field": "dimensionless (complex transmission)", "amplitude": "dimensionless"},
    "measurement": {"measurement": "arbitrary (detector intensity)"},
    "phase": {},
    "amplitude": {"amplitude": "dimensionless"},
}
_RESERVED = ("format_version", "kind", "pixel_size_um", "wavelength_um")

_UNIT_TO_UM = {
    "m": 1e6, "meter": 1e6, "metre": 1e6, "meters": 1e6, "metres": 1e6,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3, "millimeters": 1e3, "millimetres": 1e3,
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micrometer": 1.0, "micrometre": 1.0, "micrometers": 1.0,
    "micrometres": 1.0, "micron": 1.0, "microns": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "nanometers": 1e-3, "nanometres": 1e-3,
}
_SUFFIX_TO_UM = {"_um": 1.0, "_nm": 1e-3, "_mm": 1e3, "_m": 1e6}


@dataclass(frozen=True)
class ImageData:
    """A 2-D image with its physical sampling and provenance.

    ``data`` is complex64 ``(rows, cols)`` for ``kind="field"`` and float32 otherwise; numpy or
    dask. ``pixel_size_um`` is the pitch of *this* array's pixels (a camera measurement's pitch is
    the object pitch times the binning). ``attrs`` holds provenance (model, compression, photons,
    source, units, ...).
    """

    data: Any
    kind: ImageKind
    pixel_size_um: float
    wavelength_um: float
    attrs: dict = dataclass_field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_lazy(self) -> bool:
        return isinstance(self.data, da.Array)

    def compute(self) -> ImageData:
        """The same image with its data loaded into a numpy array."""
        return replace(self, data=np.asarray(self.data))


# --------------------------------------------------------------------------------------------------
# validation


def _describe(array) -> str:
    return f"shape {tuple(array.shape)}, dtype {array.dtype}"


def _as_array(array, name: str):
    if isinstance(array, ImageData):
        array = array.data
    if isinstance(array, (np.ndarray, da.Array)):
        return array
    if isinstance(array, (list, tuple)) and array and isinstance(array[0], da.Array):
        raise FieldFormatError(f"{name} is a list of arrays (a multiscale pyramid?); pass one 2-D array")
    try:
        out = np.asarray(array)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a format problem
        raise FieldFormatError(f"{name} cannot be converted to an array: {exc}") from exc
    if out.dtype == object:
        raise FieldFormatError(f"{name} is not a numeric array (got {type(array).__name__})")
    return out


def _check_finite(array, name: str, check_finite: bool | None) -> None:
    if check_finite is None:
        check_finite = isinstance(array, np.ndarray) or array.nbytes <= FINITE_SCAN_LIMIT_BYTES
    if not check_finite:
        return
    if isinstance(array, da.Array):
        ok = bool(da.isfinite(array).all().compute())
        if ok:
            return
        array = array.compute()
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    n_nan = int(np.isnan(array).sum())
    n_bad = int(bad.sum())
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise FieldFormatError(
        f"{name} contains non-finite values ({n_nan} NaN, {n_bad - n_nan} inf; first at index "
        f"{first}); replace or mask them (e.g. np.nan_to_num) before using it"
    )


def _check_shape(array, name: str) -> None:
    if array.ndim != 2:
        shape = tuple(array.shape)
        if array.ndim > 2 and all(s == 1 for s in shape[:-2]):
            hint = (
                f"a leading singleton axis is not accepted; pass {name}[0] "
                "(or np.squeeze) to give a 2-D (rows, cols) array"
            )
        elif array.ndim > 2:
            hint = "stacks are not supported; write each 2-D image separately"
        else:
            hint = "a (rows, cols) image is required"
        raise FieldFormatError(f"{name} must be 2-D (rows, cols) but has shape {shape}: {hint}")
    if array.size == 0:
        raise FieldFormatError(f"{name} is empty (shape {tuple(array.shape)}); nothing to read or write")


def validate_image(
    array, kind: ImageKind, name: str | None = None, *, check_finite: bool | None = None
) -> None:
    """Raise :class:`FieldFormatError` unless ``array`` is a valid 2-D image of ``kind``.

    A field must be complex; the other kinds real (integer or floating point). ``check_finite``:
    ``True`` scans all values for NaN/inf, ``False`` skips the scan, ``None`` (default) scans numpy
    arrays and dask arrays up to :data:`FINITE_SCAN_LIMIT_BYTES` (the writers check larger dask
    arrays block by block while writing).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    name = name or kind
    array = _as_array(array, name)
    dt = np.dtype(array.dtype)
    if kind == "field":
        if dt.kind != "c":
            raise FieldFormatError(
                f"{name} is real-valued ({_describe(array)}) but a field must be complex "
                "(complex64 or complex128); build it as amplitude * np.exp(1j * phase), or save a "
                "phase map with write_phase / a camera image with write_measurement"
            )
    elif dt.kind == "c":
        raise FieldFormatError(
            f"{name} is complex ({_describe(array)}) but a {kind} must be real; use write_field "
            "for a complex field, or take np.abs / np.angle first"
        )
    elif dt.kind not in "iuf":
        raise FieldFormatError(f"{name} must be a real numeric array for a {kind}, got dtype {dt}")
    _check_shape(array, name)
    _check_finite(array, name, check_finite)


def validate_field(array, name: str = "field", *, check_finite: bool | None = None) -> None:
    """Raise :class:`FieldFormatError` unless ``array`` is a finite, non-empty, 2-D complex array.

    See :func:`validate_image` for ``check_finite``.
    """
    validate_image(array, "field", name, check_finite=check_finite)


# --------------------------------------------------------------------------------------------------
# units


def _number(value, key: str, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UnitError(f"{where}: {key}={value!r} is not a number")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise UnitError(f"{where}: {key}={value!r} must be a positive finite number")
    return v


def check_length_um(
    value, quantity: Literal["pixel_size", "wavelength"], *, key: str | None = None, where: str = ""
) -> float:
    """Validate a length in micrometres; hint at metres/nanometres when the value looks like them."""
    key = key or f"{quantity}_um"
    where = where or "argument"
    v = _number(value, key, where)
    lo, hi = PIXEL_SIZE_RANGE_UM if quantity == "pixel_size" else WAVELENGTH_RANGE_UM
    if lo <= v <= hi:
        return v
    if lo <= v * 1e6 <= hi:
        hint = f"it looks like metres ({v:g} m = {v * 1e6:g} µm)"
    elif lo <= v * 1e-3 <= hi:
        hint = f"it looks like nanometres ({v:g} nm = {v * 1e-3:g} µm)"
    else:
        hint = "it is outside the plausible range"
    example = DEFAULT_PIXEL_SIZE_UM if quantity == "pixel_size" else DEFAULT_WAVELENGTH_UM
    raise UnitError(
        f"{where}: {key}={value!r} µm is implausible: {hint}; give the {quantity.replace('_', ' ')} in "
        f"micrometres, between {lo:g} and {hi:g} (e.g. {example})"
    )


def _resolve_length(
    attrs: Mapping, quantity: Literal["pixel_size", "wavelength"], where: str
) -> float | None:
    """The quantity in µm from any of the recognised attribute spellings, or None if absent."""
    found: list[tuple[str, float]] = []
    for suffix, factor in _SUFFIX_TO_UM.items():
        key = quantity + suffix
        if key in attrs:
            raw = _number(attrs[key], key, where)
            found.append((key, raw * factor))
    unit_key = next((k for k in (f"{quantity}_unit", f"{quantity}_units") if k in attrs), None)
    if quantity in attrs:
        raw = _number(attrs[quantity], quantity, where)
        if unit_key is None:
            raise UnitError(
                f"{where}: attribute {quantity!r}={attrs[quantity]!r} has no unit; rename it to "
                f"{quantity}_um (micrometres) or add {quantity}_unit (e.g. 'um', 'nm' or 'm')"
            )
        unit = attrs[unit_key]
        factor = _UNIT_TO_UM.get(str(unit).strip().lower()) if isinstance(unit, str) else None
        if factor is None:
            raise UnitError(
                f"{where}: unknown unit {unit_key}={unit!r}; use one of 'm', 'mm', 'um' (µm), 'nm'"
            )
        found.append((f"{quantity} [{unit}]", raw * factor))
    elif unit_key is not None:
        raise UnitError(
            f"{where}: {unit_key}={attrs[unit_key]!r} is given but there is no {quantity!r} attribute "
            f"it applies to; give {quantity} with its unit, or only {quantity}_um"
        )
    if not found:
        return None
    key0, v0 = found[0]
    for key, v in found[1:]:
        if not math.isclose(v, v0, rel_tol=1e-6):
            raise UnitError(
                f"{where}: inconsistent {quantity.replace('_', ' ')}: {key0} gives {v0:g} µm but {key} "
                f"gives {v:g} µm; keep one of them"
            )
    key = key0 if key0.endswith("_um") else f"{key0} → {quantity}_um"
    return check_length_um(v0, quantity, key=key, where=where)


def _resolve_sampling(attrs: Mapping, where: str) -> tuple[float, float, list[str]]:
    defaults: list[str] = []
    ps = _resolve_length(attrs, "pixel_size", where)
    if ps is None:
        ps = DEFAULT_PIXEL_SIZE_UM
        defaults.append("pixel_size_um")
    wl = _resolve_length(attrs, "wavelength", where)
    if wl is None:
        wl = DEFAULT_WAVELENGTH_UM
        defaults.append("wavelength_um")
    return ps, wl, defaults


def _check_units_block(units, where: str) -> None:
    if not isinstance(units, Mapping):
        raise UnitError(f"{where}: 'units' must be a mapping of quantity to unit, got {units!r}")
    for q, expected in _FIXED_UNITS.items():
        if q in units and units[q] != expected:
            raise UnitError(
                f"{where}: unknown or inconsistent unit for {q}: {units[q]!r}; napari-dmicro stores "
                f"{q} in {expected!r} (convert the values instead of relabelling them)"
            )


# --------------------------------------------------------------------------------------------------
# attributes


def _jsonable(value, key: str):
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldFormatError(
                f"attribute {key!r}={value!r} is not finite; JSON attributes must be finite"
            )
        return value
    if isinstance(value, np.generic):
        return _jsonable(value.item(), key)
    if isinstance(value, np.ndarray):
        if value.size > 10_000:
            raise FieldFormatError(
                f"attribute {key!r} is a large array ({value.shape}); store data as arrays, not attrs"
            )
        return _jsonable(value.tolist(), key)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "model_dump"):  # pydantic models (e.g. the encoder config)
        return _jsonable(value.model_dump(mode="json"), key)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise FieldFormatError(
        f"attribute {key!r} has type {type(value).__name__}, which cannot be stored as JSON; "
        "convert it to numbers, strings, lists or dicts"
    )


def _build_block(kind: str, pixel_size_um: float, wavelength_um: float, attrs: Mapping | None) -> dict:
    from .. import __version__

    user = dict(attrs or {})
    for key, expected in (("kind", kind), ("pixel_size_um", pixel_size_um), ("wavelength_um", wavelength_um)):
        if key in user and user[key] != expected:
            same = (
                isinstance(expected, float)
                and isinstance(user[key], (int, float))
                and math.isclose(user[key], expected, rel_tol=1e-9)
            )
            if not same:
                raise UnitError(
                    f"attrs[{key!r}]={user[key]!r} disagrees with the {key} argument ({expected!r}); "
                    "drop it from attrs or make them agree"
                )
    suffixes = ("", "_nm", "_m", "_mm", "_unit", "_units")
    for other in (f"{q}{suffix}" for q in ("pixel_size", "wavelength") for suffix in suffixes):
        if other in user:
            raise UnitError(
                f"attrs[{other!r}] duplicates the pixel_size_um/wavelength_um arguments in another unit; "
                "remove it (sampling is stored once, in micrometres)"
            )
    units = dict(_DEFAULT_UNITS[kind])
    units.update(_FIXED_UNITS)
    if "units" in user:
        _check_units_block(user["units"], "attrs")
        units.update(_jsonable(dict(user["units"]), "units"))
    block = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "pixel_size_um": float(pixel_size_um),
        "wavelength_um": float(wavelength_um),
        "units": units,
        "software": "napari-dmicro",
        "software_version": __version__,
    }
    for key, value in user.items():
        if key in _RESERVED or key in ("units", "software", "software_version"):
            continue
        block[str(key)] = _jsonable(value, str(key))
    return block


# --------------------------------------------------------------------------------------------------
# writing


def _target_path(path) -> Path:
    target = Path(os.fspath(path)).expanduser()
    if target.name in ("", ".", ".."):
        raise FieldFormatError(f"{path!s} is not a valid output name; give e.g. 'field.zarr'")
    if target.suffix == "":
        target = target.with_name(target.name + ".zarr")
    elif target.suffix.lower() != ".zarr":
        raise FieldFormatError(
            f"{target} : napari-dmicro writes zarr stores only; use a name ending in .zarr "
            f"(got suffix {target.suffix!r})"
        )
    return target.absolute()


def _looks_like_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zarray"))


def _check_target(target: Path, overwrite: bool) -> None:
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
    if target.is_dir() and not _looks_like_zarr(target):
        raise FileExistsError(
            f"{target} exists and is a directory that is not a zarr store; refusing to replace it"
        )


def _commit(tmp: Path, target: Path, overwrite: bool) -> None:
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    _check_target(target, overwrite)
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def _finite_block(block: np.ndarray, label: str, block_info=None) -> np.ndarray:
    if not np.isfinite(block).all():
        where = ""
        if block_info and block_info.get(0):
            loc = block_info[0].get("array-location")
            if loc:
                (r0, r1), (c0, c1) = loc
                where = f" in rows {r0}–{r1 - 1}, cols {c0}–{c1 - 1}"
        n_nan = int(np.isnan(block).sum())
        n_inf = int((~np.isfinite(block)).sum()) - n_nan
        raise FieldFormatError(
            f"{label} contains non-finite values{where} ({n_nan} NaN, {n_inf} inf in that block); "
            "replace or mask them (e.g. np.nan_to_num) before writing"
        )
    return block


def _source(array, dtype: np.dtype, chunks: tuple[int, int], label: str) -> da.Array:
    """A chunk-aligned dask view of the input cast to the store dtype; NaN/inf raise per block."""
    if isinstance(array, da.Array):
        src = array.astype(dtype).rechunk(chunks)
        return src.map_blocks(_finite_block, label, dtype=dtype, meta=np.empty((0, 0), dtype))
    return da.from_array(np.asarray(array).astype(dtype, copy=False), chunks=chunks)


def _level_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) + tuple(min(CHUNK, s) for s in shape[1:])


def _downsample(level: da.Array, kind: str) -> da.Array:
    axes = {1: 2, 2: 2}
    if kind == "field":
        amp, phase = level[0], level[1]
        amp2 = da.coarsen(np.mean, amp, {0: 2, 1: 2}, trim_excess=True)
        phasor = amp.astype(np.complex64) * da.exp(1j * phase.astype(np.complex64))
        phase2 = da.angle(da.coarsen(np.mean, phasor, {0: 2, 1: 2}, trim_excess=True))
        return da.stack([amp2, phase2]).astype(np.float32)
    return da.coarsen(np.mean, level, axes, trim_excess=True).astype(np.float32)


def _window(values: np.ndarray, label: str, kind: str) -> dict:
    if kind == "field" and label == "phase":
        lo, hi = -math.pi, math.pi
    else:
        lo, hi = float(values.min()), float(values.max())
        if label == "amplitude":
            lo = min(lo, 0.0)
        if hi <= lo:
            hi = lo + 1.0
    return {"min": lo, "max": hi, "start": lo, "end": hi}


def _ome_metadata(name: str, kind: str, pixel_size_um: float, n_levels: int, coarsest: np.ndarray) -> dict:
    datasets = []
    for k in range(n_levels):
        s = pixel_size_um * 2**k
        transforms: list[dict] = [{"type": "scale", "scale": [1.0, s, s]}]
        if k:
            t = (2**k - 1) / 2 * pixel_size_um  # centre of the 2^k × 2^k block of level-0 pixels
            transforms.append({"type": "translation", "translation": [0.0, t, t]})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    colors = {"amplitude": "FFFFFF", "phase": "00FFFF", "intensity": "FFFFFF"}
    channels = [
        {
            "label": label,
            "color": colors.get(label, "FFFFFF"),
            "active": True,
            "coefficient": 1,
            "family": "linear",
            "inverted": False,
            "window": _window(coarsest[i], label, kind),
        }
        for i, label in enumerate(CHANNELS[kind])
    ]
    return {
        "version": "0.5",
        "multiscales": [
            {
                "name": name,
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": datasets,
                "type": "mean (2x2; circular mean for field phase)",
                "metadata": {
                    "description": f"napari-dmicro {kind}: real display channels {list(CHANNELS[kind])}; "
                    f"exact data in the '{kind}' array",
                },
            }
        ],
        "omero": {
            "name": name,
            "channels": channels,
            "rdefs": {"model": "greyscale" if len(channels) == 1 else "color", "defaultZ": 0, "defaultT": 0},
        },
    }


def _create_level(root, name: str, shape: tuple[int, ...]):
    return root.create_array(
        name, shape=shape, dtype=np.float32, chunks=_level_chunks(shape), fill_value=0,
        dimension_names=("c", "y", "x"),
    )


def _write_store(tmp: Path, array, kind: str, pixel_size_um: float, block: dict, name: str) -> None:
    dtype = _DTYPES[kind]
    chunks = tuple(min(CHUNK, s) for s in array.shape)
    src = _source(array, dtype, chunks, label=kind)
    root = zarr.open_group(str(tmp), mode="w-", zarr_format=3)
    exact = root.create_array(
        kind, shape=src.shape, dtype=dtype, chunks=chunks, fill_value=0, dimension_names=("y", "x")
    )
    if kind == "field":
        level = da.stack([da.absolute(src), da.angle(src)]).astype(np.float32)
    else:
        level = src[None].astype(np.float32)
    shape0 = level.shape
    z0 = _create_level(root, "0", shape0)
    da.store([src, level.rechunk(z0.chunks)], [exact, z0], lock=False)
    prev = z0
    n_levels = 1
    while (
        max(prev.shape[1:]) > PYRAMID_MIN_SIZE and min(prev.shape[1:]) >= 2 and n_levels < MAX_PYRAMID_LEVELS
    ):
        nxt = _downsample(da.from_zarr(prev), kind)
        zk = _create_level(root, str(n_levels), nxt.shape)
        da.store(nxt.rechunk(zk.chunks), zk, lock=False)
        prev = zk
        n_levels += 1
    coarsest = np.asarray(prev[...])
    root.attrs.update({ATTRS_KEY: block, "ome": _ome_metadata(name, kind, pixel_size_um, n_levels, coarsest)})


def write_image(
    path,
    data,
    *,
    kind: ImageKind,
    pixel_size_um: float,
    wavelength_um: float,
    attrs: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a 2-D image of ``kind`` as a napari-dmicro zarr v3 / OME-Zarr 0.5 store (atomically).

    ``path`` must end in ``.zarr`` (``.zarr`` is appended when there is no suffix; parent
    directories are created). Returns the absolute path written. Raises :class:`FileExistsError`
    if it exists and ``overwrite`` is false (an existing directory that is not a zarr store is never
    replaced), :class:`FieldFormatError` for bad data, :class:`UnitError` for bad sampling.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    target = _target_path(path)
    ps = check_length_um(pixel_size_um, "pixel_size")
    wl = check_length_um(wavelength_um, "wavelength")
    array = _as_array(data, kind)
    # numpy: full scan now, before anything is written; dask: checked per block while writing.
    validate_image(array, kind, check_finite=not isinstance(array, da.Array))
    block = _build_block(kind, ps, wl, attrs)
    _check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        _write_store(tmp, array, kind, ps, block, name=target.stem)
        _commit(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_field(
    path, field, *, pixel_size_um: float, wavelength_um: float, attrs: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complex (rows, cols) field (stored as complex64) with amplitude/phase OME channels."""
    return write_image(path, field, kind="field", pixel_size_um=pixel_size_um, wavelength_um=wavelength_um,
                       attrs=attrs, overwrite=overwrite)


def write_measurement(
    path, measurement, *, pixel_size_um: float, wavelength_um: float, attrs: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a real camera image (float32). ``pixel_size_um`` is the camera-pixel pitch in object
    space (object pitch × binning)."""
    return write_image(path, measurement, kind="measurement", pixel_size_um=pixel_size_um,
                       wavelength_um=wavelength_um, attrs=attrs, overwrite=overwrite)


def write_phase(
    path, phase_rad, *, pixel_size_um: float, wavelength_um: float, attrs: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a real phase map in radians (float32)."""
    return write_image(path, phase_rad, kind="phase", pixel_size_um=pixel_size_um,
                       wavelength_um=wavelength_um, attrs=attrs, overwrite=overwrite)


# --------------------------------------------------------------------------------------------------
# reading


def detect_format(path) -> str | None:
    """Cheaply classify ``path`` without reading array data.

    Returns ``"napari_dmicro"`` (our store, possibly broken), ``"zarr-array"`` (root complex
    array), ``"zarr-field"`` (group with a ``field`` array), ``"zarr-amplitude-phase"``, ``"npy"``
    (complex), ``"npz"`` (with a field) or None for anything else.
    """
    p = Path(os.fspath(path))
    try:
        if p.is_dir():
            if not _looks_like_zarr(p):
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
                for key, member in members.items():
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
    _check_shape(array, where)
    return array


def _finish_field(array, where: str, attrs: dict, lazy: bool) -> da.Array | np.ndarray:
    """Validate a foreign complex array and return complex64 (dask if lazy)."""
    dt = np.dtype(array.dtype)
    if dt.kind != "c":
        raise FieldFormatError(
            f"{where} is real-valued ({_describe(array)}) but a complex field was expected; give a "
            "complex64/complex128 array, or amplitude and phase arrays, or use write_phase for a phase map"
        )
    array = _squeeze_leading(array, where, attrs)
    if dt != np.complex64:
        attrs["source_dtype"] = str(dt)
        array = array.astype(np.complex64)
    if not lazy and isinstance(array, da.Array):
        array = array.compute()
    _check_finite(array, where, None)
    return array


def _real(array, where: str, name: str, attrs: dict):
    dt = np.dtype(array.dtype)
    if dt.kind not in "iuf":
        raise FieldFormatError(f"{where}: the {name!r} array must be real, got {_describe(array)}")
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
    _check_finite(field, where + " (amplitude·exp(i·phase))", None)
    return field.astype(np.complex64)


def _merge_attrs(outer: Mapping, inner: Mapping, where: str) -> dict:
    merged = dict(inner)
    for k, v in outer.items():
        if k in merged and merged[k] != v:
            raise UnitError(f"{where}: attribute {k!r} is {v!r} on the group but {merged[k]!r} on the array")
        merged[k] = v
    return merged


def _foreign(data, raw_attrs: Mapping, where: str, fmt: str, path: Path) -> ImageData:
    ps, wl, defaults = _resolve_sampling(raw_attrs, where)
    attrs: dict = {"source": str(path), "source_format": fmt}
    if defaults:
        attrs["defaults_used"] = defaults
    for key, value in data[1].items():
        attrs[key] = value
    return ImageData(data[0], "field", ps, wl, attrs)


def _dask_or_numpy(zarray, lazy: bool):
    return da.from_zarr(zarray) if lazy else np.asarray(zarray[...])


def _read_ours(group, path: Path, lazy: bool) -> ImageData:
    where = str(path)
    block = group.attrs[ATTRS_KEY]
    if not isinstance(block, Mapping):
        raise FieldFormatError(f"{where}: the {ATTRS_KEY!r} attribute block is not a mapping")
    version = block.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise FieldFormatError(f"{where}: missing or invalid {ATTRS_KEY}.format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise FieldFormatError(
            f"{where} has format_version {version}, newer than this napari-dmicro understands "
            f"({FORMAT_VERSION}); upgrade napari-dmicro"
        )
    kind = block.get("kind")
    if kind not in KINDS:
        raise FieldFormatError(
            f"{where}: unknown kind {kind!r} in {ATTRS_KEY} attrs; expected one of {KINDS}"
        )
    if "units" in block:
        _check_units_block(block["units"], where)
    for q in ("pixel_size_um", "wavelength_um"):
        if q not in block:
            raise UnitError(
                f"{where}: {ATTRS_KEY}.{q} is missing; the store does not say its {q[:-3].replace('_', ' ')}"
            )
    ps = _resolve_length(block, "pixel_size", where)
    wl = _resolve_length(block, "wavelength", where)
    _check_ome_consistency(group, ps, where)
    names = set(group.array_keys())
    if kind not in names:
        raise MissingArrayError(
            f"{where} is a napari-dmicro {kind} store but has no {kind!r} array (found {sorted(names)}); "
            "the store is incomplete or was modified"
        )
    arr = group[kind]
    dt = np.dtype(arr.dtype)
    if (kind == "field") != (dt.kind == "c") or dt.kind not in "cf":
        raise FieldFormatError(f"{where}: the {kind!r} array has dtype {dt}, which is wrong for a {kind}")
    _check_shape(arr, f"{where}: {kind!r} array")
    data = _dask_or_numpy(arr, lazy)
    attrs = {k: v for k, v in block.items() if k not in ("kind", "pixel_size_um", "wavelength_um")}
    return ImageData(data, kind, ps, wl, attrs)


def _check_ome_consistency(group, pixel_size_um: float, where: str) -> None:
    ome = group.attrs.get("ome")
    if not isinstance(ome, Mapping):
        return
    try:
        ms = ome["multiscales"][0]
        axes = ms["axes"]
        transforms = ms["datasets"][0]["coordinateTransformations"]
        scale = next(t["scale"] for t in transforms if t["type"] == "scale")
    except (KeyError, IndexError, TypeError, StopIteration) as exc:
        raise FieldFormatError(f"{where}: malformed OME-Zarr 'multiscales' metadata ({exc!r})") from exc
    for ax in axes[-2:]:
        unit = ax.get("unit")
        if unit is not None and unit != "micrometer":
            raise UnitError(
                f"{where}: OME axis {ax.get('name')!r} has unit {unit!r} but napari-dmicro stores are in "
                "'micrometer'; the metadata is inconsistent"
            )
    for s in scale[-2:]:
        if not math.isclose(float(s), pixel_size_um, rel_tol=1e-6):
            raise UnitError(
                f"{where}: inconsistent pixel size: {ATTRS_KEY}.pixel_size_um={pixel_size_um:g} but the "
                f"OME-Zarr scale is {scale[-2:]} µm"
            )


def _read_zarr(p: Path, lazy: bool) -> ImageData:
    where = str(p)
    if not _looks_like_zarr(p):
        raise NotAZarrStoreError(
            f"{where} is a directory but not a zarr store (no zarr.json, .zgroup or .zarray inside); "
            "give a .zarr store, a .npy or a .npz file"
        )
    try:
        node = zarr.open(str(p), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise NotAZarrStoreError(f"{where} could not be opened as a zarr store: {exc}") from exc
    if isinstance(node, zarr.Array):
        attrs: dict = {}
        data = _finish_field(_dask_or_numpy(node, True), f"{where} (root array)", attrs, lazy)
        return _foreign((data, attrs), dict(node.attrs), where, "zarr-array", p)
    gattrs = dict(node.attrs)
    if ATTRS_KEY in gattrs:
        return _read_ours(node, p, lazy)
    names = set(node.array_keys())
    if "field" in names:
        arr = node["field"]
        raw = _merge_attrs(gattrs, dict(arr.attrs), where)
        attrs = {}
        data = _finish_field(_dask_or_numpy(arr, True), f"{where}: 'field' array", attrs, lazy)
        return _foreign((data, attrs), raw, where, "zarr-field", p)
    if {"amplitude", "phase"} <= names:
        amp, ph = node["amplitude"], node["phase"]
        raw = _merge_attrs(gattrs, _merge_attrs(dict(amp.attrs), dict(ph.attrs), where), where)
        attrs = {}
        data = _combine(da.from_zarr(amp), da.from_zarr(ph), where, attrs, lazy)
        return _foreign((data, attrs), raw, where, "zarr-amplitude-phase", p)
    hint = ""
    if "ome" in gattrs or "multiscales" in gattrs:
        hint = " (an OME-Zarr image is not a complex field; open it with napari-ome-zarr)"
    raise MissingArrayError(
        f"{where} is a zarr group without the expected arrays: need a complex 'field' array, or "
        f"real 'amplitude' and 'phase' arrays, or napari-dmicro metadata; found arrays "
        f"{sorted(names) or 'none'}{hint}"
    )


def _read_npy(p: Path, lazy: bool | None) -> ImageData:
    where = str(p)
    if lazy is None:
        lazy = p.stat().st_size > LAZY_NPY_BYTES
    try:
        arr = np.load(p, mmap_mode="r" if lazy else None, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise FieldFormatError(f"{where} could not be read as a .npy array: {exc}") from exc
    if lazy:
        arr = da.from_array(arr, chunks=(CHUNK,) * arr.ndim if arr.ndim else ())
    attrs: dict = {}
    data = _finish_field(arr, where, attrs, lazy)
    return _foreign((data, attrs), {}, where, "npy", p)


def _read_npz(p: Path) -> ImageData:
    where = str(p)
    try:
        with np.load(p, allow_pickle=False) as npz:
            entries = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001
        raise FieldFormatError(f"{where} could not be read as a .npz archive: {exc}") from exc
    raw = {k: v.item() for k, v in entries.items() if v.ndim == 0}
    arrays = {k: v for k, v in entries.items() if v.ndim > 0}
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


def read_image(path, *, lazy: bool | None = None) -> ImageData:
    """Read any napari-dmicro store, or a foreign complex zarr / amplitude+phase group / npy / npz.

    ``lazy``: ``None`` (default) means dask for zarr stores and for ``.npy`` files over
    :data:`LAZY_NPY_BYTES` (memory-mapped), numpy otherwise; ``True``/``False`` force it (``.npz``
    is always loaded). Raises :class:`FileNotFoundError` for a missing path and
    :class:`FieldFormatError` (or a subclass) with the reason for anything unreadable.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_dir():
        return _read_zarr(p, True if lazy is None else lazy)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _read_npy(p, lazy)
    if suffix == ".npz":
        return _read_npz(p)
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


class _Strided:
    """Array-like view ``array[..., ::step, ::step]`` (leading singleton axes dropped) that reads
    only the selected elements, so a coarse level of a huge store never holds full-resolution
    chunks (napari turns dask task fusion off and caches task results)."""

    def __init__(self, array, step: int):
        self.array = array
        self.step = step
        self.lead = (0,) * (array.ndim - 2)
        rows, cols = array.shape[-2:]
        self.shape = (-(-rows // step), -(-cols // step))
        self.dtype = np.dtype(array.dtype)
        self.ndim = 2

    def __getitem__(self, selection):
        s = self.step
        sel = []
        for sl, n in zip(selection, self.shape):
            start, stop, _ = sl.indices(n)
            sel.append(slice(start * s, stop * s, s))
        return np.asarray(self.array[self.lead + tuple(sel)])


def _strided_levels(array, min_size: int = PYRAMID_MIN_SIZE) -> list[da.Array]:
    levels = []
    step = 1
    while True:
        view = _Strided(array, step)
        chunks = (CHUNK // 2, CHUNK // 2) if step > 1 else (CHUNK, CHUNK)
        levels.append(da.from_array(view, chunks=chunks, asarray=False))
        if max(view.shape) <= min_size or min(view.shape) < 2 or len(levels) >= MAX_PYRAMID_LEVELS:
            return levels
        step *= 2


def display_levels(path) -> list[da.Array] | None:
    """Lazy float32 display levels ``(c, y, x)`` of an image store, finest first, or None.

    Channels are :data:`CHANNELS` of the kind (amplitude and phase for a field). Our stores give
    their OME-Zarr pyramid; foreign zarr stores and ``.npy`` files give strided views
    ``[::2**k, ::2**k]`` that read only the selected elements. ``.npz`` archives give None. Call
    :func:`read_image` first to validate the input; this function does not check it.
    """
    p = Path(os.fspath(path))
    fmt = detect_format(p)
    if fmt == "napari_dmicro":
        return open_pyramid(p)
    if fmt in ("zarr-array", "zarr-field"):
        node = zarr.open(str(p), mode="r")
        source = node if fmt == "zarr-array" else node["field"]
    elif fmt == "npy":
        source = np.load(p, mmap_mode="r", allow_pickle=False)
    elif fmt == "zarr-amplitude-phase":
        node = zarr.open(str(p), mode="r")
        amps = _strided_levels(node["amplitude"])
        phases = _strided_levels(node["phase"])
        return [da.stack([a, ph.rechunk(a.chunks)]).astype(np.float32) for a, ph in zip(amps, phases)]
    else:
        return None
    levels = []
    for lv in _strided_levels(source):
        lv = lv.astype(np.complex64)
        levels.append(da.stack([da.absolute(lv), da.angle(lv)]).astype(np.float32))
    return levels


def open_pyramid(path) -> list[da.Array] | None:
    """The OME-Zarr display levels ``(c, y, x)`` of a napari-dmicro store, lazily, or None."""
    p = Path(os.fspath(path))
    if not _looks_like_zarr(p):
        return None
    node = zarr.open(str(p), mode="r")
    if isinstance(node, zarr.Array) or ATTRS_KEY not in node.attrs:
        return None
    try:
        datasets = node.attrs["ome"]["multiscales"][0]["datasets"]
        levels = [da.from_zarr(node[d["path"]]) for d in datasets]
    except (KeyError, IndexError, TypeError):
        return None
    if not levels or any(lv.ndim != 3 for lv in levels):
        return None
    return levels


__all__ = [
    "ATTRS_KEY",
    "CHANNELS",
    "FORMAT_VERSION",
    "KINDS",
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
    "validate_field",
    "validate_image",
    "write_field",
    "write_image",
    "write_measurement",
    "write_phase",
]
