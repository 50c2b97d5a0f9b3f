"""The public API (a stable contract; the CLI and the napari widgets call exactly these):

    import napari_dmicro as dm
    model = dm.load_model("lff-x64")            # a shipped model name, or a checkpoint path
    meas  = dm.simulate(field, model, photons=None, read_noise=0.0, seed=0)
    phase = dm.reconstruct(meas, model)          # radians, same shape as the field
    report = dm.evaluate(phase, reference)       # PSNR, SSIM, SSIM map (φ/2π, data range 1)
    labels = dm.segment(meas, model)             # fluorescence, task-aware models: instance labels
    scores = dm.evaluate_fluorescence(image, reference, labels=labels, reference_labels=masks)

``field`` is a 2-D complex numpy (or dask) array of any size; ``meas`` is a :class:`Measurement`: the
float32 camera image (``np.asarray(meas)``) beside the typed :class:`AcquisitionRecord` of how it was
made (``meas.record``: field shape, binning, pixel sizes, photons, optics, ...). ``dm.reconstruct``
also takes a bare 2-D real camera image (a lab acquisition: nothing to check against).
``dm.untrained_model`` gives random, seeded optics to simulate with before any model is trained.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np

from .config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from .device import resolve_device
from .holography import HologramField, HologramRecord, field_from_hologram  # noqa: F401  (public: dm.*)
from .measurement import AcquisitionRecord, Measurement, MeasurementStack  # noqa: F401  (public: dm.*)


def load_model(name_or_path, device: str = "cpu"):
    """A shipped model (``dmicro models`` lists them) or a checkpoint file / run folder → Microscope.

    The model is in eval mode on ``device``; ``model.card`` is its model card, ``model.source`` the
    file it came from and ``model.sha256`` that file's digest (what identifies it to dask workers).
    """
    from .io.checkpoints import load_checkpoint
    from .io.safetensors_header import file_sha256
    from .pretrained import resolve_model

    path = resolve_model(name_or_path)
    digest = file_sha256(path)
    model, info = load_checkpoint(path, device=device)
    model.sha256 = digest
    model.card = info.card
    model.source = str(path)
    model.name = str(name_or_path)
    return model


@dataclass
class UntrainedModel:
    """Random, seeded optics with their camera: what :func:`simulate` needs, before any training.

    It has no decoder, so :func:`reconstruct` refuses it. Build it with :func:`untrained_model`.
    """

    encoder: object
    name: str
    card: dict = dc_field(default_factory=dict)
    source: str | None = None


def untrained_model(optics: str = "lff", *, compression: int = 64, pixel_size_um: float = DEFAULT_PIXEL_SIZE_UM,
                    wavelength_um: float = DEFAULT_WAVELENGTH_UM, seed: int = 0) -> UntrainedModel:
    """Randomly initialised optics (``"lff"`` learnable Fourier filter or ``"d2nn"`` PhaseD2NN, seeded)
    on a grid of ``pixel_size_um`` at ``wavelength_um``, with a camera ``compression``× smaller."""
    import torch

    from .config import EncoderConfig
    from .optics import Encoder

    grid = {"pixel_size_um": pixel_size_um, "wavelength_um": wavelength_um}
    config = EncoderConfig.model_validate({"optics": {"kind": optics, "grid": grid},
                                           "detector": {"compression": compression}})
    encoder = Encoder(config, generator=torch.Generator().manual_seed(int(seed))).eval()
    return UntrainedModel(encoder, f"untrained {optics} x{compression} (optics seed {seed})")


def check_pixel_pitch(pixel_size_um: float, model, *, what: str = "the field", camera: bool = False) -> None:
    """Refuse an image whose pixels cannot be brought to the model's grid.

    A field (object pitch) of another pitch is resampled by :func:`simulate` (see
    :mod:`napari_dmicro.model_grid`); this refuses only what resampling cannot do (pitches more than
    ``MAX_PITCH_RATIO`` apart), with the reason. A camera image (``camera``) was made by the optics
    themselves: its pitch must be the model's (``camera_pixel_size_um``), nothing can resample it.
    """
    from .model_grid import REL_TOL, check_pitch_ratio

    encoder = model.encoder
    expected = float(encoder.camera_pixel_size_um if camera else encoder.pixel_size_um)
    name = getattr(model, "name", None) or "the model"
    if math.isclose(float(pixel_size_um), expected, rel_tol=REL_TOL):
        return
    if camera:
        raise ValueError(f"{what} has {pixel_size_um:g} µm camera pixels (object plane) but {name} records "
                         f"{expected:g} µm (x{encoder.config.detector.compression}); a camera image cannot be "
                         "resampled (the optics made it at their own pitch): reconstruct with the model that "
                         "matches the camera")
    check_pitch_ratio(float(pixel_size_um), expected)


def field_sampling(field, pixel_size_um, wavelength_um):
    """(data, pixel size, wavelength) of a field: an ImageData gives its metadata (refused when it has none and
    none is given), a bare array keeps ``None`` (= the model's grid)."""
    from .io.images import ImageData

    if not isinstance(field, ImageData):
        return field, pixel_size_um, wavelength_um
    if field.kind != "field":
        raise TypeError(f"dm.simulate needs a complex field; got a {field.kind} image")
    missing = set(field.attrs.get("defaults_used", ()))
    source = field.attrs.get("source") or "the field"
    values = []
    for key, given, stored, flag in (("pixel_size_um", pixel_size_um, field.pixel_size_um, "--pixel-size-um"),
                                     ("wavelength_um", wavelength_um, field.wavelength_um, "--wavelength-um")):
        what = key[:-3].replace("_", " ")
        if key in missing:
            if given is None:
                raise ValueError(f"{source} does not record its {what}; give {key}=… (µm; dmicro: {flag}) — "
                                 "it is never guessed")
            values.append(float(given))
        elif given is not None and not math.isclose(float(given), stored, rel_tol=1e-6):
            raise ValueError(f"{source} records a {what} of {stored:g} µm but {key}={given:g} was given; drop the "
                             "argument or fix the file's metadata")
        else:
            values.append(float(stored))
    return field.data, values[0], values[1]


def _is_fluorescence(model) -> bool:
    """A fluorescence model (a loaded one, or a name / checkpoint path whose configuration says so)."""
    if isinstance(model, (str, os.PathLike)):
        from .io.checkpoints import read_checkpoint_info
        from .pretrained import resolve_model

        return getattr(read_checkpoint_info(resolve_model(model)).config, "modality", "qpm") == "fluorescence"
    return getattr(model, "modality", "qpm") == "fluorescence"


def segment(meas, model, *, device: str = "cpu", min_size_px: int = 0) -> np.ndarray:
    """Instance labels (int32, 0 = background) of a fluorescence measurement on the input image's grid, from a
    task-aware model's segmentation head (a clear error for a model without one)."""
    from .inference.fluorescence import segment_fluorescence

    model = _as_model(model, device, need_decoder=True)
    if not _is_fluorescence(model):
        raise TypeError(f"dm.segment needs a task-aware fluorescence model; "
                        f"{getattr(model, 'name', None) or 'this model'} is a phase model")
    return segment_fluorescence(meas, model, device=resolve_device(device), min_size_px=min_size_px)


def illumination_patterns(model, periods: int = 4) -> np.ndarray:
    """A fluorescence model's illumination patterns as deployed: binary mirror states (1 on, 0 off), uint8
    (T, P·periods, P·periods), one period tiled ``periods`` × ``periods`` times from the field's first pixel
    as the microscope tiles it, at the model's specimen pixel size (``model.encoder.pixel_size_um``). The
    exposure that puts the set at the reference dose scales every on-mirror alike (``encoder.patterns``)."""
    from .fluorescence.patterns import tile_periodic

    model = _as_model(model, "cpu")
    if not _is_fluorescence(model):
        raise TypeError(f"{getattr(model, 'name', None) or 'this model'} is a phase model; only fluorescence "
                        "models have illumination patterns")
    if int(periods) < 1:
        raise ValueError(f"periods must be ≥ 1; got {periods}")
    import torch

    with torch.no_grad():
        on = (model.encoder.patterns(binary=True) > 0).to(torch.uint8).cpu()
    size = int(on.shape[-1]) * int(periods)
    return tile_periodic(on, size, size).numpy()


def _as_model(model, device: str, *, need_decoder: bool = False):
    """A model object from a model, a shipped model name or a checkpoint path."""
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, device=device)
    if not hasattr(model, "encoder"):
        raise TypeError(f"model must be a model from dm.load_model(...) or dm.untrained_model(...), a shipped "
                        f"model name or a checkpoint path; got {type(model).__name__}")
    if need_decoder and not hasattr(model, "decode"):
        raise TypeError(f"{getattr(model, 'name', 'this model')} has no decoder (untrained optics only): "
                        "reconstruct with a trained model (dm.load_model)")
    return model


