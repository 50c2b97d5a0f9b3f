"""A scratch zarr array beside an output, for results streamed band by band before the atomic write.

A reconstruction of a large field is written into a scratch array as it is computed (memory: one
band), then copied block by block into the final store by the ordinary writers (which add the
display pyramid and commit atomically). The scratch lives beside the output (same disk) as
``.NAME.scratch-<pid>-<hex>`` and is removed on success, error or Ctrl-C.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import zarr

from .atomic import hidden_sibling, remove_sibling
from .targets import store_path

__all__ = ["scratch_array"]

#: chunk side of the scratch array (object pixels)
SCRATCH_CHUNK_PX = 1024


@contextmanager
def scratch_array(next_to, shape: tuple[int, ...], dtype=np.float32):
    """Yield an empty zarr array of ``shape`` (rows, cols) or (planes, rows, cols) (one plane per chunk) in a
    hidden folder beside ``next_to``; removed on exit."""
    target = store_path(next_to)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = hidden_sibling(target, "scratch")  # swept by the next write to the target if we are killed
    try:
        chunks = (1,) * (len(shape) - 2) + tuple(min(SCRATCH_CHUNK_PX, int(s)) for s in shape[-2:])
        yield zarr.open_array(str(folder), mode="w-", shape=tuple(int(s) for s in shape), chunks=chunks,
                              dtype=dtype, fill_value=0)
    finally:
        remove_sibling(folder)
