"""Whole images through a fluorescence model: simulate the measurement, reconstruct, segment.

- :func:`simulate_fluorescence`: a 2-D fluorescence image at a stated pixel size (a store's metadata, a
  :class:`~napari_dmicro.io.fluorescence.FluorescenceImage`, or ``pixel_size_um``; a bare array without one is
  taken to be on the model's grid and the record says so) → :class:`FluorescenceMeasurement` (T, h, w) with its
  metadata. The image is normalised to [0, 1] by its minimum and maximum (what the models were trained on; the
  record keeps offset and scale), brought to the model's pixel size when it has another one (the rule of
  :mod:`napari_dmicro.model_grid`: anti-aliased resampling, refused beyond 16× apart; the record says so:
  ``source_image_shape``, ``source_pixel_size_um``, ``grid_adaptation``) and extended by mirroring to whole
  pattern periods (the patterns are tiled from the image's first pixel). The measurement carries the binary
  patterns that made it, so a model with other patterns is refused.
- :func:`reconstruct_fluorescence`: measurement → image in [0, 1] on the input's grid (the mirrored margin is
  cut off, a resampled image is resampled back to exactly its own shape). The locality decoder is local, so
  large images are decoded in non-overlapping tiles read with a
  halo of at least the decoder's receptive field (tile origins on whole pattern periods): the result equals
  the whole-image decode (tested). The tile core is at least four times the halo: the receptive field is fixed in
  specimen px, so at small bins (x4, the unbinned full-resolution network) it spans hundreds of camera px and
  64-px cores would decode each pixel many times over (measured on 1024², one thread: fluo-x4 2.4 → 0.2 s,
  the bin-1 network 36 → 0.25 s).
- :func:`segment_fluorescence`: a task-aware model's instance labels (int32) on the input's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

#: least camera pixels of the core of one decoder tile (plus the halo on each side); the core is also at
#: least four times the halo (see :func:`tile_core_camera_px`)
TILE_CAMERA_PX = 64


def tile_core_camera_px(halo_camera_px: int, quantum_camera_px: int, least_camera_px: int = TILE_CAMERA_PX
                        ) -> int:
    """Camera px of a tile's core: at least ``least_camera_px`` and four times the halo, in whole shift quanta,
    so a tile decodes at most (1 + 2·¼)² = 2.25x the pixels it keeps (a tile is at most 6 halos wide)."""
    core = max(least_camera_px, 4 * halo_camera_px)
    return max(-(-core // quantum_camera_px) * quantum_camera_px, quantum_camera_px)


@dataclass
class FluorescenceMeasurement:
    """A fluorescence measurement: ``data`` (T, h, w) float32 in units of the noise-free sum (see
    :class:`~napari_dmicro.fluorescence.FluorescenceEncoder`), ``attrs`` (modality, patterns, bin, pixel
    sizes, photons, read noise, seed, model, the image's shape, grid and normalisation) and ``patterns``: the
    binary DMD patterns (T, P, P) uint8 that made it (None: unknown, e.g. a bare array).

    Stored with :func:`napari_dmicro.io.fluorescence.write_fluorescence_measurement` and read back with
    :func:`~napari_dmicro.io.fluorescence.read_fluorescence_measurement`."""

    data: np.ndarray
    attrs: dict = field(default_factory=dict)
    patterns: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


def _image_and_pixel_size(image, pixel_size_um, wavelength_um=None):
    """((data, pixel size or None), where the pixel size came from, the image's emission wavelength or None)."""
    (data, ps), source, stored = _image_sampling(image, pixel_size_um)
    if wavelength_um is None:
        return (data, ps), source, stored
    if stored is not None and not math.isclose(float(wavelength_um), stored, rel_tol=1e-6):
        raise ValueError(f"the image records an emission wavelength of {stored:g} µm but wavelength_um="
                         f"{wavelength_um:g} was given; drop the argument or fix the file's metadata")
    from ..io.units import check_length_um

    return (data, ps), source, check_length_um(wavelength_um, "wavelength")


def _image_sampling(image, pixel_size_um):
    from ..io.fluorescence import FluorescenceImage
    from ..io.images import ImageData

    if isinstance(image, FluorescenceImage):
        return _agree(np.asarray(image.image), image.pixel_size_um, pixel_size_um, "the image"), "metadata", None
    if isinstance(image, ImageData):
        if image.kind != "fluorescence":
            raise TypeError(f"a fluorescence model simulates a fluorescence image; got a {image.kind} image")
        unrecorded = set(image.attrs.get("defaults_used", ()))
        if "pixel_size_um" in unrecorded:
            if pixel_size_um is None:
                raise ValueError("the image does not record its pixel size; give pixel_size_um=… (µm) — it is "
                                 "never guessed")
            return (np.asarray(image.data), float(pixel_size_um)), "given", None
        wavelength = None if "wavelength_um" in unrecorded else float(image.wavelength_um)
        return _agree(np.asarray(image.data), image.pixel_size_um, pixel_size_um, "the image"), "metadata", wavelength
    return ((np.asarray(image), pixel_size_um), "given" if pixel_size_um is not None else "assumed (the model's)",
            None)


def _agree(data, stored, given, what):
    if given is not None and not math.isclose(float(given), float(stored), rel_tol=1e-6):
        raise ValueError(f"{what} records a pixel size of {stored:g} µm but pixel_size_um={given:g} was given; "
                         "drop the argument or fix the file's metadata")
    return data, float(stored)


def _check_model(model):
    if getattr(model, "modality", None) != "fluorescence":
        raise TypeError(f"{getattr(model, 'name', 'the model')} is not a fluorescence model")


def _model_name(model) -> str | None:
    return getattr(model, "name", None) or getattr(model, "source", None)


def binary_patterns(model) -> np.ndarray:
    """The model's deployed DMD patterns over one period (T, P, P), uint8 {0 = off, 1 = on}."""
    with torch.no_grad():
        return (model.encoder.patterns(binary=True) > 0).cpu().numpy().astype(np.uint8)


def _emission_wavelength_um(encoder_config, image_wavelength_um: float | None) -> float | None:
    """The measurement's emission wavelength: the model's emission PSF's (the simulated microscope), else the
    image's own, else None (unknown)."""
    emission = encoder_config.emission
    if emission.kind == "gaussian" and emission.wavelength_um is not None:
        return float(emission.wavelength_um)
    return image_wavelength_um


def _to_model_grid(x: np.ndarray, pixel_size_um: float, model_pixel_size_um: float) -> tuple[np.ndarray, dict]:
    """A normalised image on the model's grid (the rule of :mod:`napari_dmicro.model_grid`) and the record keys."""
    from ..io.resample import resample_image
    from ..model_grid import RESAMPLING_REAL, describe_resampling, resampled_shape_on_grid

    shape = resampled_shape_on_grid(pixel_size_um, model_pixel_size_um, x.shape)
    out = resample_image(x, pixel_size_um, model_pixel_size_um, shape=shape).astype(np.float32)
    return out, {"source_image_shape": list(x.shape), "source_pixel_size_um": float(pixel_size_um),
                 "grid_adaptation": describe_resampling(x.shape, pixel_size_um, shape, model_pixel_size_um),
                 "resampling": RESAMPLING_REAL}


def simulate_fluorescence(image, model, *, photons: float | None = None, read_noise: float = 0.0,
                          background_photons: float = 0.0, seed: int = 0, pixel_size_um: float | None = None,
                          wavelength_um: float | None = None,
                          device: str | torch.device = "cpu") -> FluorescenceMeasurement:
    """The measurement of a 2-D fluorescence image through ``model``'s BINARY patterns, camera and noise.

    ``photons``: photons per specimen pixel of density 1 under one full pattern (K; ``None`` = noise free),
    ``read_noise`` σ in e⁻, ``background_photons`` per camera pixel and frame; exact Poisson + Gaussian read
    noise from a generator seeded by ``seed``. ``wavelength_um``: the image's emission wavelength when its file
    does not record it (the measurement's is the model's emission PSF's, else the image's)."""
    from ..fluorescence import FluorescenceEncoder
    from ..training.fluo_data import normalise_unit_range

    _check_model(model)
    (data, ps), ps_source, image_wavelength_um = _image_and_pixel_size(image, pixel_size_um, wavelength_um)
    if data.ndim != 2 or np.iscomplexobj(data):
        raise ValueError(f"a fluorescence image is a real 2-D array (rows, cols); got shape {data.shape} "
                         f"({data.dtype})")
    if not np.isfinite(data).all():
        raise ValueError("the fluorescence image contains NaN or infinite values")
    from ..model_grid import REL_TOL

    enc_cfg = model.config.encoder
    lo, hi = float(data.min()), float(data.max())
    x = normalise_unit_range(data)  # before resampling: the reconstruction is in the units of the input's range
    grid = {}
    if ps is not None and not math.isclose(ps, enc_cfg.pixel_size_um, rel_tol=REL_TOL):
        try:
            x, grid = _to_model_grid(x, ps, enc_cfg.pixel_size_um)
        except ValueError as exc:
            raise ValueError(f"{_model_name(model) or 'the model'} images a specimen grid of "
                             f"{enc_cfg.pixel_size_um:g} µm (its DMD pixel): {exc}") from None
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
             "emission_wavelength_um": _emission_wavelength_um(enc_cfg, image_wavelength_um),
             "photons_per_unit": photons, "read_noise_e": read_noise, "background_photons": background_photons,
             "seed": int(seed), "patterns": "binary", "model": _model_name(model),
             "model_file": getattr(model, "source", None),
             "image_shape": [rows, cols], "image_offset": lo, "image_scale": hi - lo, **grid}
    return FluorescenceMeasurement(meas.astype(np.float32), attrs, binary_patterns(model))


def _measurement_array(meas, model) -> tuple[np.ndarray, dict]:
    """The (T, h, w) frames and the attributes saying which grid to return on; a measurement made by another
    microscope (geometry or patterns) is refused, naming both models."""
    enc = model.config.encoder
    if isinstance(meas, FluorescenceMeasurement):
        attrs = meas.attrs
        made_by = attrs.get("model") or "an unnamed model"
        name = _model_name(model) or "this model"
        want = {"n_patterns": enc.patterns.n_patterns, "bin_px": enc.detector.bin_px,
                "period_bins": enc.patterns.period_bins, "pixel_size_um": enc.pixel_size_um}
        bad = [f"{k} {attrs.get(k)} vs {v}" for k, v in want.items()
               if attrs.get(k) is None or not math.isclose(float(attrs[k]), float(v), rel_tol=1e-9)]
        if bad:
            raise ValueError(f"the measurement was made by {made_by}, not by the microscope of {name} ("
                             + "; ".join(bad) + "); reconstruct with the model that simulated it")
        if meas.patterns is not None:
            ours = binary_patterns(model)
            if ours.shape != meas.patterns.shape or not np.array_equal(ours, meas.patterns):
                differ = (f"{int((ours != meas.patterns).sum())} of {ours.size} mirrors differ"
                          if ours.shape == meas.patterns.shape else f"{meas.patterns.shape} vs {ours.shape}")
                raise ValueError(f"the measurement was made with the illumination patterns of {made_by}, but {name} "
                                 f"has other patterns ({differ}): its decoder inverts only its own patterns; "
                                 f"reconstruct with {made_by}")
        return np.asarray(meas.data, np.float32), attrs
    data = np.asarray(meas, np.float32)
    if data.ndim != 3 or data.shape[0] != enc.patterns.n_patterns:
        raise ValueError(f"a fluorescence measurement is (T, h, w) with T = {enc.patterns.n_patterns} patterns; "
                         f"got shape {data.shape}")
    return data, {}


def input_pixel_size_um(attrs: dict) -> float:
    """The specimen pixel (µm) of the image a measurement was simulated from: the grid reconstruct and segment
    return on (its own pixel when ``dm.simulate`` resampled it, else the model's)."""
    return float(attrs.get("source_pixel_size_um") or attrs["pixel_size_um"])


def _on_input_grid(channels: np.ndarray, attrs: dict) -> np.ndarray:
    """Decoder outputs (C, H, W) on the model's grid → the input image's grid: the mirrored margin cut off,
    resampled back to exactly the input's shape when the simulation resampled it."""
    from ..io.resample import resample_image

    shape = attrs.get("image_shape")  # on the model's grid
    if not shape:
        return channels
    channels = channels[:, :shape[0], :shape[1]]
    if attrs.get("source_image_shape"):
        source = tuple(attrs["source_image_shape"])
        return np.stack([resample_image(c, attrs["pixel_size_um"], attrs["source_pixel_size_um"], shape=source)
                         for c in channels]).astype(np.float32)
    return channels


@torch.no_grad()
def decode_tiled(model, meas: np.ndarray, *, tile_camera_px: int | None = None, device="cpu"
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Decoder output of a (T, h, w) measurement: image (H, W) and seg logits (2, H, W) or None, decoded in
    non-overlapping tiles, each read with a halo of the receptive field. Tile cores are
    :func:`tile_core_camera_px` (None) or exactly ``tile_camera_px`` camera px (rounded up to whole shift
    quanta; small values are for tests of the tiling)."""
    cfg = model.config
    from ..decoders.locality import shift_quantum_px

    d = cfg.encoder.detector.bin_px
    # tiles start at multiples of the shift quantum (camera px), so each tile decodes as the whole field would
    k = max(shift_quantum_px(d, cfg.encoder.patterns.period_bins, model.decoder.unshuffle) // d, 1)
    rf = model.decoder.receptive_field_camera_px
    halo = -(-(rf // 2 + 1) // k) * k
    core = (tile_core_camera_px(halo, k) if tile_camera_px is None
            else tile_core_camera_px(0, k, least_camera_px=tile_camera_px))
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


def reconstruct_fluorescence(meas, model, *, device="cpu", tile_camera_px: int | None = None) -> np.ndarray:
    """The image (float32, clipped to [0, 1], the normalised density) on the input image's grid."""
    _check_model(model)
    data, attrs = _measurement_array(meas, model)
    image, _ = decode_tiled(model, data, tile_camera_px=tile_camera_px, device=device)
    return np.clip(_on_input_grid(image[None], attrs)[0], 0, 1)


def segment_fluorescence(meas, model, *, device="cpu", min_size_px: int = 0,
                         tile_camera_px: int | None = None) -> np.ndarray:
    """Instance labels (int32, 0 = background) on the input image's grid; task-aware models only."""
    from ..decoders.locality import instance_labels

    _check_model(model)
    if not model.has_seg_head:
        from ..training.presets import PRESETS

        task_aware = ", ".join(n for n in PRESETS if n.startswith("fluo-seg-"))
        raise ValueError(f"{getattr(model, 'name', None) or 'this model'} is a reconstruction model without a "
                         f"segmentation head; segment with a task-aware model ({task_aware}, or a checkpoint "
                         "trained with one of those presets) or segment its reconstruction with a tool of your "
                         "choice")
    data, attrs = _measurement_array(meas, model)
    _, logits = decode_tiled(model, data, tile_camera_px=tile_camera_px, device=device)
    logits = _on_input_grid(logits, attrs)  # continuous logits are resampled, never the labels
    pixel_size_um = input_pixel_size_um(attrs) if attrs else float(model.config.encoder.pixel_size_um)
    return instance_labels(logits[0], logits[1], min_size_px=min_size_px, pixel_size_um=pixel_size_um)


__all__ = ["FluorescenceMeasurement", "binary_patterns", "decode_tiled", "input_pixel_size_um",
           "reconstruct_fluorescence", "segment_fluorescence", "simulate_fluorescence", "tile_core_camera_px"]