def simulate(field, model, photons: float | None = None, read_noise: float = 0.0, seed: int = 0,
             device: str = "cpu", progress=None, *, pixel_size_um: float | None = None,
             wavelength_um: float | None = None, stack_axis: str = "t", out=None, background_photons: float = 0.0):
    """Camera image of ``field`` through the model's optics; ``photons=None`` means noise free.

    A fluorescence model (``model.modality == "fluorescence"``) takes a real 2-D fluorescence image instead
    (an array, a store read with ``read_fluorescence`` or ``read_image``, its pixel size from the metadata or
    ``pixel_size_um``, refused when it is not the model's) and returns a
    :class:`~napari_dmicro.inference.fluorescence.FluorescenceMeasurement` (T, h, w) with its metadata;
    ``photons`` is then the photons per specimen pixel of density 1 under one full pattern,
    ``background_photons`` the background per camera pixel and frame, ``wavelength_um``
    the image's emission wavelength when its file records none (:mod:`napari_dmicro.inference.fluorescence`).
    An image at another pixel size is resampled to the model's (the measurement's attributes say so) and
    :func:`reconstruct` / :func:`segment` return on the image's own grid.

    ``model``: a loaded or untrained model, or a shipped model name / checkpoint path (loaded).
    ``field``: a 2-D complex array (numpy/dask/zarr), or an :class:`~napari_dmicro.io.ImageData` from
    ``read_field`` (its recorded pixel size and wavelength are used; a file that records none is refused
    unless they are given). ``pixel_size_um`` / ``wavelength_um``: the field's sampling; ``None`` = the
    store's metadata, or the model's grid for a bare array. A field on another grid is brought to the
    model's (resampled, phase rescaled for another wavelength, small fields padded by the encoder's
    ``outside_field`` rule, mirrored by default: see :mod:`napari_dmicro.model_grid`); the record says
    how, and :func:`reconstruct` returns the phase on the field's own grid. The whole field of view is one
    image for a learnable Fourier filter (computed blockwise for large fields); tiled optics (PhaseD2NN)
    image it aperture by aperture.

    A 3-D field (planes, rows, cols) is a stack (``stack_axis`` ``"t"`` time-lapse or ``"p"`` positions):
    imaged plane by plane (plane k with seed ``seed + k``; lazy inputs are read one plane at a time) into
    a :class:`~napari_dmicro.measurement.MeasurementStack`; ``out``: an array (e.g. zarr) of the stack's
    shape, or a function ``out(shape)`` returning one (called once plane 0 gives the shape), that the
    planes are written into.
    """
    from .inference.simulate import simulate_full_field
    from .model_grid import plan_grid, to_model_grid

    model = _as_model(model, device)
    if _is_fluorescence(model):
        from .inference.fluorescence import simulate_fluorescence

        if out is not None:
            raise ValueError("a fluorescence model simulates one 2-D image (no out=)")
        return simulate_fluorescence(field, model, photons=photons, read_noise=read_noise, seed=seed,
                                     pixel_size_um=pixel_size_um, wavelength_um=wavelength_um,
                                     background_photons=background_photons, device=resolve_device(device))
    if background_photons:
        raise ValueError("background_photons is for fluorescence models (photons per camera pixel and frame)")
    field, pixel_size_um, wavelength_um = field_sampling(field, pixel_size_um, wavelength_um)
    if not hasattr(field, "shape"):
        field = np.asarray(field)
    if len(field.shape) == 3:
        return _simulate_stack(field, model, photons=photons, read_noise=read_noise, seed=seed, device=device,
                               progress=progress, pixel_size_um=pixel_size_um, wavelength_um=wavelength_um,
                               stack_axis=stack_axis, out=out)
    if out is not None:
        raise TypeError("out= is for stacks (3-D fields); a 2-D simulation returns its Measurement")
    if len(field.shape) != 2:
        raise ValueError(f"a field must be 2-D (rows, cols) or a stack (planes, rows, cols); got shape "
                         f"{tuple(field.shape)}")
    plan = plan_grid(field, model, pixel_size_um=pixel_size_um, wavelength_um=wavelength_um)
    data, attrs = simulate_full_field(to_model_grid(field, plan), model.encoder, max_photons=photons,
                                      read_noise_e=read_noise, seed=seed, device=resolve_device(device),
                                      progress=progress)
    attrs["model"] = getattr(model, "name", None) or getattr(model, "source", None)
    attrs.update(plan.record_attrs())
    return Measurement(data, AcquisitionRecord.from_attrs(attrs))


