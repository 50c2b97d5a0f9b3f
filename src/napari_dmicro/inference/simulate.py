"""Camera image of a field of view of any size, computed blockwise with bounded memory.

Geometry. Camera pixel (i, j) integrates object pixels [i·b, (i+1)·b) × [j·b, (j+1)·b) (b = binning),
anchored at the field's top-left pixel. The camera covers the field rounded *up* to whole camera pixels
(``ceil(rows/b)·b × ceil(cols/b)·b`` object pixels); beyond its edges the specimen continues by the
encoder's ``outside_field`` rule: mirrored (numpy ``reflect``, edge not repeated, any distance) or dark.

* Learnable Fourier filter (``optics.kind == "lff"``): the whole field of view is ONE image, the linear
  convolution of the (infinitely extended) specimen with the filter's PSF. It is computed in object
  blocks of ``block_px`` pixels, each read with a halo of ``encoder.context_px()`` pixels on every side
  (taken from the field, mirrored beyond its edge), run through the optics, cropped, squared and binned.
  Because the PSF's support is ``2·context_px`` the result equals the whole-field computation exactly
  (to float rounding) and over the field's interior equals ``encoder.full_field_detector``. Only one
  block of the field is read at a time (dask, zarr or any sliceable array works); the camera image,
  ``compression``× smaller, is kept in memory. Noise is sampled afterwards on the whole image (one
  exposure: ``image_max`` is the brightest pixel of the whole image).
* PhaseD2NN (``"d2nn"``): the physical aperture is one ``n_neurons``² tile, so the field of view is
  acquired tile by tile (one acquisition per tile, row-major); the field is extended by the same rule to
  whole tiles. Each tile is exposed (and its noise sampled) on its own.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..config import DetectorConfig
from ..optics.detector import Detector
from ..optics.grids import reflect_indices

__all__ = ["simulate_full_field"]

#: PhaseD2NN tiles propagated together (each hop pads ×pad_factor: keep the batch small).
D2NN_TILE_BATCH = 8

Progress = Callable[[int, int], None] | None


# --------------------------------------------------------------------------------------- field access
class _FieldReader:
    """Validated, blockwise access to a 2-D complex array (numpy, dask, zarr, or anything sliceable)."""

    def __init__(self, field):
        if isinstance(field, torch.Tensor):
            field = field.detach().cpu().numpy()
        if not hasattr(field, "shape") or not hasattr(field, "dtype") or not hasattr(field, "__getitem__"):
            field = np.asarray(field)
        self.array = field
        self.shape = tuple(int(s) for s in field.shape)
        if len(self.shape) != 2:
            raise ValueError(f"a field must be 2-D (rows, cols); got shape {self.shape}")
        if self.shape[0] == 0 or self.shape[1] == 0:
            raise ValueError("the field is empty")
        try:
            dtype = np.dtype(field.dtype)
        except TypeError:
            dtype = None
        if dtype is None or not np.issubdtype(dtype, np.complexfloating):
            raise ValueError(
                f"the field has real dtype {field.dtype}; a field is complex (amplitude·exp(i·phase)). "
                "Build it with amplitude * np.exp(1j * phase_rad)"
            )
        self.lazy = not isinstance(field, np.ndarray)
        if not self.lazy and not np.isfinite(field).all():  # in memory: fail before any work
            raise ValueError("the field contains NaN or infinite values; fix or mask them before simulating")

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """field[r0:r1, c0:c1] as complex64 numpy (lazy inputs are read and checked here)."""
        block = self.array[r0:r1, c0:c1]
        if hasattr(block, "compute"):
            block = block.compute()
        block = np.asarray(block)
        if self.lazy and not np.isfinite(block).all():
            raise ValueError(f"the field contains NaN or infinite values (in rows {r0}–{r1 - 1}, cols "
                             f"{c0}–{c1 - 1}); fix or mask them before simulating")
        return block.astype(np.complex64, copy=False)

    def gather(self, row0: int, nrows: int, col0: int, ncols: int, mode: str) -> np.ndarray:
        """Object pixels [row0, row0+nrows) × [col0, col0+ncols), which may lie beyond the field's edge:
        mirrored back into it (``reflect``) or zero (``dark``)."""
        ri = _axis_indices(row0, nrows, self.shape[0], mode)
        ci = _axis_indices(col0, ncols, self.shape[1], mode)
        vr, vc = ri >= 0, ci >= 0
        lo, hi = int(ri[vr].min()), int(ri[vr].max()) + 1
        clo, chi = int(ci[vc].min()), int(ci[vc].max()) + 1
        slab = self.read(lo, hi, clo, chi)
        if vr.all() and vc.all() and hi - lo == nrows and chi - clo == ncols and ri[0] == lo and ci[0] == clo:
            return slab  # entirely inside the field: a plain slice
        out = np.zeros((nrows, ncols), dtype=np.complex64)
        out[np.ix_(vr, vc)] = slab[np.ix_(ri[vr] - lo, ci[vc] - clo)]
        return out


def _axis_indices(start: int, length: int, size: int, mode: str) -> np.ndarray:
    """Source index of each position along one axis; -1 where the ``dark`` rule gives zero."""
    if mode == "reflect":
        return reflect_indices(start, length, size).astype(np.int64)
    if mode == "dark":
        idx = np.arange(start, start + length, dtype=np.int64)
        return np.where((idx >= 0) & (idx < size), idx, -1)
    raise ValueError(f"unknown outside_field mode {mode!r}; use 'reflect' or 'dark'")


# ------------------------------------------------------------------------------------------- helpers
def _detector_for(encoder, max_photons, read_noise_e) -> Detector:
    det = encoder.config.detector
    if read_noise_e and read_noise_e > 0 and max_photons is None:
        raise ValueError(
            f"read noise ({read_noise_e} e⁻) needs a photon budget: set max_photons (photons at the "
            "brightest pixel, e.g. 10000) or set the read noise to 0"
        )
    cfg = DetectorConfig(**{**det.model_dump(), "max_photons": max_photons, "read_noise_e": float(read_noise_e)})
    return Detector(cfg)


def _tile_seed(seed: int, index: int) -> int:
    """A reproducible, well-mixed seed for acquisition ``index`` of a run seeded by ``seed``."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or int(seed) != seed or int(seed) < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


