"""The acquisition: specimen field → optics → |E|² → binning → photon scaling + noise → camera image.

This is the one place the microscope's forward model is assembled (deepinv's
``Physics.forward = sensor(noise(A(x)))``); simulation, every training stage, evaluation and the
benchmarks call it. Two strategies, chosen by the optics (``Encoder.tile_px()``):

* **full field** (``tile_px() is None``, learnable Fourier filter): the whole field of view is ONE image,
  the linear convolution of the specimen (continued beyond the field by ``outside_field``) with the
  filter's PSF. Whole fields are computed in object blocks, each read with a halo of ``context_px()``
  pixels, so memory is bounded by the block; the result equals the one-shot computation.
* **tiled** (``tile_px()`` = the aperture, PhaseD2NN): the field of view is acquired aperture by
  aperture, one exposure per tile (the field continued by the same rule to whole tiles).

**Photon reference** (``DetectorConfig.photon_reference``): with ``"image_max"`` the exposure puts
``max_photons`` at the brightest camera pixel *of the whole acquisition* — the whole field of view
(full field) or the aperture tile (tiled). A training crop is exposed as part of the acquisition it is
cut from: it carries that acquisition's reference (:meth:`Acquisition.photon_reference`), so a crop
gets exactly the photons per intensity unit of the whole field. ``"unit_intensity"`` puts
``max_photons`` at intensity 1 (an unobstructed beam).

**Flat field** (``DetectorConfig.flat_field``, off by default): a microscope is calibrated with an
empty-field image. The camera image is taken in units of the illumination (divided by the specimen's
illumination intensity I₀, :func:`illumination_intensity`: the median |E|² of the field, or of a training
region), exposed (photon budget and noise as above, on that raw exposure), then divided by the noise-free
flat: the camera image of a unit blank field through the same optics (:meth:`Acquisition.flat_camera`;
uniform for the shift-invariant LFF, one aperture's pattern for a tiled PhaseD2NN). Scaling a field's
amplitude then leaves the noise-free measurement unchanged. The flat is recomputed from the current optics
on every batch and keeps its gradient: the measurement the decoder sees is I(θ)/F(θ), and a gradient that
ignored F would reward changing the overall transmission, which the division cancels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..config import DetectorConfig
from .detector import Detector, NoiseMode
from .grids import as_batch, crop_with_surroundings

#: tiles propagated together (each PhaseD2NN hop pads ×pad_factor: keep the batch small)
TILE_BATCH = 8

Progress = Callable[[int, int], None] | None


@dataclass
class FieldAcquisition:
    """A whole field's acquisition: the camera image and how it was taken."""

    camera: np.ndarray                 #: float32 (ceil(rows/b), ceil(cols/b)) or whole tiles
    covered_object_px: tuple[int, int]  #: object pixels the camera covers (field rounded up)
    n_acquisitions: int                #: exposures (1 for a full-field image, one per tile)
    tile_px: int | None                #: aperture side, or None for one full-field image
    intensity: np.ndarray | None = None  #: full-resolution |E|² over ``covered_object_px`` (if kept)
    photon_reference: float | None = None  #: camera intensity that received ``max_photons`` (full field)


