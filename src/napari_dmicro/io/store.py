"""Our store format: one zarr v3 / OME-Zarr 0.5 directory per image, written blockwise and atomically.

Root group attributes::

    "napari_dmicro": {
        "format_version": 1,
        "kind": "field" | "measurement" | "phase" | "amplitude" | "fluorescence",
        "modality": "fluorescence"              (fluorescence stores only; QPM stores have no such key)
        "pixel_size_um": <pitch of THIS array's pixels, micrometres>,
        "wavelength_um": <vacuum wavelength, micrometres; of a fluorescence image: its emission wavelength>,
        "units": {"pixel_size": "micrometer", "wavelength": "micrometer", "phase": "rad", ...},
        "software": "napari-dmicro", "software_version": "<napari_dmicro.__version__>",
        ... provenance given by the caller (model, compression, photons, read_noise_e, seed, source, ...)
    },
    "ome": {"version": "0.5", "multiscales": [...], "omero": {...}}   (see :mod:`~napari_dmicro.io.ome`)

Arrays: ``field`` (complex64), ``measurement``, ``phase`` (radians), ``amplitude`` or ``fluorescence``
(float32), shape ``(rows, cols)``; a fluorescence store may also hold ``labels`` (int32 instance labels of
the same shape, 0 = background: e.g. the nuclei of a generated field). A fluorescence MEASUREMENT is a
``measurement`` store with ``modality: "fluorescence"``: a (T, rows, cols) stack along ``stack_axis:
"pattern"`` (one camera frame per illumination pattern, ``pixel_size_um`` = the camera pixel) beside a
``patterns`` array (uint8 {0, 1}, (T, P, P): the binary DMD patterns over one period) that makes it
self-describing (:func:`write_fluorescence_measurement`). Chunks up to 1024², holding the
exact data, every chunk written (so a missing chunk is detected on reading,
:mod:`~napari_dmicro.io.chunks`); ``0``, ``1``, … the display pyramid
(:mod:`~napari_dmicro.io.pyramid`). Everything is written blockwise with dask, into a temporary
sibling that :func:`~napari_dmicro.io.atomic.atomic_output` moves onto the target when complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import numpy as np
import zarr

from .atomic import atomic_output
from .chunks import check_complete
from .errors import FieldFormatError, MissingArrayError, UnitError
from .images import (
    ATTRS_KEY,
    CHUNK,
    DTYPES,
    FORMAT_VERSION,
    KINDS,
    PATTERN_AXIS,
    ImageData,
    ImageKind,
    as_array,
    check_shape,
    check_stack_axis,
    validate_image,
)
from .ome import check_ome_consistency, ome_metadata, validate_ome
from .pyramid import MAX_PYRAMID_LEVELS, PYRAMID_MIN_SIZE, downsample, level_chunks
from .targets import check_replaceable, store_path
from .units import FIXED_UNITS, check_length_um, check_units_block, resolve_length

_DEFAULT_UNITS = {
    "field": {"field": "dimensionless (complex transmission)", "amplitude": "dimensionless"},
    "measurement": {"measurement": "arbitrary (detector intensity)"},
    "phase": {},
    "amplitude": {"amplitude": "dimensionless"},
    "fluorescence": {"fluorescence": "arbitrary (fluorophore density or emission intensity)",
                     "labels": "instance id (0 = background)"},
}
#: the optional instance-label array of a fluorescence store
LABELS = "labels"
#: the binary illumination patterns (T, P, P) of a fluorescence measurement store
PATTERNS = "patterns"
_RESERVED = ("format_version", "kind", "pixel_size_um", "wavelength_um")
#: Every chunk is written, also those equal to the fill value, so that a hole is detectable.
_ARRAY_CONFIG = {"write_empty_chunks": True}
#: Set in the attribute block of stores written so; older stores may lack chunks equal to 0.
EVERY_CHUNK_KEY = "every_chunk_written"


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
    if user.get("modality", "fluorescence") != "fluorescence":
        raise FieldFormatError(f"attrs['modality']={user['modality']!r}: the only modality recorded is "
                               "'fluorescence' (QPM stores have no modality key); drop it from attrs")
    fluorescence = kind == "fluorescence" or "modality" in user
    if fluorescence and kind not in ("fluorescence", "measurement"):
        raise FieldFormatError(f"a {kind} store has no modality (fluorescence stores are images and measurements); "
                               "drop 'modality' from attrs")
    units = dict(_DEFAULT_UNITS[kind])
    units.update(FIXED_UNITS)
    if "units" in user:
        check_units_block(user["units"], "attrs")
        units.update(_jsonable(dict(user["units"]), "units"))
    block = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "pixel_size_um": float(pixel_size_um),
        "wavelength_um": float(wavelength_um),
        **({"modality": "fluorescence"} if fluorescence else {}),
        "units": units,
        "software": "napari-dmicro",
        "software_version": __version__,
        EVERY_CHUNK_KEY: True,
    }
    for key, value in user.items():
        if key in _RESERVED or key in ("units", "software", "software_version", "modality", EVERY_CHUNK_KEY):
            continue
        block[str(key)] = _jsonable(value, str(key))
    return block


def _finite_block(block: np.ndarray, label: str, block_info=None) -> np.ndarray:
    if not np.isfinite(block).all():
        where = ""
        if block_info and block_info.get(0):
            loc = block_info[0].get("array-location")
            if loc:
                (r0, r1), (c0, c1) = loc[-2:]
                if len(loc) == 3:
                    where = f" in plane {loc[0][0]},"
                where += f" in rows {r0}–{r1 - 1}, cols {c0}–{c1 - 1}"
        n_nan = int(np.isnan(block).sum())
        n_inf = int((~np.isfinite(block)).sum()) - n_nan
        raise FieldFormatError(
            f"{label} contains non-finite values{where} ({n_nan} NaN, {n_inf} inf in that block); "
            "replace or mask them (e.g. np.nan_to_num) before writing"
        )
    return block


def _source(array, dtype: np.dtype, chunks: tuple[int, ...], label: str) -> da.Array:
    """A chunk-aligned dask view of the input cast to the store dtype; NaN/inf raise per block."""
    if isinstance(array, da.Array):
        src = array.astype(dtype).rechunk(chunks)
        return src.map_blocks(_finite_block, label, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype))
    return da.from_array(np.asarray(array).astype(dtype, copy=False), chunks=chunks)


def _create_level(root, name: str, shape: tuple[int, ...], stack_axis: str | None = None):
    lead = () if stack_axis is None else (stack_axis,)
    chunks = (1,) * len(lead) + level_chunks(shape[len(lead):])
    return root.create_array(
        name, shape=shape, dtype=np.float32, chunks=chunks, fill_value=0,
        dimension_names=(*lead, "c", "y", "x"), config=_ARRAY_CONFIG,
    )


def _downsample(level: da.Array, kind: str, stacked: bool) -> da.Array:
    if not stacked:
        return downsample(level, kind)
    return da.stack([downsample(level[k], kind) for k in range(level.shape[0])])


def _store(sources, targets) -> None:
    """``da.store`` on a pool of our own, so that on an error or Ctrl-C no worker writes after we return."""
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        da.store(sources, targets, lock=False, scheduler="threads", pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_labels(labels, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind != "fluorescence":
        raise FieldFormatError(f"labels are stored with fluorescence images only, not with a {kind}")
    labels = np.asarray(labels)
    if labels.shape != tuple(shape):
        raise FieldFormatError(f"labels have shape {labels.shape} but the image has shape {tuple(shape)}; "
                               "give one label image of the same (rows, cols)")
    if labels.dtype.kind not in "iub":
        raise FieldFormatError(f"labels must be integers (instance ids, 0 = background), got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.int32).max):
        raise FieldFormatError("labels must be ≥ 0 (0 = background) and fit int32")
    return labels.astype(np.int32, copy=False)


def _check_patterns(patterns, shape: tuple[int, ...], kind: str, stack_axis: str | None) -> np.ndarray:
    if kind != "measurement" or stack_axis != PATTERN_AXIS:
        raise FieldFormatError("illumination patterns are stored with fluorescence measurements only (a measurement "
                               f"stack along {PATTERN_AXIS!r})")
    patterns = np.asarray(patterns)
    if patterns.ndim != 3 or patterns.shape[0] != shape[0] or patterns.shape[1] != patterns.shape[2]:
        raise FieldFormatError(f"patterns have shape {patterns.shape}; a measurement of {shape[0]} frames needs "
                               f"({shape[0]}, P, P): one square period per frame")
    if not np.isin(patterns, (0, 1)).all():
        raise FieldFormatError("patterns must be binary (0 = mirror off, 1 = on): store the deployed DMD patterns")
    return patterns.astype(np.uint8)


def _write_array(tmp: Path, name: str, data: np.ndarray, dims: tuple[str, ...]) -> None:
    """An auxiliary exact array (labels, patterns) in the store being written at ``tmp``, every chunk written."""
    root = zarr.open_group(str(tmp), mode="r+")
    chunks = tuple(min(CHUNK, s) for s in data.shape)
    arr = root.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks, fill_value=0,
                            dimension_names=dims, config=_ARRAY_CONFIG)
    arr[...] = data


def read_labels(group, path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The ``labels`` array of a fluorescence store (int32, checked complete and of the image's shape), or None."""
    if LABELS not in set(group.array_keys()):
        return None
    arr = group[LABELS]
    if np.dtype(arr.dtype).kind not in "iu" or tuple(arr.shape) != tuple(shape):
        raise FieldFormatError(f"{path}: the {LABELS!r} array ({arr.dtype}, {tuple(arr.shape)}) is not an integer "
                               f"label image of the image's shape {tuple(shape)}")
    check_complete(arr, path, f"{path} ({LABELS!r} array)", strict=True)
    return np.asarray(arr[...]).astype(np.int32, copy=False)


