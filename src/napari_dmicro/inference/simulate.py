"""Camera image of a field of view of any size, computed blockwise with bounded memory.

A thin front end over the one acquisition (:class:`napari_dmicro.optics.acquisition.Acquisition`):
it validates the field (2-D, complex, finite — lazy inputs block by block), applies the requested photon
budget and records how the image was taken.

Geometry. Camera pixel (i, j) integrates object pixels [i·b, (i+1)·b) × [j·b, (j+1)·b) (b = binning),
anchored at the field's top-left pixel. The camera covers the field rounded *up* to whole camera pixels
(full field) or whole apertures (tiled); beyond its edges the specimen continues by the encoder's
``outside_field`` rule: mirrored (numpy ``reflect``, edge not repeated, any distance) or dark.

* Full field (``encoder.tile_px() is None``, learnable Fourier filter): the whole field of view is ONE
  image and ONE exposure (``image_max``: its brightest pixel gets ``max_photons``), computed in object
  blocks of ``block_px`` read with a halo of ``encoder.context_px()``; equal (to float rounding) to the
  one-shot linear convolution. Noise is seeded by ``seed``.
* Tiled (PhaseD2NN): one acquisition per aperture tile, row-major; each tile is its own exposure, its
  noise seeded by ``SeedSequence([seed, tile_index])``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..optics.acquisition import Acquisition, Progress

__all__ = ["simulate_full_field"]


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

    def __getitem__(self, index) -> np.ndarray:
        """A rectangular slice ``[r0:r1, c0:c1]`` as complex64 numpy (lazy inputs are read and checked)."""
        rows, cols = index
        return self.read(rows.start, rows.stop, cols.start, cols.stop)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or int(seed) != seed or int(seed) < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


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
    acquisition = Acquisition.with_photons(encoder, max_photons, read_noise_e)
    cfg = encoder.config
    b = cfg.detector.binning
    rows, cols = reader.shape
    device = torch.device(device)
    was_training = encoder.training
    encoder.to(device).eval()
    try:
        acq = acquisition.acquire_field(reader, noise="exact", seed=seed, device=device, progress=progress,
                                        block_px=int(block_px))
    finally:
        encoder.train(was_training)
    camera, covered, n_acq, tile = acq.camera, acq.covered_object_px, acq.n_acquisitions, acq.tile_px
    det = acquisition.detector.config
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
        "flat_field_corrected": bool(det.flat_field),
        "seed": seed,
        "optics": cfg.optics.kind,
        "outside_field": cfg.outside_field,
        "n_acquisitions": int(n_acq),
    }
    if tile is not None:
        attrs["acquisition"] = f"tiled {tile}x{tile} apertures, {n_acq} acquisitions"
        attrs["tile_px"] = int(tile)
        attrs["aperture_um"] = float(tile * encoder.pixel_size_um)
        attrs["noise_seeding"] = "per tile: SeedSequence([seed, tile_index]), row-major tile order"
    else:
        attrs["acquisition"] = "single full-field image"
        attrs["block_px"] = int(block_px)
        attrs["context_px"] = int(encoder.context_px())
    return np.ascontiguousarray(camera, dtype=np.float32), attrs