def _noisy(detector: Detector, image: torch.Tensor, seed: int) -> torch.Tensor:
    """Exact Poisson + read noise on a (1, h, w) CPU image, reproducible from ``seed``."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return detector.add_noise(image, "exact", gen)


# ------------------------------------------------------------------------------------------ the API
@torch.no_grad()
def simulate_full_field(field, encoder, *, max_photons: float | None = None, read_noise_e: float = 0.0,
                        seed: int = 0, device: torch.device = torch.device("cpu"), progress: Progress = None,
                        block_px: int = 2048) -> tuple[np.ndarray, dict]:
    """Camera image (float32, ``ceil(rows/b) × ceil(cols/b)``) of ``field`` and its metadata.

    ``field``: 2-D complex numpy / dask / zarr array of any size. ``max_photons``/``read_noise_e``
    override the encoder's detector settings (``None`` = noise free). ``block_px`` (a multiple of the
    binning) is the side of the object blocks of the LFF computation; ``progress(done, total)`` is
    called after each block (or batch of PhaseD2NN tiles). See the module docstring for the geometry.
    Noise is sampled on the CPU (seeded torch generators), so it does not depend on ``device``.
    """
    reader = _FieldReader(field)
    seed = _check_seed(seed)
    detector = _detector_for(encoder, max_photons, read_noise_e)
    cfg = encoder.config
    b = cfg.detector.binning
    kind = cfg.optics.kind
    mode = cfg.outside_field
    rows, cols = reader.shape
    device = torch.device(device)
    was_training = encoder.training
    encoder.to(device).eval()
    try:
        if kind == "d2nn":
            camera, covered, n_acq, tile = _simulate_tiled(reader, encoder, detector, b, mode, seed,
                                                           device, progress)
        else:
            camera, covered = _simulate_lff(reader, encoder, b, mode, int(block_px), device, progress)
            if detector.config.noisy:
                camera = _noisy(detector, torch.from_numpy(camera)[None], seed)[0].numpy()
            n_acq, tile = 1, None
    finally:
        encoder.train(was_training)
    det = detector.config
    attrs = {
        "field_shape": [rows, cols],
        "covered_object_px": [int(covered[0]), int(covered[1])],
        "camera_shape": [int(camera.shape[0]), int(camera.shape[1])],
        "compression": int(det.compression),
        "binning": int(b),
        "camera_pixel_size_um": float(encoder.camera_pixel_size_um),
        "object_pixel_size_um": float(encoder.pixel_size_um),
        "wavelength_um": float(cfg.optics.grid.wavelength_um),
        "max_photons": None if det.max_photons is None else float(det.max_photons),
        "read_noise_e": float(det.read_noise_e),
        "photon_reference": det.photon_reference,
        "seed": seed,
        "optics": kind,
        "outside_field": mode,
        "n_acquisitions": int(n_acq),
    }
    if kind == "d2nn":
        attrs["acquisition"] = f"tiled {tile}x{tile} apertures, {n_acq} acquisitions"
        attrs["tile_px"] = int(tile)
        attrs["aperture_um"] = float(tile * encoder.pixel_size_um)
        attrs["noise_seeding"] = "per tile: SeedSequence([seed, tile_index]), row-major tile order"
    else:
        attrs["acquisition"] = "single full-field image"
        attrs["block_px"] = int(block_px)
        attrs["context_px"] = int(encoder.context_px())
    return np.ascontiguousarray(camera, dtype=np.float32), attrs


def _simulate_lff(reader: _FieldReader, encoder, b: int, mode: str, block_px: int, device, progress
                  ) -> tuple[np.ndarray, tuple[int, int]]:
    if getattr(encoder.config.optics, "convolution", "linear") != "linear":
        raise ValueError("full-field simulation needs the linear-convolution LFF model; the circular "
                         f"(periodic) model only images {encoder.config.optics.filter_size_px}² fields")
    if block_px < b or block_px % b:
        raise ValueError(f"block_px={block_px} must be a positive multiple of the binning {b}")
    rows, cols = reader.shape
    R, C = math.ceil(rows / b) * b, math.ceil(cols / b) * b
    ctx = int(encoder.context_px())
    camera = np.empty((R // b, C // b), dtype=np.float32)
    tops, lefts = range(0, R, block_px), range(0, C, block_px)
    total, done = len(tops) * len(lefts), 0
    for r0 in tops:
        r1 = min(r0 + block_px, R)
        for c0 in lefts:
            c1 = min(c0 + block_px, C)
            block = reader.gather(r0 - ctx, r1 - r0 + 2 * ctx, c0 - ctx, c1 - c0 + 2 * ctx, mode)
            det_field = encoder.detector_field(torch.from_numpy(block).to(device))
            if ctx:
                det_field = det_field[ctx:-ctx, ctx:-ctx]
            binned = encoder.detector.demagnify(Detector.intensity(det_field)[None])[0]
            camera[r0 // b:r1 // b, c0 // b:c1 // b] = binned.float().cpu().numpy()
            del block, det_field, binned
            done += 1
            if progress is not None:
                progress(done, total)
    return camera, (R, C)


def _simulate_tiled(reader: _FieldReader, encoder, detector: Detector, b: int, mode: str, seed: int,
                    device, progress) -> tuple[np.ndarray, tuple[int, int], int, int]:
    tile = int(encoder.config.optics.n_neurons)
    if tile % b:
        raise ValueError(f"the PhaseD2NN aperture ({tile} px) is not a multiple of the binning {b}")
    rows, cols = reader.shape
    n_r, n_c = math.ceil(rows / tile), math.ceil(cols / tile)
    t = tile // b
    camera = np.empty((n_r * t, n_c * t), dtype=np.float32)
    total = n_r * n_c
    done = 0
    for tr in range(n_r):  # one band of tiles in memory at a time
        band = reader.gather(tr * tile, tile, 0, n_c * tile, mode)
        tiles = band.reshape(tile, n_c, tile).transpose(1, 0, 2)  # (n_c, tile, tile)
        for k0 in range(0, n_c, D2NN_TILE_BATCH):
            k1 = min(k0 + D2NN_TILE_BATCH, n_c)
            x = torch.from_numpy(np.ascontiguousarray(tiles[k0:k1])).to(device)
            binned = encoder.detector.demagnify(Detector.intensity(encoder.detector_field(x))).float().cpu()
            for k in range(k0, k1):
                img = binned[k - k0:k - k0 + 1]
                if detector.config.noisy:  # each tile is its own exposure
                    img = _noisy(detector, img, _tile_seed(seed, tr * n_c + k))
                camera[tr * t:(tr + 1) * t, k * t:(k + 1) * t] = img[0].numpy()
            done += k1 - k0
            if progress is not None:
                progress(done, total)
        del band, tiles
    return camera, (n_r * tile, n_c * tile), total, tile