def _planes(stack):
    """Plane k of a (planes, rows, cols) array as numpy (dask/zarr: read one plane at a time)."""
    for k in range(int(stack.shape[0])):
        plane = stack[k]
        if hasattr(plane, "compute"):
            plane = plane.compute(scheduler="synchronous")
        yield k, plane


def _simulate_stack(field, model, *, stack_axis, out, seed, progress, **kwargs):
    from .measurement import check_stack_axis

    check_stack_axis(stack_axis)
    if int(field.shape[0]) < 1:
        raise ValueError("the stack has no planes")
    records, images = [], out
    n = int(field.shape[0])
    for k, plane in _planes(field):
        meas = simulate(plane, model, seed=int(seed) + k, **kwargs)
        if images is None:
            images = np.empty((n, *meas.shape), np.float32)
        elif callable(images):
            images = images((n, *meas.shape))
        elif tuple(images.shape) != (n, *meas.shape):
            raise ValueError(f"out has shape {tuple(images.shape)}; the measurement stack is {(n, *meas.shape)}")
        images[k] = meas.image
        records.append(meas.record)
        if progress is not None:
            progress(k + 1, n)
    return MeasurementStack(images, tuple(records), stack_axis)


class _RadiansOut:
    """Receives φ/2π rows from the reconstruction; stores them ×2π, cropped to ``out``'s shape."""

    def __init__(self, out, full_shape):
        self.out, self.shape = out, tuple(full_shape)
        self.chunks = getattr(out, "chunks", None)

    def __setitem__(self, rows: slice, values: np.ndarray):
        r0, r1, _ = rows.indices(self.shape[0])
        r1 = min(r1, self.out.shape[0])
        if r1 > r0:
            self.out[r0:r1] = values[:r1 - r0, :self.out.shape[1]] * np.float32(2 * np.pi)


