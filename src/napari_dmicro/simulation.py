"""Simulate a camera measurement of a complex field through an encoder (optics + detector).

Engine code: numpy in, numpy out, torch underneath; no Qt. The camera covers the largest region of
the field whose sides are multiples of the binning factor, anchored at the top-left pixel, so camera
pixel (i, j) integrates object pixels [i·b, (i+1)·b) × [j·b, (j+1)·b). The optics see the whole field,
extended beyond its edges by the encoder's ``outside_field`` rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field

import numpy as np
import torch

from .config import DetectorConfig, EncoderConfig
from .device import resolve_device
from .optics import Encoder


@dataclass(frozen=True)
class Measurement:
    """A simulated camera image with the facts needed to interpret it."""

    data: np.ndarray  # float32 (rows, cols), intensity units (plane wave = 1)
    camera_pixel_size_um: float
    wavelength_um: float
    object_region_px: tuple[int, int]  # rows, cols of the field the camera covered (from the top-left)
    attrs: dict = dc_field(default_factory=dict)


def as_complex_field(field) -> np.ndarray:
    """Validate a 2-D complex array (numpy or array-like) and return it as complex64."""
    arr = np.asarray(field)
    if arr.ndim != 2:
        raise ValueError(f"a field must be 2-D (rows, cols); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("the field is empty")
    if not np.iscomplexobj(arr):
        raise ValueError(
            f"the field has real dtype {arr.dtype}; a field is complex (amplitude·exp(i·phase)). "
            "Build it with amplitude * np.exp(1j * phase_rad)"
        )
    if not np.isfinite(arr).all():
        raise ValueError("the field contains NaN or infinite values; fix or mask them before simulating")
    return arr.astype(np.complex64, copy=False)


def with_detector(config: EncoderConfig, **detector_updates) -> EncoderConfig:
    """A copy of ``config`` with detector settings replaced (e.g. max_photons, read_noise_e)."""
    detector = DetectorConfig(**{**config.detector.model_dump(), **detector_updates})
    return config.model_copy(update={"detector": detector})


def _tile_size(encoder: Encoder) -> int:
    """Aperture side in object pixels for encoders that image tile by tile (PhaseD2NN), else 0."""
    optics = encoder.config.optics
    return optics.n_neurons if optics.kind == "d2nn" else 0


@torch.no_grad()
def simulate_measurement(field, encoder: Encoder, *, seed: int = 0, device: str = "cpu") -> Measurement:
    """Camera image of ``field`` through ``encoder``; noise follows ``encoder.config.detector``.

    Noise (if ``max_photons`` is set) is sampled exactly (Poisson + Gaussian) with a generator seeded
    by ``seed``: the same seed gives the same measurement.
    """
    arr = as_complex_field(field)
    b = encoder.config.detector.binning
    rows, cols = (arr.shape[0] // b) * b, (arr.shape[1] // b) * b
    if rows == 0 or cols == 0:
        raise ValueError(f"the field ({arr.shape[0]}×{arr.shape[1]}) is smaller than one camera pixel "
                         f"({b}×{b} object pixels)")
    tile = _tile_size(encoder)
    if tile:
        rows, cols = (arr.shape[0] // tile) * tile, (arr.shape[1] // tile) * tile
        if rows == 0 or cols == 0:
            raise ValueError(f"the diffractive encoder images {tile}×{tile} tiles; the field "
                             f"({arr.shape[0]}×{arr.shape[1]}) is smaller than one tile")
    dev = resolve_device(device)
    encoder = encoder.to(dev).eval()
    generator = torch.Generator(device=dev).manual_seed(int(seed))
    noise = "exact" if encoder.config.detector.noisy else "none"
    if tile:  # one acquisition per aperture-sized tile, row-major order
        tensor = torch.from_numpy(np.ascontiguousarray(arr[:rows, :cols])).to(dev)
        tiles = tensor.reshape(rows // tile, tile, cols // tile, tile).permute(0, 2, 1, 3)
        out = encoder(tiles.reshape(-1, tile, tile), noise=noise, generator=generator)
        t = tile // b
        meas = out.reshape(rows // tile, cols // tile, t, t).permute(0, 2, 1, 3).reshape(rows // b, cols // b)
    else:  # the whole field of view is one image; the camera covers its top-left rows × cols
        det_field = encoder.full_field_detector(torch.from_numpy(arr).to(dev))[:rows, :cols]
        meas = encoder.detector(det_field, noise=noise, generator=generator)
    det = encoder.config.detector
    attrs = {
        "compression": det.compression,
        "binning": b,
        "max_photons": det.max_photons,
        "read_noise_e": det.read_noise_e,
        "photon_reference": det.photon_reference,
        "seed": int(seed),
        "optics": encoder.config.optics.kind,
        "object_pixel_size_um": encoder.pixel_size_um,
        "object_region_px": [rows, cols],
        "acquisition": f"tiled {tile}x{tile} apertures" if tile else "single full-field image",
        "outside_field": encoder.config.outside_field,
    }
    return Measurement(meas.cpu().numpy().astype(np.float32), encoder.camera_pixel_size_um,
                       encoder.config.optics.grid.wavelength_um, (rows, cols), attrs)
