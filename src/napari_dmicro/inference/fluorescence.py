"""Whole images through a fluorescence model: simulate the measurement, reconstruct, segment.

- :func:`simulate_fluorescence`: a 2-D fluorescence image at a stated pixel size (a store's metadata, a
  :class:`~napari_dmicro.io.fluorescence.FluorescenceImage`, or ``pixel_size_um``; a bare array without one is
  taken to be on the model's grid and the record says so) → :class:`FluorescenceMeasurement` (T, h, w) with its
  metadata. The image is normalised to [0, 1] by its minimum and maximum (what the models were trained on; the
  record keeps offset and scale) and extended by mirroring to whole pattern periods (the patterns are tiled
  from the image's first pixel); a pixel size other than the model's is refused (no resampling: the patterns
  and PSFs are physical at the model's pixel).
- :func:`reconstruct_fluorescence`: measurement → image in [0, 1] on the input's grid (the mirrored margin is
  cut off). The locality decoder is local, so large images are decoded in non-overlapping tiles read with a
  halo of at least the decoder's receptive field (tile origins on whole pattern periods): the result equals
  the whole-image decode (tested).
- :func:`segment_fluorescence`: a task-aware model's instance labels (int32) on the input's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

#: camera pixels of the core of one decoder tile (plus the halo on each side)
TILE_CAMERA_PX = 64


@dataclass
class FluorescenceMeasurement:
    """A fluorescence measurement: ``data`` (T, h, w) float32 in units of the noise-free sum (see
    :class:`~napari_dmicro.fluorescence.FluorescenceEncoder`) and ``attrs`` (modality, patterns, bin, pixel
    sizes, photons, read noise, seed, model, the image's shape and normalisation)."""

    data: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


def _image_and_pixel_size(image, pixel_size_um):
    from ..io.fluorescence import FluorescenceImage
    from ..io.images import ImageData

    if isinstance(image, FluorescenceImage):
        return _agree(np.asarray(image.image), image.pixel_size_um, pixel_size_um, "the image"), "metadata"
    if isinstance(image, ImageData):
        if image.kind != "fluorescence":
            raise TypeError(f"a fluorescence model simulates a fluorescence image; got a {image.kind} image")
        if "pixel_size_um" in set(image.attrs.get("defaults_used", ())) and pixel_size_um is None:
            raise ValueError("the image does not record its pixel size; give pixel_size_um=… (µm) — it is "
                             "never guessed")
        return _agree(np.asarray(image.data), image.pixel_size_um, pixel_size_um, "the image"), "metadata"
    return (np.asarray(image), pixel_size_um), ("given" if pixel_size_um is not None else "assumed (the model's)")


def _agree(data, stored, given, what):
    if given is not None and not math.isclose(float(given), float(stored), rel_tol=1e-6):
        raise ValueError(f"{what} records a pixel size of {stored:g} µm but pixel_size_um={given:g} was given; "
                         "drop the argument or fix the file's metadata")
    return data, float(stored)


def _check_model(model):
    if getattr(model, "modality", None) != "fluorescence":
        raise TypeError(f"{getattr(model, 'name', 'the model')} is not a fluorescence model")


def simulate_fluorescence(image, model, *, photons: float | None = None, read_noise: float = 0.0,
                          background_photons: float = 0.0, seed: int = 0, pixel_size_um: float | None = None,
                          device: str | torch.device = "cpu") -> FluorescenceMeasurement:
    """The measurement of a 2-D fluorescence image through ``model``'s BINARY patterns, camera and noise.

    ``photons``: photons per specimen pixel of density 1 under one full pattern (K; ``None`` = noise free),
    ``read_noise`` σ in e⁻, ``background_photons`` per camera pixel and frame; exact Poisson + Gaussian read
    noise from a generator seeded by ``seed``."""
    from ..fluorescence import FluorescenceEncoder
    from ..training.fluo_data import normalise_unit_range

    _check_model(model)
    (data, ps), ps_source = _image_and_pixel_size(image, pixel_size_um)
    if data.ndim != 2 or np.iscomplexobj(data):
        raise ValueError(f"a fluorescence image is a real 2-D array (rows, cols); got shape {data.shape} "
                         f"({data.dtype})")
    if not np.isfinite(data).all():
        raise ValueError("the fluorescence image contains NaN or infinite values")
    enc_cfg = model.config.encoder
    if ps is not None and not math.isclose(ps, enc_cfg.pixel_size_um, rel_tol=1e-4):
        raise ValueError(f"the image has {ps:g} µm pixels but {getattr(model, 'name', None) or 'the model'} images "
                         f"a specimen grid of {enc_cfg.pixel_size_um:g} µm (its DMD pixel); resample the image to "
                         f"{enc_cfg.pixel_size_um:g} µm first or use a model trained at {ps:g} µm")
    lo, hi = float(data.min()), float(data.max())
    x = normalise_unit_range(data)
    period = enc_cfg.period_px
    rows, cols = x.shape
    pad = (-rows % period, -cols % period)
    if any(pad):
        x = np.pad(x, ((0, pad[0]), (0, pad[1])), mode="symmetric")
    detector = enc_cfg.detector.model_copy(update={"photons_per_unit": photons, "read_noise_e": read_noise,
                                                   "background_photons": background_photons})
    detector = type(detector).model_validate(detector.model_dump())
    cfg = enc_cfg.model_copy(update={"detector": detector})
    encoder = FluorescenceEncoder(cfg)
    encoder.load_state_dict(model.encoder.state_dict())
    encoder.to(device).eval()
    gen = torch.Generator(device=device).manual_seed(int(seed))
    with torch.no_grad():
        meas = encoder(torch.from_numpy(x)[None].to(device), noise="exact" if detector.noisy else "none",
                       generator=gen, binary=True)[0].cpu().numpy()
    attrs = {"modality": "fluorescence", "n_patterns": enc_cfg.patterns.n_patterns,
             "period_bins": enc_cfg.patterns.period_bins, "bin_px": enc_cfg.detector.bin_px,
             "compression": enc_cfg.compression, "pixel_size_um": enc_cfg.pixel_size_um,
             "pixel_size_source": ps_source, "camera_pixel_size_um": enc_cfg.camera_pixel_size_um,
             "photons_per_unit": photons, "read_noise_e": read_noise, "background_photons": background_photons,
             "seed": int(seed), "patterns": "binary",
             "model": getattr(model, "name", None) or getattr(model, "source", None),
             "image_shape": [rows, cols], "image_offset": lo, "image_scale": hi - lo}
    return FluorescenceMeasurement(meas.astype(np.float32), attrs)


def _measurement_array(meas, model) -> tuple[np.ndarray, tuple[int, int] | None]:
    enc = model.config.encoder
    if isinstance(meas, FluorescenceMeasurement):
        attrs = meas.attrs
        want = {"n_patterns": enc.patterns.n_patterns, "bin_px": enc.detector.bin_px,
                "period_bins": enc.patterns.period_bins, "pixel_size_um": enc.pixel_size_um}
        bad = [f"{k} {attrs.get(k)} vs {v}" for k, v in want.items() if attrs.get(k) != v]
        if bad:
            raise ValueError("the measurement was not made by this model's microscope (" + "; ".join(bad)
                             + "); reconstruct with the model that simulated it")
        shape = attrs.get("image_shape")
        return np.asarray(meas.data, np.float32), (tuple(shape) if shape else None)
    data = np.asarray(meas, np.float32)
    if data.ndim != 3 or data.shape[0] != enc.patterns.n_patterns:
        raise ValueError(f"a fluorescence measurement is (T, h, w) with T = {enc.patterns.n_patterns} patterns; "
                         f"got shape {data.shape}")
    return data, None


@torch.no_grad()
def decode_tiled(model, meas: np.ndarray, *, tile_camera_px: int = TILE_CAMERA_PX, device="cpu"
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Decoder output of a (T, h, w) measurement: image (H, W) and seg logits (2, H, W) or None, decoded in
    non-overlapping tiles of ``tile_camera_px`` camera px, each read with a halo of the receptive field."""
    cfg = model.config
    from ..decoders.locality import shift_quantum_px

    d = cfg.encoder.detector.bin_px
    # tiles start at multiples of the shift quantum (camera px), so each tile decodes as the whole field would
    k = max(shift_quantum_px(d, cfg.encoder.patterns.period_bins, model.decoder.unshuffle) // d, 1)
    rf = model.decoder.receptive_field_camera_px
    halo = -(-(rf // 2 + 1) // k) * k
    core = max(-(-tile_camera_px // k) * k, k)
    _, h, w = meas.shape
    channels = 1 + (2 if model.has_seg_head else 0)
    out = np.zeros((channels, h * d, w * d), np.float32)
    y = torch.from_numpy(meas)
    model.eval()
    for r0 in range(0, h, core):
        for c0 in range(0, w, core):
            r1, c1 = min(r0 + core, h), min(c0 + core, w)
            a, b = max(r0 - halo, 0), max(c0 - halo, 0)
            tile = y[:, a:min(r1 + halo, h), b:min(c1 + halo, w)][None].to(device)
            image, logits = model.decode_all(tile)
            full = image[:, None] if logits is None else torch.cat([image[:, None], logits], dim=1)
            full = full[0].cpu().numpy()
            out[:, r0 * d:r1 * d, c0 * d:c1 * d] = full[:, (r0 - a) * d:(r1 - a) * d, (c0 - b) * d:(c1 - b) * d]
    return out[0], (out[1:] if model.has_seg_head else None)


def reconstruct_fluorescence(meas, model, *, device="cpu", tile_camera_px: int = TILE_CAMERA_PX) -> np.ndarray:
    """The image (float32, clipped to [0, 1], the normalised density) on the input image's grid."""
    _check_model(model)
    data, shape = _measurement_array(meas, model)
    image, _ = decode_tiled(model, data, tile_camera_px=tile_camera_px, device=device)
    if shape is not None:
        image = image[:shape[0], :shape[1]]
    return np.clip(image, 0, 1)


def segment_fluorescence(meas, model, *, device="cpu", min_size_px: int = 0,
                         tile_camera_px: int = TILE_CAMERA_PX) -> np.ndarray:
    """Instance labels (int32, 0 = background) on the input image's grid; task-aware models only."""
    from ..decoders.locality import instance_labels

    _check_model(model)
    if not model.has_seg_head:
        raise ValueError(f"{getattr(model, 'name', None) or 'this model'} is a reconstruction model without a "
                         "segmentation head; segment with a task-aware model (e.g. fluo-seg-x256) or segment its "
                         "reconstruction with a tool of your choice")
    data, shape = _measurement_array(meas, model)
    _, logits = decode_tiled(model, data, tile_camera_px=tile_camera_px, device=device)
    if shape is not None:
        logits = logits[:, :shape[0], :shape[1]]
    return instance_labels(logits[0], logits[1], min_size_px=min_size_px)


__all__ = ["FluorescenceMeasurement", "decode_tiled", "reconstruct_fluorescence", "segment_fluorescence",
           "simulate_fluorescence"]