def reconstruct(meas, model, *, record: AcquisitionRecord | None = None, overlap: int | None = None,
                device: str = "cpu", shape=None, pixel_size_um: float | None = None, progress=None,
                out=None, client=None) -> np.ndarray:
    """Phase in radians (float32) from a camera image, on the field's own grid.

    Fluorescence (a :class:`~napari_dmicro.inference.fluorescence.FluorescenceMeasurement` or a fluorescence
    model): the image normalised to [0, 1] on the input image's grid, decoded in tiles with a halo of the
    decoder's receptive field (:func:`~napari_dmicro.inference.fluorescence.reconstruct_fluorescence`).

    ``meas``: a :class:`Measurement` (from :func:`simulate` or a store), or a bare 2-D real camera image
    (numpy/dask/zarr) with an optional ``record``. The output has the record's field shape (or
    ``shape``), else the camera shape × binning. A measurement of a field that :func:`simulate` brought
    to the model's grid (resampled, phase rescaled, padded: ``record.source_field_shape``) is
    reconstructed on the model's grid and brought back: the phase is on the field's own grid and at its
    wavelength (:func:`reconstruction_grid` gives that pixel size and wavelength). ``pixel_size_um``:
    the camera pitch (object plane) of a bare image, checked against the model (a camera image cannot be
    resampled). Decoder windows overlap by ``overlap`` camera pixels and are blended smoothly (no seams);
    tiled acquisitions are reconstructed tile by tile. ``out``: an array of the output shape (e.g. a zarr
    array) written band by band (plane by plane for a stack) and returned.

    ``client``: a ``distributed.Client``; the image is then reconstructed in row blocks on its workers
    (each loads the model's checkpoint once: ``model`` must come from a file), with the same result
    (docs/scale-out.md).

    A :class:`~napari_dmicro.measurement.MeasurementStack` or a 3-D real array (planes, rows, cols) is
    reconstructed plane by plane (lazy inputs read one plane at a time) into a (planes, Y, X) phase stack.
    """

    from .inference.fluorescence import FluorescenceMeasurement

    if isinstance(meas, FluorescenceMeasurement) or _is_fluorescence(model):
        from .inference.fluorescence import reconstruct_fluorescence

        return reconstruct_fluorescence(meas, _as_model(model, device, need_decoder=True),
                                        device=resolve_device(device))
    if isinstance(meas, MeasurementStack) or (not isinstance(meas, Measurement)
                                              and len(getattr(meas, "shape", np.shape(meas))) == 3):
        return _reconstruct_stack(meas, model, record=record, overlap=overlap, device=device, shape=shape,
                                  pixel_size_um=pixel_size_um, progress=progress, out=out, client=client)
    from .inference.reconstruct import reconstruct_full_field
    from .model_grid import GridPlan, from_model_grid

    if isinstance(meas, Measurement):
        if record is not None:
            raise TypeError("the measurement carries its own record; give record= only with a bare image")
    else:
        if not (hasattr(meas, "shape") and hasattr(meas, "dtype")):
            meas = np.asarray(meas)
        if np.iscomplexobj(np.empty(0, dtype=meas.dtype)):
            raise TypeError("dm.reconstruct got a complex array: that is a field, not a camera image; "
                            "simulate its measurement first (dm.simulate(field, model)) and reconstruct that")
        if record is not None:
            meas = Measurement(np.asarray(meas), record)  # refuses a record of another image
    model = _as_model(model, device, need_decoder=True)
    plan = None
    if isinstance(meas, Measurement):
        check_measurement_matches_model(meas.record, model)
        if meas.record.camera_pixel_size_um is not None:
            check_pixel_pitch(meas.record.camera_pixel_size_um, model, what="this measurement", camera=True)
        plan = GridPlan.from_record(meas.record, model)
        if plan is not None and shape is not None:
            raise ValueError("shape= crops a reconstruction on the model's grid; this measurement records its "
                             f"field's own grid ({plan.describe()}), which the reconstruction is returned on")
    if pixel_size_um is not None:
        check_pixel_pitch(pixel_size_um, model, what="this measurement", camera=True)
    target = reconstruction_shape(meas, model, shape=shape)
    image = meas.image if isinstance(meas, Measurement) else meas
    b = int(model.encoder.config.detector.binning)
    full_shape = (int(image.shape[0]) * b, int(image.shape[1]) * b)
    if out is None:
        out = np.empty(target, dtype=np.float32)
    elif tuple(out.shape) != target:
        raise ValueError(f"out has shape {tuple(out.shape)}; the reconstruction is {target}")
    def run(target):
        if client is not None:
            from .inference.distributed import reconstruct_on_cluster

            reconstruct_on_cluster(image, model, client, out=_RadiansOut(target, full_shape), overlap=overlap,
                                   device=device, progress=progress)
        else:
            reconstruct_full_field(image, model, overlap=overlap, device=resolve_device(device), progress=progress,
                                   out=_RadiansOut(target, full_shape))

    if plan is None:
        run(out)
        return out
    on_model_grid = np.empty(tuple(meas.record.field_shape), np.float32)  # the specimen's grid: in memory
    run(on_model_grid)
    out[...] = from_model_grid(on_model_grid, plan)
    return out


