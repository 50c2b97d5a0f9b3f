"""A camera image beside the typed record of how it was acquired.

:class:`Measurement` pairs a plain 2-D float32 array with an :class:`AcquisitionRecord`. It cannot be
sliced (a crop of the image with the old record would describe another acquisition); take
``np.asarray(meas)`` for the pixels and build a new record if you crop. ``dm.simulate`` returns one,
``dm.reconstruct`` accepts one (or a bare lab camera image, optionally with a record).

In a store the record is a flat dict of attributes (``record.to_attrs()`` / ``AcquisitionRecord.from_attrs``):
the typed keys below plus any other provenance, kept in ``provenance``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, model_validator

from .io.images import check_stack_axis

__all__ = ["AcquisitionRecord", "Measurement", "MeasurementStack", "as_measurement", "stack_attrs", "stack_records"]


class AcquisitionRecord(BaseModel):
    """How a camera image was made (units in the names; lengths in µm, object plane).

    ``field_shape`` is the object field's (rows, cols); the camera covers it rounded up to whole
    camera pixels (``binning``) or, when acquired tile by tile, to whole apertures (``tile_px``):
    ``ceil(field / unit) · unit == camera_shape · binning`` on each axis, else the record is refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field_shape: tuple[PositiveInt, PositiveInt]
    camera_shape: tuple[PositiveInt, PositiveInt]
    binning: PositiveInt
    compression: PositiveInt | None = None
    object_pixel_size_um: float | None = Field(None, gt=0)
    camera_pixel_size_um: float | None = Field(None, gt=0)
    wavelength_um: float | None = Field(None, gt=0)
    max_photons: float | None = Field(None, gt=0)
    read_noise_e: float = Field(0.0, ge=0)
    photon_reference: str | None = None
    flat_field_corrected: bool = Field(False, description="the image is camera / flat-field image (docs/physics.md)")
    seed: int | None = None
    optics: str | None = Field(None, description="optics type that recorded it (e.g. 'lff', 'd2nn')")
    model: str | None = Field(None, description="the model (name or file) whose optics recorded it")
    acquisition: str | None = Field(None, description="strategy, e.g. 'single full-field image'")
    tile_px: PositiveInt | None = Field(None, description="aperture side (object px) of a tiled acquisition")
    source_field_shape: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="the given field's shape on its own grid, when it was brought to the model's grid "
        "(napari_dmicro.model_grid); field_shape is then the shape on the model's grid")
    source_pixel_size_um: float | None = Field(None, gt=0, description="the given field's pixel pitch")
    source_wavelength_um: float | None = Field(None, gt=0, description="the wavelength the field was recorded at")
    specimen_region: tuple[NonNegativeInt, NonNegativeInt, PositiveInt, PositiveInt] | None = Field(
        None, description="(row0, col0, rows, cols) of the given field inside the (padded) model-grid field")
    phase_scale: float | None = Field(None, gt=0, description="model-grid phase = background + phase_scale · "
                                      "(field phase − background): λ_field/λ_model (thin specimen)")
    background_phase_rad: float | None = Field(None, description="the field's background phase (resampling, "
                                               "phase scaling)")
    provenance: dict[str, Any] = Field(default_factory=dict, description="any other attributes, kept as given")

    @model_validator(mode="after")
    def _consistent(self) -> AcquisitionRecord:
        b = self.binning
        unit = self.tile_px or b
        if self.tile_px and self.tile_px % b:
            raise ValueError(f"tile_px {self.tile_px} is not a whole number of camera pixels (binning {b})")
        for axis, (field_px, camera_px) in enumerate(zip(self.field_shape, self.camera_shape, strict=True)):
            covered = math.ceil(field_px / unit) * unit
            if covered != camera_px * b:
                raise ValueError(
                    f"field_shape {list(self.field_shape)} does not fit camera_shape {list(self.camera_shape)} "
                    f"× binning {b} (axis {axis}: a {field_px}-px field needs {covered // b} camera px); "
                    "the metadata does not describe this image: fix or drop it")
        if self.compression is not None and self.compression != b * b:
            raise ValueError(f"compression {self.compression} is not binning² ({b}² = {b * b})")
        if self.object_pixel_size_um and self.camera_pixel_size_um and not math.isclose(
                self.camera_pixel_size_um, self.object_pixel_size_um * b, rel_tol=1e-6):
            raise ValueError(f"camera_pixel_size_um {self.camera_pixel_size_um} is not object_pixel_size_um "
                             f"{self.object_pixel_size_um} × binning {b}")
        self._check_grid_adaptation()
        return self

    def _check_grid_adaptation(self) -> None:
        keys = ("source_field_shape", "source_pixel_size_um", "source_wavelength_um", "specimen_region", "phase_scale")
        given = [getattr(self, k) is not None for k in keys]
        if any(given) and not all(given):
            missing = [k for k, g in zip(keys, given, strict=True) if not g]
            raise ValueError(f"the record says the field was brought to the model's grid but lacks {missing}; "
                             "the metadata is incomplete: fix or drop it")
        if self.specimen_region is not None:
            r0, c0, rows, cols = self.specimen_region
            if r0 + rows > self.field_shape[0] or c0 + cols > self.field_shape[1]:
                raise ValueError(f"specimen_region {list(self.specimen_region)} lies outside field_shape "
                                 f"{list(self.field_shape)}")

    @classmethod
    def from_attrs(cls, attrs: dict | None) -> AcquisitionRecord | None:
        """The record in a store's / layer's attributes; None when they hold none (a bare lab image:
        no ``field_shape`` and no ``camera_shape``). Raises ValueError when it is inconsistent."""
        attrs = dict(attrs or {})
        if "field_shape" not in attrs and "camera_shape" not in attrs:
            return None
        typed = {k: attrs.pop(k) for k in list(attrs) if k in cls.model_fields and k != "provenance"}
        provenance = {**dict(attrs.pop("provenance", None) or {}), **attrs}
        return cls(**typed, provenance=provenance)

    def to_attrs(self) -> dict:
        """Flat JSON-able attributes (lists for shapes), the inverse of :meth:`from_attrs`."""
        out = self.model_dump(mode="json", exclude={"provenance"})
        return {**self.provenance, **out}


