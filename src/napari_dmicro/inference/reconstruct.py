"""φ/2π map of a whole field of view from one camera image, with bounded memory.

* One full-field image (learnable Fourier filter, ``model.encoder.tile_px()`` None): the decoder sees
  windows of its nominal camera size (``model.config.decoder.img_size``; the whole image along an axis
  at most :data:`WINDOW_STRETCH` times that) that overlap by ``overlap`` camera pixels (default half a window); the last
  window of each axis is aligned to the image end. Window outputs are blended with separable
  raised-cosine weights (see :mod:`.blending`) normalised by their sum, so no seams appear and a
  translation-equivariant decoder would give exactly the whole-image result. Windows are decoded one
  band of window rows at a time; output rows that no later window touches are finalised and written
  (to ``out``, e.g. a zarr array), so the accumulator holds about one band (window height × image
  width at object resolution).
* Tiled optics (PhaseD2NN, ``model.encoder.tile_px()`` not None): each camera tile (``tile_px / b``
  pixels) is a separate acquisition and is decoded on its own; tiles are assembled without overlap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .blending import axis_weight_sum, window_starts

__all__ = ["reconstruct_full_field", "camera_rows_needed", "CameraRows"]

Progress = Callable[[int, int], None] | None


class _MeasReader:
    """Validated band access to a 2-D real camera image (numpy, dask, zarr, ...)."""

    def __init__(self, meas):
        if isinstance(meas, torch.Tensor):
            meas = meas.detach().cpu().numpy()
        if not hasattr(meas, "shape") or not hasattr(meas, "dtype") or not hasattr(meas, "__getitem__"):
            meas = np.asarray(meas)
        self.array = meas
        self.shape = tuple(int(s) for s in meas.shape)
        if len(self.shape) != 2:
            raise ValueError(f"a camera image must be 2-D (rows, cols); got shape {self.shape}")
        if self.shape[0] == 0 or self.shape[1] == 0:
            raise ValueError("the camera image is empty")
        dtype = np.dtype(meas.dtype)
        if np.issubdtype(dtype, np.complexfloating) or not (
                np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise ValueError(f"a camera image is a real intensity image; got dtype {dtype}")

    def read(self, r0: int, r1: int) -> np.ndarray:
        band = self.array[r0:r1]
        if hasattr(band, "compute"):
            band = band.compute()
        band = np.asarray(band, dtype=np.float32)
        if not np.isfinite(band).all():
            raise ValueError(f"the camera image contains NaN or infinite values (rows {r0}–{r1 - 1})")
        return band


def _check_out(out, shape):
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}; the reconstruction is {tuple(shape)} "
                         "(camera shape × binning)")
    return out


class _RowWriter:
    """Writes finished output rows in order. For a chunked ``out`` (zarr) rows are buffered up to the
    next chunk-row boundary, so every write covers whole chunks (no read-modify-write of chunks)."""

    #: largest buffer (bytes) used to align writes with the chunks of ``out``
    MAX_BUFFER_BYTES = 256 * 2**20

    def __init__(self, out):
        self.out = out
        chunks = getattr(out, "chunks", None)
        rows = int(chunks[0]) if chunks and isinstance(chunks[0], (int, np.integer)) else 0
        width = int(out.shape[1])
        self.chunk_rows = rows if 1 < rows and rows * width * 4 <= self.MAX_BUFFER_BYTES else 0
        self.buffer = np.empty((self.chunk_rows, width), np.float32) if self.chunk_rows else None
        self.start = 0  # first output row held in the buffer
        self.filled = 0

    def write(self, row0: int, rows: np.ndarray):
        if self.buffer is None:
            self.out[row0:row0 + len(rows)] = rows
            return
        k = 0
        while k < len(rows):
            if self.filled == 0:
                self.start = row0 + k
            room = self.chunk_rows - (self.start % self.chunk_rows) - self.filled
            m = min(room, len(rows) - k)
            self.buffer[self.filled:self.filled + m] = rows[k:k + m]
            self.filled += m
            k += m
            if self.filled == self.chunk_rows - self.start % self.chunk_rows:
                self.close()

    def close(self):
        if self.buffer is not None and self.filled:
            self.out[self.start:self.start + self.filled] = self.buffer[:self.filled]
            self.filled = 0


def _decode(model, windows: np.ndarray, device) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(windows)).to(device)
    return model.decode(x).float().cpu().numpy()


def reconstruct_full_field(meas, model, *, overlap: int | None = None, device: torch.device = torch.device("cpu"),
                           progress: Progress = None, out=None, batch_size: int = 16,
                           rows: tuple[int, int] | None = None) -> np.ndarray:
    """φ/2π (float32, unclipped), shape ``(h·b, w·b)``, from a camera image ``(h, w)``.

    ``overlap``: camera pixels shared by neighbouring decoder windows (LFF only; default half a
    window, ``0 <= overlap < window``). ``out``: an array (numpy, zarr) of the output shape to write
    into (then returned); by default a numpy array is allocated. ``progress(done, total)`` is called
    after each batch of windows / tiles. ``rows``: only object rows ``[r0, r1)`` of the output (then
    ``out`` has ``r1 - r0`` rows): the same values as those rows of the whole reconstruction, computed
    from the windows / tiles that touch them (a block of a distributed reconstruction; ``meas`` may
    then be a :class:`CameraRows` holding only the camera rows :func:`camera_rows_needed` names).
    """
    reader = _MeasReader(meas)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    b = int(model.config.encoder.detector.binning)
    h, w = reader.shape
    r0, r1 = _check_rows(rows, h * b)
    out = _check_out(out, (r1 - r0, w * b))
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode():
            tile_px = model.encoder.tile_px()
            if tile_px is not None:
                if overlap not in (None, 0):
                    raise ValueError("this measurement is a mosaic of separate acquisitions (one per aperture); "
                                     "tiles are decoded independently (overlap must be None or 0)")
                _reconstruct_tiled(reader, model, b, tile_px, device, progress, out, int(batch_size), (r0, r1))
            elif rows is None:
                _reconstruct_blended(reader, model, b, overlap, device, progress, out, int(batch_size))
            else:
                _reconstruct_blended_rows(reader, model, b, overlap, device, progress, out, int(batch_size),
                                          (r0, r1))
    finally:
        model.train(was_training)
    return out


def _check_rows(rows, height: int) -> tuple[int, int]:
    if rows is None:
        return 0, height
    r0, r1 = (int(r) for r in rows)
    if not 0 <= r0 < r1 <= height:
        raise ValueError(f"rows {rows} must satisfy 0 <= r0 < r1 <= {height} (object rows of the output)")
    return r0, r1


class CameraRows:
    """Camera rows ``[first, first + len(rows))`` of an image of ``height`` rows: what one block of a
    distributed reconstruction needs (reading another row is an error, not a silent zero)."""

    def __init__(self, rows: np.ndarray, first: int, height: int):
        self.rows, self.first = np.asarray(rows), int(first)
        self.shape = (int(height), int(self.rows.shape[1]))
        self.dtype = self.rows.dtype

    def __getitem__(self, index: slice) -> np.ndarray:
        r0, r1, _ = index.indices(self.shape[0])
        if r0 < self.first or r1 > self.first + len(self.rows):
            raise IndexError(f"camera rows {r0}–{r1 - 1} are outside the rows sent ({self.first}–"
                             f"{self.first + len(self.rows) - 1})")
        return self.rows[r0 - self.first:r1 - self.first]


#: an axis up to this factor longer than the decoder window is decoded as ONE stretched window (every decoder
#: family takes any size): one window of 1.25 windows costs ~1.25, two overlapping windows cost 2 per axis
WINDOW_STRETCH = 1.25


def _window_side(side: int, window: int) -> int:
    """Camera side of the decoder windows along an axis of ``side`` pixels (see :data:`WINDOW_STRETCH`)."""
    return side if side <= int(window * WINDOW_STRETCH) else window


class _BlendPlan:
    """Where the decoder windows of a camera image lie and how they are weighted (object resolution)."""

    def __init__(self, shape: tuple[int, int], model, b: int, overlap: int | None):
        window = int(model.config.decoder.img_size)
        if overlap is None:
            overlap = window // 2
        if isinstance(overlap, bool) or int(overlap) != overlap or not 0 <= int(overlap) < window:
            raise ValueError(f"overlap={overlap!r} must be an integer in 0..{window - 1} camera pixels (the "
                             f"decoder window is {window} camera pixels)")
        overlap = int(overlap)
        stride = window - overlap
        h, w = shape
        self.b, self.wh, self.ww = b, _window_side(h, window), _window_side(w, window)
        self.row_starts = window_starts(h, self.wh, min(stride, self.wh))  # a short axis: one window
        self.col_starts = window_starts(w, self.ww, min(stride, self.ww))
        # separable weights at object resolution: Σ_k w_k(y, x) = Dy(y)·Dx(x)
        self.dy, self.wys = axis_weight_sum(h, self.row_starts, self.wh, overlap, b)
        dx, wxs = axis_weight_sum(w, self.col_starts, self.ww, overlap, b)
        self.wxs = [wx.astype(np.float32) for wx in wxs]
        self.dx = dx.astype(np.float32)
        self.band_h = self.wh * b

    def windows_touching(self, r0: int, r1: int) -> list[int]:
        """Indices of the window rows whose output covers some of object rows [r0, r1)."""
        return [i for i, r in enumerate(self.row_starts) if r * self.b < r1 and r * self.b + self.band_h > r0]

    def add_window_row(self, i: int, reader, model, device, batch_size: int, target: np.ndarray, t0: int,
                       on_batch=None) -> None:
        """Decode window row ``i`` and add its weighted outputs to ``target`` (object rows ``t0`` …)."""
        b, wh, ww = self.b, self.wh, self.ww
        r = self.row_starts[i]
        band = reader.read(r, r + wh)
        wy = self.wys[i].astype(np.float32)[:, None]
        lo, hi = max(r * b, t0), min(r * b + self.band_h, t0 + len(target))
        for k0 in range(0, len(self.col_starts), batch_size):
            cols = self.col_starts[k0:k0 + batch_size]
            dec = _decode(model, np.stack([band[:, c:c + ww] for c in cols]), device)
            if dec.shape[-2:] != (self.band_h, ww * b):
                raise ValueError(f"the decoder returned {dec.shape[-2:]} for {wh}×{ww} windows; expected "
                                 f"{(self.band_h, ww * b)} (upscale {b})")
            for j, c in enumerate(cols):
                weighted = dec[j] * wy * self.wxs[k0 + j][None, :]
                target[lo - t0:hi - t0, c * b:(c + ww) * b] += weighted[lo - r * b:hi - r * b]
            if on_batch is not None:
                on_batch(len(cols))

    def normalise(self, rows: np.ndarray, r0: int) -> np.ndarray:
        """Divide accumulated object rows ``r0 …`` by the summed weights (in place)."""
        rows /= self.dy[r0:r0 + len(rows), None].astype(np.float32)  # in place: no temporaries
        rows /= self.dx[None, :]
        return rows


def camera_rows_needed(model, camera_shape: tuple[int, int], rows: tuple[int, int],
                       overlap: int | None = None) -> tuple[int, int]:
    """Camera rows ``[c0, c1)`` that :func:`reconstruct_full_field` reads for object ``rows``: the
    block's own rows and its halo (the windows or tiles that reach into it)."""
    b = int(model.config.encoder.detector.binning)
    r0, r1 = _check_rows(rows, int(camera_shape[0]) * b)
    tile_px = model.encoder.tile_px()
    if tile_px is not None:
        t = int(tile_px) // b
        last = -(-r1 // b)  # camera rows end (ceil)
        return (r0 // b) // t * t, -(-last // t) * t
    plan = _BlendPlan(tuple(int(s) for s in camera_shape), model, b, overlap)
    touching = plan.windows_touching(r0, r1)
    return plan.row_starts[touching[0]], plan.row_starts[touching[-1]] + plan.wh


def _reconstruct_blended(reader: _MeasReader, model, b, overlap, device, progress, out, batch_size):
    plan = _BlendPlan(reader.shape, model, b, overlap)
    h, w = reader.shape
    H, W, band_h = h * b, w * b, plan.band_h
    acc = np.zeros((band_h, W), dtype=np.float32)  # object rows [acc_lo, acc_lo + band_h)
    acc_lo = 0
    writer = _RowWriter(out)
    total, done = len(plan.row_starts) * len(plan.col_starts), 0

    def flush(upto: int):
        """Finalise object rows [acc_lo, upto): no later window touches them."""
        nonlocal acc_lo
        n = upto - acc_lo
        if n <= 0:
            return
        writer.write(acc_lo, plan.normalise(acc[:n], acc_lo))
        for k in range(0, band_h - n, n):  # shift the rest up, in non-overlapping pieces
            m = min(n, band_h - n - k)
            acc[k:k + m] = acc[k + n:k + n + m]
        acc[band_h - n:] = 0
        acc_lo = upto

    def on_batch(n: int):
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    for i, r in enumerate(plan.row_starts):
        flush(r * b)
        plan.add_window_row(i, reader, model, device, batch_size, acc, acc_lo, on_batch)  # acc_lo = r·b
    flush(H)
    writer.close()


def _reconstruct_blended_rows(reader: _MeasReader, model, b, overlap, device, progress, out, batch_size, rows):
    """Object rows [r0, r1) of the blended reconstruction, from the window rows that touch them."""
    plan = _BlendPlan(reader.shape, model, b, overlap)
    r0, r1 = rows
    acc = np.zeros((r1 - r0, reader.shape[1] * b), dtype=np.float32)
    touching = plan.windows_touching(r0, r1)
    total, done = len(touching) * len(plan.col_starts), 0

    def on_batch(n: int):
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    for i in touching:
        plan.add_window_row(i, reader, model, device, batch_size, acc, r0, on_batch)
    out[:] = plan.normalise(acc, r0)


def _reconstruct_tiled(reader: _MeasReader, model, b, tile_px, device, progress, out, batch_size, rows):
    """Tile rows touching object rows [r0, r1) (all of them by default), decoded tile by tile."""
    t = int(tile_px) // b
    h, w = reader.shape
    if h % t or w % t:
        raise ValueError(f"this measurement is a mosaic of {t}×{t} camera tiles (one per {tile_px}² "
                         f"aperture); got a {h}×{w} image, not a whole number of tiles")
    n_c = w // t
    T = t * b
    r0, r1 = rows
    tile_rows = range(r0 // T, -(-r1 // T))
    total, done = len(tile_rows) * n_c, 0
    for tr in tile_rows:
        band = reader.read(tr * t, (tr + 1) * t)
        tiles = band.reshape(t, n_c, t).transpose(1, 0, 2)
        rows_out = np.empty((T, n_c * T), dtype=np.float32)
        for k0 in range(0, n_c, batch_size):
            k1 = min(k0 + batch_size, n_c)
            dec = _decode(model, tiles[k0:k1], device)
            rows_out[:, k0 * T:k1 * T] = dec.transpose(1, 0, 2).reshape(T, (k1 - k0) * T)
            done += k1 - k0
            if progress is not None:
                progress(done, total)
        lo, hi = max(tr * T, r0), min((tr + 1) * T, r1)
        out[lo - r0:hi - r0] = rows_out[lo - tr * T:hi - tr * T]