def _reconstruct_stack(meas, model, *, record, shape, progress, out, **kwargs) -> np.ndarray:

    if isinstance(meas, MeasurementStack):
        if record is not None:
            raise TypeError("the measurement stack carries its own records; give record= only with a bare stack")
        planes = ((k, meas[k]) for k in range(len(meas)))
    else:
        planes = ((k, plane if record is None else Measurement(np.asarray(plane), record))
                  for k, plane in _planes(meas))
    model = _as_model(model, kwargs.get("device", "cpu"), need_decoder=True)
    n = int(meas.shape[0])
    for k, plane in planes:
        phase = reconstruct(plane, model, shape=shape, **kwargs)
        if out is None:
            out = np.empty((n, *phase.shape), np.float32)
        elif callable(out):
            out = out((n, *phase.shape))
        if tuple(out.shape) != (n, *phase.shape):
            raise ValueError(f"out has shape {tuple(out.shape)}; the reconstruction is {(n, *phase.shape)}")
        out[k] = phase
        if progress is not None:
            progress(k + 1, n)
    return out


def reconstruction_shape(meas, model, *, shape=None) -> tuple[int, ...]:
    """Shape (px) of ``reconstruct(meas, model, shape=shape)``: ``shape``, else the record's field shape on
    the field's own grid, else the camera shape × the model's binning ((planes, …) for a stack)."""

    if isinstance(meas, MeasurementStack):
        return (len(meas), *reconstruction_shape(meas[0], model, shape=shape))
    b = int(model.encoder.config.detector.binning)
    if not isinstance(meas, Measurement) and len(meas.shape) == 3:
        return (int(meas.shape[0]), *reconstruction_shape(meas[0], model, shape=shape))
    full_shape = (int(meas.shape[0]) * b, int(meas.shape[1]) * b)
    if shape is not None:
        target = tuple(int(s) for s in shape)
    elif isinstance(meas, Measurement):
        if meas.record.source_field_shape is not None:
            return tuple(meas.record.source_field_shape)
        target = tuple(meas.record.field_shape)
    else:
        target = full_shape
    if len(target) != 2 or not (0 < target[0] <= full_shape[0] and 0 < target[1] <= full_shape[1]):
        raise ValueError(f"shape {target} must fit inside the camera's object-plane coverage {full_shape}")
    return target


