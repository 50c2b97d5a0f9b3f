"""Checks the CLI runs before any work: outputs against inputs and existing files, printable messages.

The rules themselves live in :mod:`napari_dmicro.io.targets`; this module turns them into
``dmicro`` errors that name the command-line flags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .io.errors import FieldFormatError
from .io.targets import check_not_input, check_replaceable, store_path


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


_FLAGS = (("overwrite_foreign=True", "--overwrite-foreign"), ("overwrite=True", "--overwrite"))
# C0/C1 control characters except newline and tab, and the bidirectional-text overrides
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def for_terminal(text: str) -> str:
    """``text`` with terminal control characters shown as escapes (``\\x1b``) instead of acting on the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def with_cli_flags(message: str) -> str:
    """A library message with its keyword arguments spelled as the CLI flags that set them."""
    for keyword, flag in _FLAGS:
        message = message.replace(keyword, flag)
    return message


def replace_rule(args) -> dict:
    """The writers' ``overwrite`` / ``overwrite_foreign`` arguments from the command line."""
    return {"overwrite": bool(getattr(args, "overwrite", False)),
            "overwrite_foreign": bool(getattr(args, "overwrite_foreign", False))}


def check_outputs(args, outputs: Iterable, inputs: Iterable = ()) -> list[Path]:
    """Refuse, before any work, outputs that are/contain/lie inside an input, repeat each other, or
    exist and may not be replaced; returns the store paths that will be written (``NAME`` → ``NAME.zarr``)."""
    inputs = [p for p in inputs if p is not None]
    targets: list[Path] = []
    try:
        for output in outputs:
            if output is None:
                continue
            target = store_path(output)
            check_not_input(target, inputs)
            if target in targets:
                raise CLIError(f"the output {target} is named twice; give each output its own name")
            check_replaceable(target, **replace_rule(args))
            targets.append(target)
    except (FieldFormatError, FileExistsError) as exc:
        raise CLIError(with_cli_flags(str(exc))) from None
    return targets


def batch_inputs(spec, suffixes: tuple[str, ...], what: str) -> list[Path] | None:
    """The inputs ``spec`` names when it is a folder (its files with ``suffixes``, sorted, hidden ones skipped)
    or a glob pattern (quoted, so that dmicro expands it: ``"data/*.zarr"``); None for a single input (a
    file, a zarr store, or a missing path, which its reader reports)."""
    import glob

    from .io.targets import looks_like_zarr

    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir() or looks_like_zarr(path):
            return None
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))
        if not found:
            raise CLIError(f"no {what} ({', '.join(suffixes)}) in the folder {path}")
        return found
    if not any(ch in text for ch in "*?["):
        return None
    found = sorted(Path(p) for p in glob.glob(os.path.expanduser(text))
                   if Path(p).suffix.lower() in suffixes and not Path(p).name.startswith("."))
    if not found:
        raise CLIError(f"no {what} ({', '.join(suffixes)}) match {text}")
    return found


def batch_pairs(args, spec, output, suffixes: tuple[str, ...], what: str) -> list[tuple[Path, Path]]:
    """(input, output store) pairs: one input → ``output`` itself; a folder or glob → one output per input in
    the folder ``output``, named after the input (``cell.npy`` → ``OUTPUT/cell.zarr``). Every output is
    checked (:func:`check_outputs`) before any work."""
    inputs = batch_inputs(spec, suffixes, what)
    if inputs is None:
        sources, outputs = [Path(os.fspath(spec)).expanduser()], [output]
    else:
        folder = output_folder(output)
        sources, outputs = inputs, [folder / f"{p.stem}.zarr" for p in inputs]
    return list(zip(sources, check_outputs(args, outputs, inputs=sources), strict=True))


def output_folder(path) -> Path:
    """A folder to write several outputs into: refused when it is an existing file."""
    folder = Path(os.fspath(path)).expanduser()
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"{folder} exists and is not a folder; give a folder for the outputs")
    return folder


__all__ = ["CLIError", "batch_inputs", "batch_pairs", "check_outputs", "for_terminal", "output_folder",
           "replace_rule", "with_cli_flags"]
