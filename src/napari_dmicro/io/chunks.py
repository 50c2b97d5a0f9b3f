"""A zarr array with missing chunks is refused at open (zarr would read the holes as the fill value).

Our writers write every chunk (``write_empty_chunks``), so a hole means an interrupted copy, a
lost file or a crafted store, e.g. one that declares 100000² pixels with a few KB of data. The check
only lists the chunk files present, so it costs one directory walk, whatever the declared size.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from pathlib import Path

import numpy as np

from .errors import FieldFormatError

_METADATA_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _present_keys(array_dir: Path) -> set[str]:
    keys = set()
    for folder, _dirs, files in os.walk(array_dir):
        rel = Path(folder).relative_to(array_dir).as_posix()
        for name in files:
            if name not in _METADATA_FILES:
                keys.add(name if rel == "." else f"{rel}/{name}")
    return keys


def _declared(array) -> str:
    nbytes = math.prod(array.shape) * np.dtype(array.dtype).itemsize
    return f"declares {'×'.join(map(str, array.shape))} {np.dtype(array.dtype)} ({nbytes / 2**30:.3g} GiB)"


def check_complete(array, store_dir: Path, where: str, *, strict: bool = True) -> None:
    """Raise :class:`FieldFormatError` if a chunk of the zarr ``array`` in the local store ``store_dir`` is missing.

    ``strict=False`` (stores of napari-dmicro versions that skipped chunks equal to 0) warns instead.
    """
    block = array.shards or array.chunks
    grid = tuple(-(-s // c) for s, c in zip(array.shape, block, strict=True))
    expected = math.prod(grid)
    array_dir = store_dir / array.path if array.path else store_dir
    present = _present_keys(array_dir)
    encode = array.metadata.encode_chunk_key
    # at most len(present) + 1 keys are encoded: cheap even when the declared grid is huge
    coords = itertools.product(*map(range, grid))
    first = next((c for c in itertools.islice(coords, len(present) + 1) if encode(c) not in present), None)
    if first is None:
        return
    missing = max(expected - len(present), 1)
    start = tuple(i * b for i, b in zip(first, block, strict=True))
    if not strict:
        warnings.warn(f"{where}: {missing} of {expected} chunks are missing (first at pixel {start}) and read "
                      f"as {array.fill_value!r}; older napari-dmicro versions did not write chunks equal to 0, "
                      "rewrite the store to make it complete", stacklevel=3)
        return
    raise FieldFormatError(
        f"store {where} is incomplete: {missing} of {expected} chunks missing (first: chunk {encode(first)!r} "
        f"at pixel {start}); it {_declared(array)}. The holes would read as {array.fill_value!r}: copy the "
        "store again, or rewrite it with every chunk written (zarr write_empty_chunks=True)"
    )


__all__ = ["check_complete"]