def reconstruction_grid(meas, model) -> tuple[float, float]:
    """(pixel_size_um, wavelength_um) of ``reconstruct(meas, model)``'s output: the field's own grid when the
    record says the field was brought to the model's grid, else the model's object grid."""

    model = _as_model(model, "cpu")
    record = meas.records[0] if isinstance(meas, MeasurementStack) else getattr(meas, "record", None)
    if record is not None and record.source_field_shape is not None:
        return float(record.source_pixel_size_um), float(record.source_wavelength_um)
    grid = model.encoder.config.optics.grid
    return float(grid.pixel_size_um), float(grid.wavelength_um)


def check_measurement_matches_model(record: AcquisitionRecord, model) -> None:
    """Refuse a measurement recorded by another kind of microscope; warn if another trained model made it.

    A decoder only inverts the optics it was trained with: another optics type, aperture or
    compression is an error; another trained model of the same type (different learned optics) gives
    a wrong phase, hence the warning.
    """
    encoder = model.encoder
    name = getattr(model, "name", None) or getattr(model, "source", None)
    made_by = record.model
    by = f" (model {made_by})" if made_by else ""
    ours = encoder.config.optics.kind
    if record.optics is not None and record.optics != ours:
        raise ValueError(f"this measurement was recorded through {record.optics} optics{by} but model {name} has "
                         f"{ours} optics; reconstruct with the model whose optics recorded it")
    if record.tile_px != encoder.tile_px() and record.optics is not None:
        raise ValueError(f"this measurement was acquired {_strategy(record.tile_px)}{by} but model {name} "
                         f"acquires {_strategy(encoder.tile_px())}; reconstruct with the model whose optics "
                         "recorded it")
    compression = int(encoder.config.detector.compression)
    if record.binning ** 2 != compression:
        raise ValueError(f"this measurement is x{record.binning ** 2} but model {name} is x{compression}; "
                         "reconstruct with the model whose optics recorded it")
    flat = bool(getattr(encoder.config.detector, "flat_field", False))
    if record.flat_field_corrected != flat:
        raise ValueError(f"this measurement is {'' if record.flat_field_corrected else 'not '}flat-field corrected "
                         f"but model {name} {'expects' if flat else 'does not expect'} it: "
                         + ("divide the camera image by the empty-field (flat) image of the same optics"
                            if flat else "reconstruct the raw camera image (not divided by the flat)"))
    if made_by and name and str(made_by) != str(name) and Path(str(made_by)).stem != Path(str(name)).stem:
        warnings.warn(f"this measurement was simulated with model {made_by}, but {name} reconstructs it: its "
                      "decoder was trained for its own learned optics, so the phase will be wrong unless both "
                      "models share the optics", stacklevel=3)


