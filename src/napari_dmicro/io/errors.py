"""Errors raised by :mod:`napari_dmicro.io`.

Every error message names the problem, the offending file/array/attribute and, where there is one,
the fix. All of them derive from :class:`FieldFormatError`, itself a :class:`ValueError`, so callers
can catch the whole family at once. An existing output path raises the builtin
:class:`FileExistsError` instead (see the writers' ``overwrite`` argument).
"""

from __future__ import annotations


class FieldFormatError(ValueError):
    """Data or a file is not a valid field / measurement / phase map (wrong dtype, shape, values)."""


class UnitError(FieldFormatError):
    """A pixel size or wavelength is missing a unit, has an unknown unit, is implausible, or two
    attributes give the same quantity with values that disagree."""


class NotAZarrStoreError(FieldFormatError):
    """A path given as a zarr store is not one (no ``zarr.json``/``.zgroup``/``.zarray``)."""


class MissingArrayError(FieldFormatError):
    """A zarr store or ``.npz`` archive does not contain the arrays that were expected."""


__all__ = ["FieldFormatError", "MissingArrayError", "NotAZarrStoreError", "UnitError"]
