"""Sampling grids in space and spatial frequency (fftfreq convention, cycles per µm)."""

from __future__ import annotations

import torch


def frequency_grid(shape: tuple[int, int], pixel_size_um: float, *, centered: bool = False,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial frequencies ``(fy, fx)`` in cycles/µm on a ``shape`` grid of pitch ``pixel_size_um``.

    Unshifted (FFT order) by default; ``centered=True`` puts DC at index ``n // 2`` (fftshift order).
    """
    rows, cols = shape
    fy = torch.fft.fftfreq(rows, d=pixel_size_um, dtype=dtype)
    fx = torch.fft.fftfreq(cols, d=pixel_size_um, dtype=dtype)
    if centered:
        fy, fx = torch.fft.fftshift(fy), torch.fft.fftshift(fx)
    return torch.meshgrid(fy, fx, indexing="ij")


def as_batch(field: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Accept ``(rows, cols)`` or ``(B, rows, cols)``; return the batched tensor and whether we added B."""
    if field.ndim == 2:
        return field.unsqueeze(0), True
    if field.ndim == 3:
        return field, False
    raise ValueError(
        f"expected a field of shape (rows, cols) or (batch, rows, cols), got shape {tuple(field.shape)}"
    )


def require_complex(field: torch.Tensor, what: str = "field") -> None:
    if not torch.is_complex(field):
        raise TypeError(
            f"{what} must be a complex tensor (amplitude·exp(i·phase)), got dtype {field.dtype}; "
            "build it with torch.polar(amplitude, phase)"
        )


def center_pad(field: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero pad the last two axes symmetrically to ``shape`` (the original sits in the centre)."""
    rows, cols = field.shape[-2:]
    pr, pc = shape[0] - rows, shape[1] - cols
    if pr < 0 or pc < 0:
        raise ValueError(f"cannot pad {(rows, cols)} to the smaller shape {shape}")
    top, left = pr // 2, pc // 2
    return torch.nn.functional.pad(field, (left, pc - left, top, pr - top))


def center_crop(field: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Crop the last two axes to ``shape`` around the centre (inverse of :func:`center_pad`)."""
    rows, cols = field.shape[-2:]
    top, left = (rows - shape[0]) // 2, (cols - shape[1]) // 2
    return field[..., top:top + shape[0], left:left + shape[1]]


def check_outside_field(mode: str) -> None:
    """Refuse an ``outside_field`` rule other than ``reflect`` (mirrored) or ``dark`` (a field stop)."""
    if mode not in ("reflect", "dark"):
        raise ValueError(f"unknown outside_field mode {mode!r}; use 'reflect' or 'dark'")


def _axis_indices(start: int, length: int, size: int, mode: str):
    """Source index of each position ``start … start+length-1`` along an axis of ``size``: mirrored into
    the axis (``reflect``, numpy's rule, edge not repeated, any distance) or -1 (``dark``: zero)."""
    import numpy as np

    check_outside_field(mode)
    idx = np.arange(start, start + length, dtype=np.int64)
    if mode == "dark":
        return np.where((idx >= 0) & (idx < size), idx, -1)
    if size == 1:
        return np.zeros(length, dtype=np.int64)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= size, period - idx, idx)


def crop_with_surroundings(array, top: int, left: int, rows: int, cols: int, mode: str):
    """The window [top, top+rows) × [left, left+cols) of the last two axes of ``array``; positions beyond
    its edges continue the specimen by ``mode``: mirrored (``reflect``) or zero (``dark``).

    The one rule for "a region with its surroundings": training crops with optical context, the halo of
    every block of a full-field acquisition, tiles at a field's edge. ``array`` may be a torch tensor (the
    result stays on its device, differentiable), a numpy array, or any lazily sliced array (dask, zarr):
    only the bounding slab of the window is read.
    """
    import numpy as np

    size_r, size_c = int(array.shape[-2]), int(array.shape[-1])
    ri = _axis_indices(top, rows, size_r, mode)
    ci = _axis_indices(left, cols, size_c, mode)
    inside_r, inside_c = ri >= 0, ci >= 0
    if not inside_r.any() or not inside_c.any():
        raise ValueError(f"the window at ({top}, {left}) of {rows}×{cols} px lies entirely outside the "
                         f"{size_r}×{size_c} field in the dark")
    r0, r1 = int(ri[inside_r].min()), int(ri[inside_r].max()) + 1
    c0, c1 = int(ci[inside_c].min()), int(ci[inside_c].max()) + 1
    slab = array[r0:r1, c0:c1] if len(array.shape) == 2 else array[..., r0:r1, c0:c1]
    if hasattr(slab, "compute"):  # dask
        slab = slab.compute()
    if isinstance(array, torch.Tensor):
        rows_t = torch.from_numpy(np.where(inside_r, ri - r0, 0)).to(slab.device)
        cols_t = torch.from_numpy(np.where(inside_c, ci - c0, 0)).to(slab.device)
        out = slab.index_select(-2, rows_t).index_select(-1, cols_t)
        if mode == "dark" and not (inside_r.all() and inside_c.all()):
            mask = torch.from_numpy(np.outer(inside_r, inside_c)).to(slab.device)
            out = out * mask.to(out.real.dtype if out.is_complex() else out.dtype)
        return out
    slab = np.asarray(slab)
    if inside_r.all() and inside_c.all() and np.array_equal(ri, np.arange(r0, r0 + rows)) \
            and np.array_equal(ci, np.arange(c0, c0 + cols)):
        return slab  # entirely inside: a plain slice
    out = np.zeros(slab.shape[:-2] + (rows, cols), dtype=slab.dtype)
    out[..., np.flatnonzero(inside_r)[:, None], np.flatnonzero(inside_c)[None, :]] = \
        slab[..., (ri[inside_r] - r0)[:, None], (ci[inside_c] - c0)[None, :]]
    return out
