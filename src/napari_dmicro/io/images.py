"""What an image is in napari-dmicro: the kinds (QPM: field, measurement, phase, amplitude; fluorescence),
their dtypes and channels, :class:`ImageData`, validation."""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import Any, Literal, get_args

import dask.array as da
import numpy as np

from .errors import FieldFormatError

ImageKind = Literal["field", "measurement", "phase", "amplitude", "fluorescence"]
KINDS: tuple[str, ...] = get_args(ImageKind)

#: Key of the namespaced attribute block in the root group of our stores.
ATTRS_KEY = "napari_dmicro"
FORMAT_VERSION = 1
#: Chunk side of every written array (smaller arrays get one chunk).
CHUNK = 1024
#: Lazily read arrays at most this large are scanned for NaN/inf on reading.
FINITE_SCAN_LIMIT_BYTES = 256 * 2**20

DTYPES = {
    "field": np.dtype(np.complex64),
    "measurement": np.dtype(np.float32),
    "phase": np.dtype(np.float32),
    "amplitude": np.dtype(np.float32),
    "fluorescence": np.dtype(np.float32),
}
#: the leading axis of a fluorescence measurement: one camera frame per illumination pattern
PATTERN_AXIS = "pattern"
#: a stack's leading axis: time-lapse or positions (stored as ``stack_axis``; OME axis type), or the illumination
#: patterns of a fluorescence measurement (allowed only there: ``check_stack_axis(..., patterns=True)``)
STACK_AXES = {"t": "time", "p": "position", PATTERN_AXIS: "pattern"}


def check_stack_axis(axis, *, patterns: bool = False) -> str:
    if axis not in STACK_AXES or (axis == PATTERN_AXIS and not patterns):
        raise FieldFormatError(f"stack_axis={axis!r}: a stack's leading axis is 't' (time-lapse) or 'p' (positions)"
                               + (" (or 'pattern' for a fluorescence measurement)" if patterns else ""))
    return axis


#: OME channel labels per kind.
CHANNELS = {
    "field": ("amplitude", "phase"),
    "measurement": ("intensity",),
    "phase": ("phase",),
    "amplitude": ("amplitude",),
    "fluorescence": ("intensity",),
}


@dataclass(frozen=True)
class ImageData:
    """A 2-D image (or a 3-D stack (planes, rows, cols), ``attrs["stack_axis"]`` 't' or 'p') with its
    physical sampling and provenance.

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



def describe(array) -> str:
    return f"shape {tuple(array.shape)}, dtype {array.dtype}"


def as_array(array, name: str):
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


def scan_finite(array, name: str, check_finite: bool | None) -> None:
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


def check_shape(array, name: str, *, stack: bool = False) -> None:
    """A 2-D (rows, cols) image, or with ``stack`` also a 3-D (planes, rows, cols) stack."""
    if stack and array.ndim == 3:
        if array.size == 0:
            raise FieldFormatError(f"{name} is empty (shape {tuple(array.shape)}); nothing to read or write")
        return
    if array.ndim != 2:
        shape = tuple(array.shape)
        if array.ndim > 2 and all(s == 1 for s in shape[:-2]):
            hint = (
                f"a leading singleton axis is not accepted; pass {name}[0] "
                "(or np.squeeze) to give a 2-D (rows, cols) array"
            )
        elif array.ndim > 2:
            hint = ("a stack is (planes, rows, cols): give stack_axis='t' (time-lapse) or 'p' (positions) to "
                    "write a 3-D stack") if array.ndim == 3 else "at most 3-D (planes, rows, cols)"
        else:
            hint = "a (rows, cols) image is required"
        raise FieldFormatError(f"{name} must be 2-D (rows, cols) but has shape {shape}: {hint}")
    if array.size == 0:
        raise FieldFormatError(f"{name} is empty (shape {tuple(array.shape)}); nothing to read or write")


def validate_image(
    array, kind: ImageKind, name: str | None = None, *, check_finite: bool | None = None, stack: bool = False
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
    array = as_array(array, name)
    dt = np.dtype(array.dtype)
    if kind == "field":
        if dt.kind != "c":
            raise FieldFormatError(
                f"{name} is real-valued ({describe(array)}) but a field must be complex "
                "(complex64 or complex128); build it as amplitude * np.exp(1j * phase), or save a "
                "phase map with write_phase / a camera image with write_measurement"
            )
    elif dt.kind == "c":
        raise FieldFormatError(
            f"{name} is complex ({describe(array)}) but a {kind} must be real; use write_field "
            "for a complex field, or take np.abs / np.angle first"
        )
    elif dt.kind not in "iuf":
        raise FieldFormatError(f"{name} must be a real numeric array for a {kind}, got dtype {dt}")
    check_shape(array, name, stack=stack)
    scan_finite(array, name, check_finite)


def validate_field(array, name: str = "field", *, check_finite: bool | None = None) -> None:
    """Raise :class:`FieldFormatError` unless ``array`` is a finite, non-empty, 2-D complex array.

    See :func:`validate_image` for ``check_finite``.
    """
    validate_image(array, "field", name, check_finite=check_finite)


__all__ = ["ATTRS_KEY", "CHANNELS", "CHUNK", "DTYPES", "FORMAT_VERSION", "KINDS", "PATTERN_AXIS", "STACK_AXES",
           "ImageData",
           "ImageKind", "check_stack_axis", "validate_field", "validate_image"]
