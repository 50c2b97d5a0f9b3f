"""Raw camera images from a lab acquisition (not napari-dmicro stores): npy, npz, TIFF, PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.io
import tifffile


def read_camera_image(path, key: str | None = None, *, stack: bool = False) -> np.ndarray:
    """A lab camera image as float32 (rows, cols) in counts: ``.npy``, ``.npz`` (one 2-D array, or one
    called ``measurement``, or the one called ``key``), ``.tif``/``.tiff`` or ``.png``. Refuses complex,
    non-2-D (with ``stack``: also a 3-D (planes, rows, cols) stack, e.g. a multi-page TIFF time-lapse,
    read whole) and non-finite data."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        data = np.load(p, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if npz[k].ndim >= 2}
        if key is not None and key not in arrays:
            raise ValueError(f"{p.name}: no 2-D array called '{key}'; found {sorted(arrays) or 'none'}")
        if key is None:
            key = "measurement" if "measurement" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
        if key is None:
            raise ValueError(f"{p.name}: expected one 2-D array (or one called 'measurement'); found "
                             f"{sorted(arrays) or 'none'}")
        data = arrays[key]
    elif suffix in (".tif", ".tiff"):
        data = tifffile.imread(p)
    elif suffix == ".png":
        data = skimage.io.imread(p)
    else:
        raise ValueError(f"{p.name}: a detector image must be .npy, .npz, .tif or .png (or a measurement .zarr)")
    data = np.squeeze(np.asarray(data))
    if data.ndim != 2 and not (stack and data.ndim == 3):
        raise ValueError(f"{p.name}: a detector image is 2-D{' or a 3-D stack' if stack else ''}; got shape "
                         f"{data.shape}")
    if np.iscomplexobj(data):
        raise ValueError(f"{p.name} holds complex data: that is a field, not a camera image; load it as a field")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError(f"{p.name} contains NaN or infinite values")
    return data