@dataclass(frozen=True, eq=False)
class Measurement:
    """A camera image (float32, rows × cols) and the record of its acquisition.

    Numpy functions see the image (``np.asarray(meas)``, ``np.percentile(meas, 99)``); there is no
    slicing: the record would go stale.
    """

    image: np.ndarray
    record: AcquisitionRecord

    def __post_init__(self):
        if not isinstance(self.record, AcquisitionRecord):
            raise TypeError(f"record must be an AcquisitionRecord, not {type(self.record).__name__}")
        image = np.asarray(self.image)
        if image.ndim != 2 or np.iscomplexobj(image) or image.dtype.kind not in "fiu":
            raise ValueError(f"a camera image is a real 2-D array; got dtype {image.dtype}, shape {image.shape}")
        if tuple(image.shape) != tuple(self.record.camera_shape):
            raise ValueError(f"the image is {image.shape[0]}×{image.shape[1]} camera px but its record says "
                             f"camera_shape {list(self.record.camera_shape)}: the metadata belongs to another "
                             "image (a crop?); reconstruct the image without it or fix the record")
        object.__setattr__(self, "image", image.astype(np.float32, copy=False))

    def __repr__(self) -> str:
        rows, cols = self.shape
        return f"Measurement({rows}×{cols} {self.image.dtype} camera image, record={self.record!r})"

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.image.dtype

    @property
    def ndim(self) -> int:
        return 2

    def __array__(self, dtype=None, copy=None):
        if dtype is None or np.dtype(dtype) == self.image.dtype:
            return self.image.copy() if copy else self.image
        return self.image.astype(dtype)

    def to_attrs(self) -> dict:
        return self.record.to_attrs()


def as_measurement(image, attrs: dict | None):
    """A :class:`Measurement` when ``attrs`` hold an acquisition record, else the bare image.

    Attributes that name the camera's binning (``binning`` or ``compression``) but no shapes — a lab
    image annotated by hand — describe the whole image: camera shape = the image's, field = camera ×
    binning, so the optics and model they name are still checked against the reconstructing model.
    """
    attrs = dict(attrs or {})
    if "field_shape" not in attrs and "camera_shape" not in attrs:
        binning = attrs.get("binning") or (math.isqrt(int(attrs["compression"])) if attrs.get("compression") else None)
        if not binning:
            return image
        rows, cols = np.shape(image)
        attrs.update(binning=int(binning), camera_shape=[rows, cols], field_shape=[rows * binning, cols * binning])
    return Measurement(np.asarray(image), AcquisitionRecord.from_attrs(attrs))


#: record keys that differ from plane to plane of a stack (kept per plane in ``planes``)
#: (``background_amplitude``: stores written before 2026-12-07, when small fields were padded with background)
PLANE_KEYS = ("seed", "background_phase_rad", "background_amplitude", "grid_adaptation")


@dataclass(frozen=True, eq=False)
class MeasurementStack:
    """Camera images of a (T|P, Y, X) stack of fields, one :class:`AcquisitionRecord` per plane.

    ``images``: (planes, rows, cols) float32 (numpy, or the zarr array it was written into);
    ``axis``: ``"t"`` (time-lapse) or ``"p"`` (positions). Plane ``k`` is ``stack[k]`` (a
    :class:`Measurement`); it was made with seed ``seed + k``.
    """

    images: Any
    records: tuple[AcquisitionRecord, ...]
    axis: str = "t"

    def __post_init__(self):
        check_stack_axis(self.axis)
        if len(self.images.shape) != 3 or len(self.records) != self.images.shape[0]:
            raise ValueError(f"a measurement stack is (planes, rows, cols) with one record per plane; got shape "
                             f"{tuple(self.images.shape)} and {len(self.records)} records")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, k: int) -> Measurement:
        return Measurement(np.asarray(self.images[k]), self.records[k])

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 3

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.images, dtype=dtype)

    def to_attrs(self) -> dict:
        """Store attributes: plane 0's record without the per-plane keys, ``stack_axis`` and ``planes``
        (a list of the per-plane keys: seed, background, …)."""
        return stack_attrs(self.records, self.axis)


def stack_attrs(records, axis: str) -> dict:
    """The attributes of a stack of planes with these records (see :meth:`MeasurementStack.to_attrs`)."""
    first = records[0].to_attrs()
    planes = []
    for record in records:
        attrs = record.to_attrs()
        planes.append({k: attrs.get(k) for k in PLANE_KEYS if k in attrs})
    common = {k: v for k, v in first.items() if k not in PLANE_KEYS}
    return {**common, "stack_axis": check_stack_axis(axis), "planes": planes}


def stack_records(attrs: dict, n_planes: int) -> tuple[AcquisitionRecord, ...] | None:
    """The per-plane records of a stack's attributes (None when they hold no acquisition record)."""
    attrs = dict(attrs or {})
    planes = attrs.pop("planes", None) or [{}] * n_planes
    attrs.pop("stack_axis", None)
    if len(planes) != n_planes:
        raise ValueError(f"the stack's metadata describes {len(planes)} planes but it has {n_planes}")
    records = [AcquisitionRecord.from_attrs({**attrs, **plane}) for plane in planes]
    return None if records[0] is None else tuple(records)
