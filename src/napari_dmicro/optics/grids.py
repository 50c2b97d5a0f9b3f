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


def reflect_indices(start: int, length: int, size: int):
    """Indices ``start … start+length-1`` mirrored into ``0 … size-1`` (edge not repeated, numpy's
    ``reflect``); works for any distance outside the array."""
    import numpy as np

    if size == 1:
        return np.zeros(length, dtype=np.int64)
    idx = np.arange(start, start + length)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= size, period - idx, idx)


def extend_field(field: torch.Tensor, margin: int, mode: str) -> torch.Tensor:
    """Pad the last two axes by ``margin`` on every side: mirrored (``reflect``) or zeros (``dark``)."""
    if margin == 0:
        return field
    if mode == "dark":
        return torch.nn.functional.pad(field, (margin, margin, margin, margin))
    if mode != "reflect":
        raise ValueError(f"unknown outside_field mode {mode!r}; use 'reflect' or 'dark'")
    rows, cols = field.shape[-2:]
    ri = torch.from_numpy(reflect_indices(-margin, rows + 2 * margin, rows)).to(field.device)
    ci = torch.from_numpy(reflect_indices(-margin, cols + 2 * margin, cols)).to(field.device)
    return field.index_select(-2, ri).index_select(-1, ci)