def read_patterns(group, path: Path, n_frames: int) -> np.ndarray | None:
    """The binary ``patterns`` (T, P, P) uint8 of a fluorescence measurement store (checked), or None."""
    if PATTERNS not in set(group.array_keys()):
        return None
    arr = group[PATTERNS]
    check_complete(arr, path, f"{path} ({PATTERNS!r} array)", strict=True)
    data = np.asarray(arr[...])
    if data.ndim != 3 or data.shape[0] != n_frames or data.shape[1] != data.shape[2] or not np.isin(data, (0, 1)).all():
        raise FieldFormatError(f"{path}: the {PATTERNS!r} array ({data.dtype}, {data.shape}) is not {n_frames} binary "
                               "square patterns; the store is inconsistent")
    return data.astype(np.uint8, copy=False)


def write_store(tmp: Path, array, kind: str, pixel_size_um: float, block: dict, name: str) -> None:
    """Write the exact array, the display pyramid and the metadata of a new store at ``tmp`` (a 3-D array is a
    stack along ``block["stack_axis"]``: one plane per chunk, display levels (planes, c, y, x))."""
    dtype = DTYPES[kind]
    stack_axis = block.get("stack_axis") if array.ndim == 3 else None
    lead = () if stack_axis is None else (stack_axis,)
    chunks = (1,) * len(lead) + tuple(min(CHUNK, s) for s in array.shape[-2:])
    src = _source(array, dtype, chunks, label=kind)
    root = zarr.open_group(str(tmp), mode="w-", zarr_format=3)
    exact = root.create_array(
        kind, shape=src.shape, dtype=dtype, chunks=chunks, fill_value=0, dimension_names=(*lead, "y", "x"),
        config=_ARRAY_CONFIG,
    )
    c = len(lead)  # the channel axis of the display levels
    if kind == "field":
        level = da.stack([da.absolute(src), da.angle(src)], axis=c).astype(np.float32)
    else:
        level = da.expand_dims(src, c).astype(np.float32)
    z0 = _create_level(root, "0", level.shape, stack_axis)
    _store([src, level.rechunk(z0.chunks)], [exact, z0])
    prev = z0
    n_levels = 1
    while (
        max(prev.shape[-2:]) > PYRAMID_MIN_SIZE and min(prev.shape[-2:]) >= 2 and n_levels < MAX_PYRAMID_LEVELS
    ):
        nxt = _downsample(da.from_zarr(prev), kind, stacked=bool(lead))
        zk = _create_level(root, str(n_levels), nxt.shape, stack_axis)
        _store(nxt.rechunk(zk.chunks), zk)
        prev = zk
        n_levels += 1
    coarsest = np.asarray(prev[...])
    root.attrs.update({ATTRS_KEY: block, "ome": ome_metadata(name, kind, pixel_size_um, n_levels, coarsest,
                                                             stack_axis=stack_axis)})
    validate_ome(zarr.open_group(str(tmp), mode="r"), str(tmp))