def _strategy(tile_px: int | None) -> str:
    return "as one full-field image" if tile_px is None else f"tile by tile through {tile_px}-px apertures"


@dataclass
class EvaluationReport:
    """Quality of a phase reconstruction in the paper's convention (φ/2π, data range 1, clipped).

    ``psnr_db``/``ssim``: full field (PSNR of the pooled error; mean of the SSIM map). ``patch_*``: mean
    over the 256² patches of a non-overlapping grid (the paper's "patch FoV" numbers, always higher).
    ``ssim_map`` is None when :func:`evaluate` was asked not to keep it. ``offset_rad``: the global phase
    offset removed from the prediction before scoring (``offset_aligned``); ``reference_convention``:
    how a complex reference was read (``"background"``: phase relative to its background,
    ``reference_background_rad``).
    """

    psnr_db: float
    ssim: float
    ssim_map: np.ndarray | None
    patch_psnr_db: float | None = None
    patch_ssim: float | None = None
    n_patches: int = 0
    patch_psnrs_db: list[float] = dc_field(default_factory=list)
    patch_ssims: list[float] = dc_field(default_factory=list)
    extra: dict = dc_field(default_factory=dict)
    offset_rad: float = 0.0
    offset_aligned: bool = False
    reference_convention: str = "background"
    reference_background_rad: float | None = None

    def as_dict(self) -> dict:
        return {"psnr_db": self.psnr_db, "ssim": self.ssim, "patch_psnr_db": self.patch_psnr_db,
                "patch_ssim": self.patch_ssim, "n_patches": self.n_patches,
                "offset_aligned": self.offset_aligned, "offset_rad": self.offset_rad,
                "reference_convention": self.reference_convention,
                "reference_background_rad": self.reference_background_rad, "alignment": self.alignment_note(),
                **self.extra}

    def alignment_note(self) -> str:
        if not self.offset_aligned:
            return "scored as given (no global phase offset removed)"
        return (f"scored after removing a global phase offset of {self.offset_rad:+.4f} rad (the median of "
                "phase − reference; unobservable by an intensity microscope)")


def evaluate(phase, reference, *, patch_px: int = 256, keep_ssim_map: bool = True, align_offset: bool = True,
             reference_convention: str = "background") -> EvaluationReport | list[EvaluationReport]:
    """Compare a phase map (radians) with a reference field (complex) or phase map (radians).

    Stacks (planes, rows, cols) of the same shape are compared plane by plane (one plane in memory at a
    time): a list of reports, one per plane.

    Computed block by block (numpy, dask or zarr inputs; memory bounded by the block unless the SSIM
    map is kept). NaN or infinite values in either are refused with their position.

    ``align_offset`` (default True): a global phase offset is unobservable by an intensity microscope,
    so the median of (phase − reference) is removed before scoring; the report gives it
    (``offset_rad``) and says it was aligned. ``reference_convention``: a complex reference is read as
    phase relative to its background (``"background"``, default: noise below 0 stays negative) or as
    φ mod 2π (``"absolute"``, the convention before issue 10). See docs/physics.md.
    """
    from .inference.evaluate import evaluate_field

    if len(np.shape(phase)) == 3 or len(np.shape(reference)) == 3:
        if tuple(np.shape(phase)) != tuple(np.shape(reference)):
            raise ValueError(f"a phase stack {tuple(np.shape(phase))} is compared plane by plane with a reference "
                             f"stack of the same shape; got {tuple(np.shape(reference))}")
        options = dict(patch_px=patch_px, keep_ssim_map=keep_ssim_map, align_offset=align_offset,
                       reference_convention=reference_convention)
        return [evaluate(p, r, **options) for (_, p), (_, r) in zip(_planes(phase), _planes(reference), strict=True)]
    q = evaluate_field(phase, reference, patch_px=patch_px, keep_ssim_map=keep_ssim_map,
                       align_offset=align_offset, reference_convention=reference_convention)
    return EvaluationReport(offset_rad=q.offset_rad, offset_aligned=q.offset_aligned,
                            reference_convention=q.reference_convention,
                            reference_background_rad=q.reference_background_rad,
        psnr_db=q.psnr_db, ssim=q.ssim, ssim_map=q.ssim_map,
        patch_psnr_db=float(np.mean(q.patch_psnrs_db)) if q.patch_psnrs_db else None,
        patch_ssim=float(np.mean(q.patch_ssims)) if q.patch_ssims else None, n_patches=len(q.patch_psnrs_db),
        patch_psnrs_db=q.patch_psnrs_db, patch_ssims=q.patch_ssims)