def tile_seed(seed: int, index: int) -> int:
    """A reproducible, well-mixed seed for exposure ``index`` of an acquisition seeded by ``seed``."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


#: at most this many samples of a whole field enter its illumination estimate
ILLUMINATION_SAMPLES = 1 << 22
#: flat-field values below this (intensity units) are clamped: an optics that blocks a blank field
#: cannot be flat-field corrected
MIN_FLAT = 1e-6


def illumination_intensity(field, band_px: int = 1024) -> float:
    """I₀ of a 2-D field (numpy or lazily sliced): the median |E|² over (a regular subsample of) its pixels.

    The specimen's illumination: a blank field of this intensity is what the flat-field image records. Any
    amplitude scale a of the field scales it by a² exactly. Read in bands of ``band_px`` rows."""
    rows, cols = int(field.shape[-2]), int(field.shape[-1])
    step = max(1, math.ceil(math.sqrt(rows * cols / ILLUMINATION_SAMPLES)))
    band_rows = max(step, band_px // step * step)  # whole strides: the subsample is one regular grid
    samples = []
    for r0 in range(0, rows, band_rows):
        band = np.asarray(field[r0:min(r0 + band_rows, rows), 0:cols])
        samples.append(np.square(np.abs(band[::step, ::step].astype(np.complex64))).ravel())
    return max(float(np.median(np.concatenate(samples))), 1e-12)


def _complex_tensor(array) -> torch.Tensor:
    """complex64 torch tensor of a numpy array or tensor (no copy when it already is one)."""
    if isinstance(array, torch.Tensor):
        return array.to(torch.complex64)
    return torch.from_numpy(np.ascontiguousarray(array).astype(np.complex64, copy=False))


class Acquisition:
    """``Acquisition(encoder)``: the camera images of an encoder (its optics and detector).

    ``detector`` overrides the encoder's camera settings (e.g. the photon budget of a simulation).
    Batch path (differentiable, training): :meth:`detector_intensity`, :meth:`camera_image`,
    :meth:`expose`, ``__call__``. Whole-field path (numpy, blockwise, no gradient): :meth:`acquire_field`,
    :meth:`acquire_patches`, :meth:`photon_reference`.
    """

    def __init__(self, encoder, detector: DetectorConfig | None = None):
        self.encoder = encoder
        self.detector = Detector(detector or encoder.config.detector)
        self.binning = self.detector.config.binning
        self.tile_px = encoder.tile_px()
        self.context_px = int(encoder.context_px())
        self.outside_field = encoder.config.outside_field

    @classmethod
    def with_photons(cls, encoder, max_photons: float | None, read_noise_e: float = 0.0) -> Acquisition:
        """The encoder's acquisition with another photon budget (``None``: noise free)."""
        if read_noise_e and read_noise_e > 0 and max_photons is None:
            raise ValueError(
                f"read noise ({read_noise_e} e⁻) needs a photon budget: set max_photons (photons at the "
                "brightest pixel, e.g. 10000) or set the read noise to 0")
        det = encoder.config.detector
        cfg = DetectorConfig(**{**det.model_dump(), "max_photons": max_photons,
                                "read_noise_e": float(read_noise_e)})
        return cls(encoder, cfg)

    @property
    def noisy(self) -> bool:
        return self.detector.config.noisy

    # ------------------------------------------------------------------ batch path (differentiable)
    def detector_intensity(self, regions: torch.Tensor, context_px: int = 0, **optics_kwargs) -> torch.Tensor:
        """Full-resolution |E|² (B, P, P) of regions (B, P + 2c, P + 2c) that carry ``context_px`` = c of
        surrounding field (tiled optics: c = 0, the region is one aperture)."""
        out = self.encoder.optics(regions, **optics_kwargs)
        if context_px:
            out = out[..., context_px:-context_px, context_px:-context_px]
        return Detector.intensity(out)

    def bin(self, intensity: torch.Tensor) -> torch.Tensor:
        """Camera image (noise free) from a full-resolution intensity: b × b bin means."""
        return self.detector.demagnify(intensity)

    @property
    def flat_field(self) -> bool:
        return bool(self.detector.config.flat_field)

    def camera_image(self, regions: torch.Tensor, context_px: int = 0, **optics_kwargs) -> torch.Tensor:
        """Noise-free raw camera images (B, P/b, P/b) of regions with context (see detector_intensity);
        with the flat field on, in units of each region's illumination (:func:`illumination_intensity`)."""
        camera = self.bin(self.detector_intensity(regions, context_px, **optics_kwargs))
        if self.flat_field:
            i0 = regions.detach().abs().square().flatten(1).median(dim=1).values.clamp_min(1e-12)
            camera = camera / i0.reshape(-1, 1, 1).to(camera.dtype)
        return camera

    def flat_camera(self, device=None, **optics_kwargs) -> torch.Tensor:
        """The noise-free flat-field camera image of the current optics (differentiable): a unit blank
        field through the optics, binned. (t, t) for tiled optics (one aperture), (1, 1) for the
        shift-invariant LFF (every camera pixel sees the same blank field)."""
        b = self.binning
        if self.tile_px is not None:
            size, ctx = int(self.tile_px), 0
        elif getattr(self.encoder.config.optics, "convolution", "linear") == "circular":
            size, ctx = int(self.encoder.config.optics.filter_size_px), 0
        else:
            size, ctx = b + 2 * self.context_px, self.context_px
        blank = torch.ones(1, size, size, dtype=torch.complex64, device=device)
        flat = self.bin(self.detector_intensity(blank, ctx, **optics_kwargs))[0]
        if self.tile_px is None:
            flat = flat.mean().reshape(1, 1)
        return flat.clamp_min(MIN_FLAT)

    def expose(self, camera: torch.Tensor, noise: NoiseMode, generator: torch.Generator | None = None,
               reference: torch.Tensor | None = None, flat: torch.Tensor | None = None) -> torch.Tensor:
        """The measurement of raw camera images (B, h, w): photon scaling and noise, then (flat field on)
        division by the flat-field image. ``reference`` (B,) is the photon reference of the acquisition
        each image belongs to (default: the image itself is the whole acquisition); ``flat`` a flat
        computed before (default: :meth:`flat_camera` of the current optics)."""
        out = self.detector.add_noise(camera, noise, generator, reference)
        if not self.flat_field:
            return out
        flat = self.flat_camera(camera.device) if flat is None else flat.to(camera.device)
        h, w = out.shape[-2:]
        fh, fw = flat.shape[-2:]
        if h % fh or w % fw:
            raise ValueError(f"a {h}×{w} camera image is not a whole number of {fh}×{fw} flat-field tiles")
        return out / flat.repeat(h // fh, w // fw)

    def __call__(self, field: torch.Tensor, noise: NoiseMode = "none", generator: torch.Generator | None = None,
                 *, context_px: int = 0, reference: torch.Tensor | None = None, **optics_kwargs) -> torch.Tensor:
        """Camera measurement (B, P/b, P/b) of fields (B, P + 2c, P + 2c) (or unbatched (rows, cols))."""
        batch, added = as_batch(field)
        out = self.expose(self.camera_image(batch, context_px, **optics_kwargs), noise, generator, reference)
        return out[0] if added else out

    # ------------------------------------------------------------------ whole-field path (blockwise)
    @torch.no_grad()
    def acquire_field(self, field, *, noise: NoiseMode = "none", seed: int = 0, device=None,
                      progress: Progress = None, block_px: int = 2048, keep_intensity: bool = False,
                      apply_flat: bool = True, **optics_kwargs) -> FieldAcquisition:
        """Camera image of a 2-D complex field of any size (numpy, torch, or a lazily sliced array).

        Camera pixel (i, j) integrates object pixels [i·b, (i+1)·b) × [j·b, (j+1)·b); beyond the field's
        edges the specimen continues by ``outside_field``. Noise (``"exact"``) is sampled on the CPU from
        generators seeded by ``seed`` (per tile: :func:`tile_seed`), so it does not depend on ``device``.
        ``progress(done, total)`` is called after every block or batch of tiles. With the flat field on,
        the camera is in units of the field's illumination (:func:`illumination_intensity`) and, unless
        ``apply_flat`` is False (a raw exposure to be exposed later), divided by the flat.
        """
        device = torch.device("cpu" if device is None else device)
        i0 = illumination_intensity(field) if self.flat_field else 1.0
        flat = self.flat_camera(device, **optics_kwargs).cpu() if self.flat_field and apply_flat else None
        if self.tile_px is None:
            acq = self._full_field(field, noise, seed, device, progress, block_px, keep_intensity, i0,
                                   optics_kwargs)
            if flat is not None:
                acq.camera = acq.camera / flat.numpy()
        else:
            acq = self._tiled(field, noise, seed, device, progress, keep_intensity, i0, flat, optics_kwargs)
        return acq

    def _region_intensity(self, field, device, top: int, left: int, size_r: int, size_c: int, optics_kwargs):
        """|E|² (size_r, size_c) of the object region at (top, left), read with its optical context."""
        ctx = self.context_px
        region = crop_with_surroundings(field, top - ctx, left - ctx, size_r + 2 * ctx, size_c + 2 * ctx,
                                        self.outside_field)
        return self.detector_intensity(_complex_tensor(region).to(device), ctx, **optics_kwargs)

    def _full_field(self, field, noise, seed, device, progress, block_px, keep_intensity, i0, optics_kwargs):
        b = self.binning
        if block_px < b or block_px % b:
            raise ValueError(f"block_px={block_px} must be a positive multiple of the binning {b}")
        if getattr(self.encoder.config.optics, "convolution", "linear") != "linear":
            raise ValueError("a full-field acquisition needs optics that image a field of any size (the "
                             "linear-convolution LFF); the circular (periodic) model only images one window")
        rows, cols = int(field.shape[-2]), int(field.shape[-1])
        R, C = math.ceil(rows / b) * b, math.ceil(cols / b) * b
        camera = np.empty((R // b, C // b), dtype=np.float32)
        intensity = np.empty((R, C), dtype=np.float32) if keep_intensity else None
        tops, lefts = range(0, R, block_px), range(0, C, block_px)
        total, done = len(tops) * len(lefts), 0
        for r0 in tops:
            r1 = min(r0 + block_px, R)
            for c0 in lefts:
                c1 = min(c0 + block_px, C)
                block = self._region_intensity(field, device, r0, c0, r1 - r0, c1 - c0, optics_kwargs)
                camera[r0 // b:r1 // b, c0 // b:c1 // b] = self.bin(block[None])[0].float().cpu().numpy() / i0
                if intensity is not None:
                    intensity[r0:r1, c0:c1] = block.float().cpu().numpy()
                del block
                done += 1
                if progress is not None:
                    progress(done, total)
        reference = self._reference_of(camera)
        if noise != "none" and self.noisy:  # one exposure: the whole field of view
            camera = self.detector.add_noise(torch.from_numpy(camera)[None], noise,
                                             torch.Generator(device="cpu").manual_seed(int(seed)))[0].numpy()
        return FieldAcquisition(camera, (R, C), 1, None, intensity, reference)

    def _tiled(self, field, noise, seed, device, progress, keep_intensity, i0, flat, optics_kwargs):
        tile, b = int(self.tile_px), self.binning
        if tile % b:
            raise ValueError(f"the aperture ({tile} px) is not a multiple of the binning {b}")
        rows, cols = int(field.shape[-2]), int(field.shape[-1])
        n_r, n_c = math.ceil(rows / tile), math.ceil(cols / tile)
        t = tile // b
        camera = np.empty((n_r * t, n_c * t), dtype=np.float32)
        intensity = np.empty((n_r * tile, n_c * tile), dtype=np.float32) if keep_intensity else None
        total, done = n_r * n_c, 0
        for tr in range(n_r):  # one band of tiles in memory at a time
            band = crop_with_surroundings(field, tr * tile, 0, tile, n_c * tile, self.outside_field)
            tiles = band.reshape(tile, n_c, tile).swapaxes(0, 1)  # (n_c, tile, tile)
            for k0 in range(0, n_c, TILE_BATCH):
                k1 = min(k0 + TILE_BATCH, n_c)
                x = _complex_tensor(tiles[k0:k1])
                full = self.detector_intensity(x.to(device), 0, **optics_kwargs)
                binned = self.bin(full).float().cpu() / i0
                for k in range(k0, k1):
                    img = binned[k - k0:k - k0 + 1]
                    if noise != "none" and self.noisy:  # each tile is its own exposure
                        gen = torch.Generator(device="cpu").manual_seed(int(tile_seed(seed, tr * n_c + k)))
                        img = self.detector.add_noise(img, noise, gen)
                    if flat is not None:
                        img = img / flat
                    camera[tr * t:(tr + 1) * t, k * t:(k + 1) * t] = img[0].numpy()
                    if intensity is not None:
                        intensity[tr * tile:(tr + 1) * tile, k * tile:(k + 1) * tile] = \
                            full[k - k0].float().cpu().numpy()
                done += k1 - k0
                if progress is not None:
                    progress(done, total)
            del band, tiles
        return FieldAcquisition(camera, (n_r * tile, n_c * tile), total, tile, intensity, None)

    def _reference_of(self, camera: np.ndarray) -> float:
        """The camera intensity that receives ``max_photons`` when ``camera`` is one whole exposure."""
        if self.detector.config.photon_reference == "unit_intensity":
            return 1.0
        return max(float(camera.max()), 1e-12)

    @torch.no_grad()
    def photon_reference(self, field, device=None, **optics_kwargs) -> float | None:
        """Photon reference of a crop cut from ``field``: the whole field of view's brightest noise-free
        camera pixel (full field, ``image_max``). None when each crop is its own exposure (tiled: a crop
        is one aperture) or the reference does not depend on the content (``unit_intensity``)."""
        if self.tile_px is not None or self.detector.config.photon_reference != "image_max":
            return None
        return self.acquire_field(field, device=device, **optics_kwargs).photon_reference

    @torch.no_grad()
    def acquire_patches(self, field, corners: list[tuple[int, int]], patch_px: int, *, noise: NoiseMode = "none",
                        seed: int = 0, device=None, keep_intensity: bool = False, **optics_kwargs):
        """Camera images (N, p/b, p/b) (and full-resolution intensities (N, p, p)) of camera-aligned patches
        at ``corners`` (top, left) as the microscope records them: crops of the one full-field image, or
        one aperture acquisition per patch (tiled; the exposure of patch ``k`` seeded ``tile_seed(seed, k)``)."""
        b, p = self.binning, patch_px
        if self.tile_px is not None:  # the apertures side by side: one batched tiled acquisition
            if p != self.tile_px:
                raise ValueError(f"patches of the tiled optics are one aperture ({self.tile_px} px); got {p} px")
            field = np.concatenate([crop_with_surroundings(field, t, c, p, p, self.outside_field)
                                    for t, c in corners], axis=-1)
            corners = [(0, k * p) for k in range(len(corners))]
        acq = self.acquire_field(field, noise=noise, seed=seed, device=device, keep_intensity=keep_intensity,
                                 **optics_kwargs)
        cams = [acq.camera[t // b:(t + p) // b, c // b:(c + p) // b] for t, c in corners]
        ints = [acq.intensity[t:t + p, c:c + p] for t, c in corners] if keep_intensity else None
        cam = torch.from_numpy(np.stack(cams))
        return cam, (torch.from_numpy(np.stack(ints)) if ints is not None else None)
