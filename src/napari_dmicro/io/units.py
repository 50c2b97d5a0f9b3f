"""Lengths in micrometres: parsing foreign unit spellings, plausibility ranges, the fixed units of our stores."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

from ..config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from .errors import UnitError

PIXEL_SIZE_RANGE_UM = (1e-3, 1e3)
WAVELENGTH_RANGE_UM = (0.1, 20.0)

FIXED_UNITS = {"pixel_size": "micrometer", "wavelength": "micrometer", "phase": "rad"}

_UNIT_TO_UM = {
    "m": 1e6, "meter": 1e6, "metre": 1e6, "meters": 1e6, "metres": 1e6,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3, "millimeters": 1e3, "millimetres": 1e3,
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micrometer": 1.0, "micrometre": 1.0, "micrometers": 1.0,
    "micrometres": 1.0, "micron": 1.0, "microns": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "nanometers": 1e-3, "nanometres": 1e-3,
}
_SUFFIX_TO_UM = {"_um": 1.0, "_nm": 1e-3, "_mm": 1e3, "_m": 1e6}


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


def resolve_length(
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


def resolve_sampling(attrs: Mapping, where: str) -> tuple[float, float, list[str]]:
    defaults: list[str] = []
    ps = resolve_length(attrs, "pixel_size", where)
    if ps is None:
        ps = DEFAULT_PIXEL_SIZE_UM
        defaults.append("pixel_size_um")
    wl = resolve_length(attrs, "wavelength", where)
    if wl is None:
        wl = DEFAULT_WAVELENGTH_UM
        defaults.append("wavelength_um")
    return ps, wl, defaults


def check_units_block(units, where: str) -> None:
    if not isinstance(units, Mapping):
        raise UnitError(f"{where}: 'units' must be a mapping of quantity to unit, got {units!r}")
    for q, expected in FIXED_UNITS.items():
        if q in units and units[q] != expected:
            raise UnitError(
                f"{where}: unknown or inconsistent unit for {q}: {units[q]!r}; napari-dmicro stores "
                f"{q} in {expected!r} (convert the values instead of relabelling them)"
            )


__all__ = ["FIXED_UNITS", "PIXEL_SIZE_RANGE_UM", "WAVELENGTH_RANGE_UM", "check_length_um", "check_units_block",
           "resolve_length", "resolve_sampling"]
