"""Output paths: the ``.zarr`` name rule, who owns an existing output, and outputs that would hit an input.

The rules every writer and the CLI share:

* ``NAME`` without a suffix means ``NAME.zarr``; any other suffix is refused;
* an existing output is replaced with ``overwrite=True`` only when it is a store this tool wrote
  (its root ``zarr.json`` has a ``napari_dmicro`` block); a foreign zarr store, a regular file or a
  symlink is replaced only with ``overwrite_foreign=True`` (which also allows what ``overwrite``
  does); a directory that is not a zarr store is never replaced;
* an output that is an input, lies inside one or contains one is refused (real paths compared).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import FieldFormatError
from .images import ATTRS_KEY


class InputOverwriteError(FieldFormatError):
    """An output path is, contains or lies inside an input."""


def store_path(path) -> Path:
    """The absolute ``.zarr`` path a writer writes for ``path`` (``.zarr`` appended when there is no suffix)."""
    text = os.fspath(path)
    if "\0" in text:
        raise FieldFormatError(f"{text!r} is not a valid output name (it contains a NUL byte)")
    target = Path(text).expanduser()
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


def looks_like_zarr(path: Path) -> bool:
    """A directory with zarr metadata (v3 ``zarr.json`` or v2 ``.zgroup``/``.zarray``)."""
    return path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zarray"))


def is_our_store(path: Path) -> bool:
    """True for a zarr store written by napari-dmicro (reads only the root ``zarr.json``)."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    block = meta.get("attributes", {}).get(ATTRS_KEY) if isinstance(meta, dict) else None
    return isinstance(block, dict) and "format_version" in block


def check_replaceable(target: Path, *, overwrite: bool, overwrite_foreign: bool = False) -> None:
    """Raise :class:`FileExistsError` unless ``target`` is absent or may be replaced (module rules)."""
    if not os.path.lexists(target):
        return
    if target.is_dir() and not target.is_symlink() and not looks_like_zarr(target):
        raise FileExistsError(
            f"{target} exists and is a directory that is not a zarr store; refusing to replace it"
        )
    if is_our_store(target):
        if not (overwrite or overwrite_foreign):
            raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
        return
    if not overwrite_foreign:
        what = ("a symlink" if target.is_symlink() else "a zarr store napari-dmicro did not write"
                if target.is_dir() else "a regular file")
        raise FileExistsError(
            f"{target} already exists and is {what}; overwrite=True replaces only napari-dmicro stores, "
            "pass overwrite_foreign=True to replace it anyway (or choose another name)"
        )


def _real(path) -> Path:
    return Path(os.path.realpath(Path(os.fspath(path)).expanduser()))


def check_not_input(output, inputs: Iterable) -> None:
    """Raise :class:`InputOverwriteError` if ``output`` is, contains or lies inside one of ``inputs``."""
    out = _real(output)
    for source in inputs:
        if source is None:
            continue
        src = _real(source)
        if out == src:
            relation = "is the input"
        elif out.is_relative_to(src):
            relation = "lies inside the input"
        elif src.is_relative_to(out):
            relation = "contains the input"
        else:
            continue
        raise InputOverwriteError(f"the output {output} {relation} {source}; writing it would destroy the "
                                  "input: choose another output name")


__all__ = ["InputOverwriteError", "check_not_input", "check_replaceable", "is_our_store", "looks_like_zarr",
           "store_path"]