def evaluate_fluorescence(image, reference, *, keep_ssim_map: bool = True) -> EvaluationReport:
    """PSNR and SSIM of a fluorescence reconstruction against the true image, as the models are scored: the
    reference normalised to [0, 1] by its minimum and maximum (what ``simulate`` does), the reconstruction
    clipped to [0, 1], data range 1 (``ssim_map``: per pixel, mirrored at the edges)."""
    import torch

    from .metrics import psnr, ssim_map
    from .training.fluo_data import normalise_unit_range

    pred, ref = np.asarray(image, dtype=np.float32), np.asarray(reference, dtype=np.float32)
    if pred.ndim != 2 or pred.shape != ref.shape:
        raise ValueError(f"a fluorescence image and its reference must be 2-D of the same shape; got {pred.shape} "
                         f"and {ref.shape}: reconstruct on the reference's grid")
    for what, a in (("image", pred), ("reference", ref)):
        if not np.isfinite(a).all():
            raise ValueError(f"the {what} contains NaN or infinite values")
    x = torch.from_numpy(np.clip(pred, 0, 1))[None]
    y = torch.from_numpy(normalise_unit_range(ref))[None]
    smap = ssim_map(x, y)[0, 0].numpy()
    return EvaluationReport(psnr_db=float(psnr(x, y)[0]), ssim=float(smap.mean()),
                            ssim_map=smap if keep_ssim_map else None, offset_aligned=False,
                            reference_convention="fluorescence",
                            extra={"convention": "reference min-max normalised to [0, 1], image clipped to "
                                                 "[0, 1], data range 1"})


def evaluate_labels(prediction, truth, *, iou_threshold: float = 0.5) -> dict:
    """Instance segmentation scores of a label image against the true labels (0 = background): foreground
    ``dice`` and the one-to-one IoU-matched ``f1`` at ``iou_threshold`` with its precision, recall, tp, fp,
    fn and mean matched IoU (:mod:`napari_dmicro.segmentation_metrics`)."""
    from .segmentation_metrics import dice, matched_f1

    prediction, truth = np.asarray(prediction), np.asarray(truth)
    if prediction.shape != truth.shape:
        raise ValueError(f"the label image {prediction.shape} and the reference labels {truth.shape} must have the "
                         "same shape (segment on the reference's grid)")
    return {"dice": dice(prediction, truth), **matched_f1(prediction, truth, iou_threshold),
            "iou_threshold": float(iou_threshold), "n_predicted": int(len(np.unique(prediction[prediction > 0]))),
            "n_reference": int(len(np.unique(truth[truth > 0])))}


def ssim_map_lazy(phase, reference, *, chunk_px: int = 1024, align_offset: bool = True,
                  reference_convention: str = "background"):
    """The SSIM map of :func:`evaluate` as a dask array computed chunk by chunk (to stream it into a store)."""
    from .inference.evaluate import ssim_map_view

    return ssim_map_view(phase, reference, chunk_px=chunk_px, align_offset=align_offset,
                         reference_convention=reference_convention)