def write_image(
    path,
    data,
    *,
    kind: ImageKind,
    pixel_size_um: float,
    wavelength_um: float,
    attrs: Mapping | None = None,
    overwrite: bool = False,
    overwrite_foreign: bool = False,
    stack_axis: str | None = None,
    labels=None,
    patterns=None,
) -> Path:
    """Write a 2-D image of ``kind`` as a napari-dmicro zarr v3 / OME-Zarr 0.5 store (atomically).

    A 3-D (planes, rows, cols) array is a stack: ``stack_axis`` names its leading axis, ``"t"`` (a
    time-lapse) or ``"p"`` (positions); it is stored as ``napari_dmicro.stack_axis`` and as the first OME
    axis, with one plane per chunk (so a plane is read or written alone).

    ``path`` must end in ``.zarr`` (``.zarr`` is appended when there is no suffix; parent
    directories are created). Returns the absolute path written. An existing target is replaced only
    with ``overwrite=True`` and only if napari-dmicro wrote it; a foreign store or a regular file needs
    ``overwrite_foreign=True`` too; a directory that is not a zarr store is never replaced
    (:class:`FileExistsError`). ``labels`` (fluorescence only): an integer instance-label image of the same
    shape, stored as the ``labels`` array. ``patterns`` (a fluorescence measurement, ``stack_axis="pattern"``):
    its binary illumination patterns (T, P, P), stored as the ``patterns`` array. Raises
    :class:`FieldFormatError` for bad data, :class:`UnitError` for
    bad sampling, :class:`~napari_dmicro.io.atomic.OutputBusyError` while another process writes it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    target = store_path(path)
    ps = check_length_um(pixel_size_um, "pixel_size")
    wl = check_length_um(wavelength_um, "wavelength")
    array = as_array(data, kind)
    # numpy: full scan now, before anything is written; dask: checked per block while writing.
    validate_image(array, kind, check_finite=not isinstance(array, da.Array), stack=stack_axis is not None)
    attrs = dict(attrs or {})
    if stack_axis is not None:
        if array.ndim != 3:
            raise FieldFormatError(f"stack_axis={stack_axis!r} is for a 3-D (planes, rows, cols) stack; the {kind} "
                                   f"has shape {tuple(array.shape)}")
        if attrs.get("stack_axis", stack_axis) != stack_axis:
            raise UnitError(f"attrs['stack_axis']={attrs['stack_axis']!r} disagrees with stack_axis={stack_axis!r}")
        attrs["stack_axis"] = check_stack_axis(stack_axis, patterns=_fluorescence_measurement(kind, attrs))
    else:
        attrs.pop("stack_axis", None)
    if labels is not None:
        labels = _check_labels(labels, array.shape, kind)
    if patterns is not None:
        patterns = _check_patterns(patterns, array.shape, kind, stack_axis)
    block = _build_block(kind, ps, wl, attrs)
    replace_rule = dict(overwrite=overwrite, overwrite_foreign=overwrite_foreign)
    with atomic_output(target, check_target=lambda t: check_replaceable(t, **replace_rule)) as tmp:
        write_store(tmp, array, kind, ps, block, name=target.stem)
        if labels is not None:
            _write_array(tmp, LABELS, labels, ("y", "x"))
        if patterns is not None:
            _write_array(tmp, PATTERNS, patterns, (PATTERN_AXIS, "y", "x"))
    return target


def _fluorescence_measurement(kind: str, attrs: Mapping) -> bool:
    return kind == "measurement" and attrs.get("modality") == "fluorescence"


def write_field(path, field, *, pixel_size_um: float, wavelength_um: float, attrs: Mapping | None = None,
                **replace_rule) -> Path:
    """Write a complex (rows, cols) field (stored as complex64) with amplitude/phase OME channels.

    ``replace_rule``: ``overwrite`` / ``overwrite_foreign`` / ``stack_axis`` as for :func:`write_image`."""
    return write_image(path, field, kind="field", pixel_size_um=pixel_size_um, wavelength_um=wavelength_um,
                       attrs=attrs, **replace_rule)


def write_measurement(path, measurement, *, pixel_size_um: float, wavelength_um: float,
                      attrs: Mapping | None = None, **replace_rule) -> Path:
    """Write a real camera image (float32). ``pixel_size_um`` is the camera-pixel pitch in object
    space (object pitch × binning)."""
    return write_image(path, measurement, kind="measurement", pixel_size_um=pixel_size_um,
                       wavelength_um=wavelength_um, attrs=attrs, **replace_rule)


def write_phase(path, phase_rad, *, pixel_size_um: float, wavelength_um: float, attrs: Mapping | None = None,
                **replace_rule) -> Path:
    """Write a real phase map in radians (float32)."""
    return write_image(path, phase_rad, kind="phase", pixel_size_um=pixel_size_um,
                       wavelength_um=wavelength_um, attrs=attrs, **replace_rule)


def write_fluorescence(path, image, labels=None, *, pixel_size_um: float, emission_wavelength_um: float,
                       attrs: Mapping | None = None, **replace_rule) -> Path:
    """Write a 2-D fluorescence image (float32; ``modality: "fluorescence"``) with optional instance ``labels``.

    ``pixel_size_um`` (the specimen pixel pitch) is mandatory; ``emission_wavelength_um`` is stored as
    ``wavelength_um``. ``replace_rule``: ``overwrite`` / ``overwrite_foreign`` as for :func:`write_image`."""
    return write_image(path, image, kind="fluorescence", pixel_size_um=pixel_size_um,
                       wavelength_um=emission_wavelength_um, attrs=attrs, labels=labels, **replace_rule)


def write_fluorescence_measurement(path, frames, patterns, *, camera_pixel_size_um: float,
                                   emission_wavelength_um: float, attrs: Mapping | None = None,
                                   **replace_rule) -> Path:
    """Write a fluorescence measurement: ``frames`` (T, rows, cols) float32, one camera frame per pattern, at
    ``camera_pixel_size_um`` (bin × specimen pixel, the specimen-plane size of a camera pixel), with its binary
    ``patterns`` (T, P, P) and ``attrs`` (the acquisition: model, bin, pixel sizes, photons, …, see
    docs/file-formats.md); ``modality: "fluorescence"``, ``stack_axis: "pattern"``."""
    return write_image(path, frames, kind="measurement", pixel_size_um=camera_pixel_size_um,
                       wavelength_um=emission_wavelength_um, attrs={**dict(attrs or {}), "modality": "fluorescence"},
                       stack_axis=PATTERN_AXIS, patterns=patterns, **replace_rule)


def read_ours(group, path: Path, lazy: bool) -> ImageData:
    """Validate and open a napari-dmicro store (``group`` is its opened root)."""
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
        check_units_block(block["units"], where)
    for q in ("pixel_size_um", "wavelength_um"):
        if q not in block:
            raise UnitError(
                f"{where}: {ATTRS_KEY}.{q} is missing; the store does not say its {q[:-3].replace('_', ' ')}"
            )
    ps = resolve_length(block, "pixel_size", where)
    wl = resolve_length(block, "wavelength", where)
    check_ome_consistency(group, ps, where)
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
    stack_axis = block.get("stack_axis")
    if stack_axis is not None:
        check_stack_axis(stack_axis, patterns=_fluorescence_measurement(kind, block))
    check_shape(arr, f"{where}: {kind!r} array", stack=stack_axis is not None)
    if (stack_axis is not None) != (arr.ndim == 3):
        raise FieldFormatError(f"{where}: the {kind!r} array is {arr.ndim}-D but {ATTRS_KEY}.stack_axis is "
                               f"{stack_axis!r}; the store is inconsistent")
    check_complete(arr, path, f"{where} ({kind!r} array)", strict=bool(block.get(EVERY_CHUNK_KEY)))
    data = da.from_zarr(arr) if lazy else np.asarray(arr[...])
    attrs = {k: v for k, v in block.items() if k not in ("kind", "pixel_size_um", "wavelength_um")}
    return ImageData(data, kind, ps, wl, attrs)


__all__ = ["LABELS", "PATTERNS", "read_labels", "read_ours", "read_patterns", "write_field", "write_fluorescence",
           "write_fluorescence_measurement", "write_image", "write_measurement", "write_phase", "write_store"]
