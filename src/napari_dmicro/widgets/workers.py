"""The long tasks behind the widgets, as plain functions and generators (no Qt, no napari).

Each runs in a napari thread worker started by its widget; generators yield progress tuples
``("progress", done, total)`` or training events, and return the result. They call only the public
API (:mod:`napari_dmicro.api`), the reader and the :class:`~napari_dmicro.training.Trainer`, so the
same work can be scripted without a GUI.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np

UNTRAINED_LFF = "untrained LFF (random, seeded)"
COMPRESSIONS = (4, 16, 64, 256, 1024)


class TaskCancelled(Exception):
    """The user pressed Cancel; raised inside the computation at its next progress report."""


# ------------------------------------------------------------------------------------------ progress relay


def iterate_with_progress(fn: Callable, *args, cancel: threading.Event | None = None, poll_s: float = 0.05,
                          **kwargs):
    """Generator running ``fn(*args, progress=callback, **kwargs)``; yields its progress reports.

    ``fn`` calls ``progress(done, total)`` (or ``progress(fraction)``) from its loop. ``fn`` runs in a
    helper thread so that every report can be yielded at once as ``("progress", done, total)``;
    the generator returns ``fn``'s result (or re-raises its error). When ``cancel`` is set, the next
    report raises :class:`TaskCancelled` inside ``fn``.
    """
    q: queue.Queue = queue.Queue()
    result: dict = {}

    def callback(*values, **_):
        if cancel is not None and cancel.is_set():
            raise TaskCancelled("cancelled")
        q.put(("progress", *values))

    def target():
        try:
            result["value"] = fn(*args, progress=callback, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the worker thread below
            result["error"] = exc
        finally:
            q.put(("end",))

    thread = threading.Thread(target=target, daemon=True, name=f"dmicro-{getattr(fn, '__name__', 'task')}")
    thread.start()
    while True:
        try:
            item = q.get(timeout=poll_s)
        except queue.Empty:
            continue
        if item[0] == "end":
            break
        yield progress_tuple(item[1:])
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def progress_tuple(values: tuple) -> tuple:
    """Normalise progress callback arguments to ``("progress", done, total)``."""
    if len(values) == 1 and isinstance(values[0], dict):
        d = values[0]
        return ("progress", float(d.get("done", d.get("step", 0))), float(d.get("total", 0)))
    numbers = [v for v in values if isinstance(v, (int, float, np.integer, np.floating))
               and not isinstance(v, bool)]
    if len(numbers) >= 2:
        return ("progress", float(numbers[0]), float(numbers[1]))
    if len(numbers) == 1:
        return ("progress", float(numbers[0]), 1.0)
    return ("progress", 0.0, 0.0)


# ------------------------------------------------------------------------------------------ load


def load_layers(path, *, as_measurement: bool = False, camera_pixel_size_um: float | None = None,
                wavelength_um: float | None = None, pixel_size_um: float | None = None) -> list:
    """napari layer data of a file: a field/measurement/phase store, or a raw camera image.

    A field whose file records no pixel size or wavelength needs ``pixel_size_um`` / ``wavelength_um``
    (``dm.simulate``'s rule, :func:`napari_dmicro.api.field_sampling`: never guessed, a value that
    contradicts the file is refused); the layers carry the values in use (``attrs["sampling_given"]``
    lists those that were entered). ``as_measurement``: the file is a detector image from a lab
    acquisition (real 2-D array in .npy, .npz, .tif or .png, or a napari-dmicro measurement store);
    ``camera_pixel_size_um`` is the camera pixel pitch referred to the object plane (object pixel ×
    binning) and ``wavelength_um`` its wavelength, both required for a raw image.
    """
    from .. import api
    from .._reader import image_layers, napari_get_reader
    from ..io.camera_images import read_camera_image
    from ..io.fields import ImageData, display_levels, read_image

    p = Path(str(path).rstrip("/\\"))
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if not as_measurement:
        if napari_get_reader(str(p)) is None:
            raise ValueError(f"{p.name} is not a field, measurement or phase file napari-dmicro can read "
                             "(a .zarr store, a complex .npy or a .npz); for a raw camera image choose "
                             "'detector measurement', for a hologram or a phase image use the Import widget")
        img = read_image(p)
        if img.kind == "field":
            img = _with_sampling(img, pixel_size_um or None, wavelength_um or None, api.field_sampling)
        return image_layers(img, name=_stem(p), source=str(p), pyramid=display_levels(p))
    try:  # one of our measurement stores keeps its own sampling and provenance
        img = read_image(p)
        if img.kind == "measurement":
            return image_layers(img, name=_stem(p), source=str(p))
    except Exception:  # noqa: BLE001 - fall through to the raw readers
        pass
    data = read_camera_image(p)
    if camera_pixel_size_um is None or not camera_pixel_size_um > 0:
        raise ValueError(f"{p.name} records no pixel size: enter the camera pixel pitch (µm, referred to the "
                         "object plane = object pixel × binning) — it is never guessed")
    if wavelength_um is None or not wavelength_um > 0:
        raise ValueError(f"{p.name} records no wavelength: enter it (µm) — it is never guessed")
    img = ImageData(data, "measurement", float(camera_pixel_size_um), float(wavelength_um),
                    {"source": str(p), "acquisition": "detector image (lab acquisition)",
                     "sampling_given": ["pixel_size_um", "wavelength_um"]})
    return image_layers(img, name=_stem(p), source=str(p))


def _with_sampling(img, pixel_size_um, wavelength_um, resolve):
    """``img`` with the sampling :func:`napari_dmicro.api.field_sampling` resolves (entered values fill what
    the file does not record); the message names the widget's boxes."""
    from dataclasses import replace

    missing = set(img.attrs.get("defaults_used", ()))
    try:
        _, ps, wl = resolve(img, pixel_size_um, wavelength_um)
    except ValueError as exc:
        raise ValueError(str(exc).replace("give pixel_size_um=… (µm; dmicro: --pixel-size-um)",
                                          "enter the pixel size (µm)")
                         .replace("give wavelength_um=… (µm; dmicro: --wavelength-um)", "enter the wavelength (µm)")
                         ) from None
    attrs = {k: v for k, v in img.attrs.items() if k != "defaults_used"}
    given = sorted(missing & {"pixel_size_um", "wavelength_um"})
    if given:
        attrs["sampling_given"] = given
    return replace(img, pixel_size_um=ps, wavelength_um=wl, attrs=attrs)


def _stem(p: Path) -> str:
    return p.name[: -len(p.suffix)] if p.suffix else p.name


# ------------------------------------------------------------------------------------------ import

IMPORT_MODES = ("hologram", "phase_amplitude", "complex")


@dataclass
class ImportRequest:
    """An acquisition to turn into a field (the widget's settings; ``dmicro import``'s options)."""

    path: str
    mode: str  # one of IMPORT_MODES
    pixel_size_um: float | None
    wavelength_um: float | None
    background: str | None = None  # reference hologram (mode "hologram"); an .npz with bg_data brings its own
    amplitude: str | None = None  # amplitude image (mode "phase_amplitude"); None = 1
    filter_size: float = 0.5
    correction: str | None = "tilt"
    output: str | None = None  # write the field store here (None: layers only)
    overwrite: bool = False

    def check(self) -> ImportRequest:
        """The request, or ValueError naming what is missing (the sampling is never guessed)."""
        if self.mode not in IMPORT_MODES:
            raise ValueError(f"import mode {self.mode!r}: one of {IMPORT_MODES}")
        for value, what in ((self.pixel_size_um, "pixel size"), (self.wavelength_um, "wavelength")):
            if not value or not value > 0:
                raise ValueError(f"enter the {what} (µm) of the acquisition: it is never guessed")
        return self


def import_task(req: ImportRequest, cancel: threading.Event | None = None):
    """Generator: status tuples, then returns ``(ImageData field, written store path or None)``; ``cancel``
    stops it between steps (:class:`TaskCancelled`)."""
    from .. import api
    from ..holography import field_from_phase_amplitude_files, read_hologram_files
    from ..io.fields import ImageData, read_field, write_field

    req.check()
    name = Path(req.path).name
    if req.mode == "hologram":
        yield ("status", f"reading the hologram {name}")
        hologram, background, bg_name = read_hologram_files(req.path, req.background)
        if cancel is not None and cancel.is_set():
            raise TaskCancelled("cancelled")
        yield ("status", "retrieving the field (sideband, filter" + (", reference division" if bg_name else "") + ")")
        result = api.field_from_hologram(hologram, pixel_size_um=req.pixel_size_um, wavelength_um=req.wavelength_um,
                                         background=background, filter_size=req.filter_size,
                                         correct_background=req.correction)
        field = result.field
        attrs = {**result.record.to_attrs(), "hologram_background_file": bg_name}
    elif req.mode == "phase_amplitude":
        yield ("status", f"reading the phase image {name}")
        field = field_from_phase_amplitude_files(req.path, req.amplitude)
        attrs = {"source_kind": "phase and amplitude images", "source_amplitude": req.amplitude}
    else:
        yield ("status", f"reading the complex array {name}")
        field = np.asarray(read_field(req.path).data)
        attrs = {"source_kind": "complex array"}
    attrs = {**attrs, "source": str(req.path), "sampling_given": ["pixel_size_um", "wavelength_um"]}
    img = ImageData(field, "field", float(req.pixel_size_um), float(req.wavelength_um), attrs)
    written = None
    if req.output:
        if cancel is not None and cancel.is_set():
            raise TaskCancelled("cancelled")
        yield ("status", f"writing {Path(req.output).name}")
        written = write_field(req.output, field, pixel_size_um=img.pixel_size_um, wavelength_um=img.wavelength_um,
                              attrs=attrs, overwrite=req.overwrite)
    return img, written


# ------------------------------------------------------------------------------------------ simulate


@dataclass
class SimulateRequest:
    field: Any  # complex 2-D array (numpy or dask)
    pixel_size_um: float
    wavelength_um: float
    model: str  # a model source (shipped name or checkpoint path) or UNTRAINED_LFF
    model_label: str
    compression: int = 64
    photons: float | None = None
    read_noise: float = 0.0
    seed: int = 0
    device: str = "cpu"
    stack_axis: str = "t"  # a (planes, rows, cols) field: time-lapse "t" or positions "p"


@dataclass
class SimulateResult:
    measurement: Any  # napari_dmicro.Measurement
    camera_pixel_size_um: float
    object_pixel_size_um: float
    binning: int
    model_label: str
    attrs: dict = dc_field(default_factory=dict)
    #: (row0, col0, rows, cols) of the given field on the model's grid when it was resampled/padded there
    specimen_region: tuple | None = None
    #: the given field's pixel size (µm) when it was resampled to the model's grid
    source_pixel_size_um: float | None = None

    def camera_translate(self, field_translate) -> tuple[float, float]:
        """World position (µm) of camera pixel (0, 0)'s centre for a field layer whose pixel (0, 0) is centred at
        ``field_translate``. Resampling keeps the field's outer edge; the model-grid field starts
        ``specimen_region``'s offset (model pixels) before it; camera pixel (i, j) integrates object pixels
        [i·b, (i+1)·b), so its centre sits b/2 object pixels from its edge."""
        r0, c0 = self.specimen_region[:2] if self.specimen_region else (0, 0)
        ps, b = self.object_pixel_size_um, self.binning
        ps_field = self.source_pixel_size_um or ps
        return tuple(float(t) - ps_field / 2 + (b / 2 - k) * ps
                     for t, k in zip(field_translate[-2:], (r0, c0), strict=True))


def simulate_task(req: SimulateRequest, cancel: threading.Event | None = None):
    """Generator: progress tuples, then returns a :class:`SimulateResult`."""
    from .. import api

    yield ("status", "loading the model")
    if req.model == UNTRAINED_LFF:  # random optics on the field's own grid
        model = api.untrained_model("lff", compression=req.compression, pixel_size_um=req.pixel_size_um,
                                    wavelength_um=req.wavelength_um, seed=req.seed)
    else:
        model = api.load_model(req.model, device="cpu")
    field = np.asarray(req.field)
    yield ("status", "simulating the camera image" + (f"s of {field.shape[0]} planes" if field.ndim == 3 else ""))
    meas = yield from iterate_with_progress(api.simulate, field, model, photons=req.photons,
                                            read_noise=req.read_noise, seed=req.seed, device=req.device,
                                            pixel_size_um=req.pixel_size_um, wavelength_um=req.wavelength_um,
                                            stack_axis=req.stack_axis, cancel=cancel)
    record = meas.records[0] if hasattr(meas, "records") else meas.record
    attrs = {**meas.to_attrs(), "model": req.model_label, "model_source": req.model}
    return SimulateResult(meas, record.camera_pixel_size_um, record.object_pixel_size_um, record.binning,
                          req.model_label, attrs, tuple(record.specimen_region) if record.specimen_region else None,
                          record.source_pixel_size_um)


@dataclass
class FluorescenceSimulateRequest:
    """A fluorescence image through a fluorescence model's binary patterns (``dm.simulate``)."""

    image: Any  # real 2-D array
    pixel_size_um: float
    model: str  # a model source (shipped name or checkpoint path)
    model_label: str
    photons: float | None = None  # photons per specimen pixel of density 1 under one full pattern
    read_noise: float = 0.0
    seed: int = 0
    device: str = "cpu"
    pattern_periods: int = 4  # the patterns layer shows this many periods per side


@dataclass
class FluorescenceSimulateResult:
    measurement: np.ndarray  # (T, h, w)
    attrs: dict
    patterns: np.ndarray  # (T, P·n, P·n) binary mirror states, tiled
    pixel_size_um: float  # specimen
    camera_pixel_size_um: float
    bin_px: int
    model_label: str


def simulate_fluorescence_task(req: FluorescenceSimulateRequest, cancel: threading.Event | None = None):
    """Generator: status tuples, then returns a :class:`FluorescenceSimulateResult`."""
    from .. import api

    yield ("status", "loading the model")
    model = api.load_model(req.model, device="cpu")
    if cancel is not None and cancel.is_set():
        raise TaskCancelled("cancelled")
    yield ("status", "simulating the patterned measurement")
    meas = api.simulate(np.asarray(req.image, dtype=np.float32), model, photons=req.photons,
                        read_noise=req.read_noise, seed=req.seed, device=req.device,
                        pixel_size_um=req.pixel_size_um)
    attrs = {**meas.attrs, "model": req.model_label, "model_source": req.model}
    return FluorescenceSimulateResult(meas.data, attrs, api.illumination_patterns(model, req.pattern_periods),
                                      float(meas.attrs["pixel_size_um"]), float(meas.attrs["camera_pixel_size_um"]),
                                      int(meas.attrs["bin_px"]), req.model_label)


# ------------------------------------------------------------------------------------------ reconstruct


@dataclass
class ReconstructResult:
    phase: np.ndarray
    pixel_size_um: float
    wavelength_um: float
    binning: int
    model_label: str
    summary: str
    device: str
    overlap: int | None
    seconds: float


def reconstruct_task(meas: np.ndarray, attrs: dict, model_source: str, model_label: str, *, summary: str = "",
                     overlap: int | None = None, device: str = "cpu", cancel: threading.Event | None = None,
                     camera_pixel_size_um: float | None = None):
    """Generator: progress tuples, then returns a :class:`ReconstructResult`.

    ``attrs``: the layer's acquisition record, if any (checked against the model and the image);
    ``camera_pixel_size_um``: the layer's pixel pitch, refused by the API when it is not the model's."""
    from .. import api
    from ..device import resolve_device

    dev = str(resolve_device(device))
    yield ("status", f"loading {model_label} on {dev}")
    model = api.load_model(model_source, device=dev)
    m = measurement_of(meas, attrs)
    yield ("status", "reconstructing")
    t0 = time.perf_counter()
    phase = yield from iterate_with_progress(api.reconstruct, m, model, overlap=overlap, device=dev,
                                             pixel_size_um=camera_pixel_size_um, cancel=cancel)
    ps, wl = api.reconstruction_grid(m, model)  # the field's own grid when simulate resampled it
    return ReconstructResult(np.asarray(phase, dtype=np.float32), ps, wl, int(model.config.encoder.detector.binning),
                             model_label, summary, dev, overlap, time.perf_counter() - t0)


@dataclass
class FluorescenceReconstructResult:
    image: np.ndarray  # [0, 1] on the input image's grid
    labels: np.ndarray | None  # instance labels of a task-aware model
    pixel_size_um: float
    model_label: str
    summary: str
    device: str
    seconds: float


def reconstruct_fluorescence_task(meas: np.ndarray, attrs: dict, model_source: str, model_label: str, *,
                                  summary: str = "", device: str = "cpu", cancel: threading.Event | None = None):
    """Generator: status tuples, then returns a :class:`FluorescenceReconstructResult` (``dm.reconstruct``, and
    ``dm.segment`` for a task-aware model). ``attrs``: the layer's acquisition record, checked against the
    model (a bare (T, h, w) array is checked for its pattern count only)."""
    from .. import api
    from ..device import resolve_device
    from ..inference.fluorescence import FluorescenceMeasurement, input_pixel_size_um

    dev = str(resolve_device(device))
    yield ("status", f"loading {model_label} on {dev}")
    model = api.load_model(model_source, device=dev)
    data = np.asarray(meas, dtype=np.float32)
    m = FluorescenceMeasurement(data, dict(attrs)) if (attrs or {}).get("modality") == "fluorescence" else data
    yield ("status", "reconstructing")
    t0 = time.perf_counter()
    image = api.reconstruct(m, model, device=dev)
    labels = None
    if model.has_seg_head:
        if cancel is not None and cancel.is_set():
            raise TaskCancelled("cancelled")
        yield ("status", "segmenting")
        labels = api.segment(m, model, device=dev)
    pixel_size_um = input_pixel_size_um(attrs) if attrs else float(model.encoder.pixel_size_um)
    return FluorescenceReconstructResult(np.asarray(image, np.float32), labels, pixel_size_um,
                                         model_label, summary, dev, time.perf_counter() - t0)


def measurement_of(image, attrs: dict):
    """A :class:`~napari_dmicro.measurement.Measurement` (2-D) or
    :class:`~napari_dmicro.measurement.MeasurementStack` (3-D with a stack's attributes) of a layer's data
    and acquisition record, else the bare image."""
    from ..measurement import MeasurementStack, as_measurement, stack_records

    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 3:
        records = stack_records(attrs, data.shape[0]) if attrs else None
        return MeasurementStack(data, records, attrs.get("stack_axis") or "t") if records else data
    return as_measurement(data, attrs)


# ------------------------------------------------------------------------------------------ compare


def evaluate_fluorescence_task(reference: np.ndarray, candidates: list[tuple[str, Any]], masks: bool = False):
    """Generator: ``("progress", k, n)`` per candidate; returns [(name, report, None)]: an EvaluationReport of
    ``dm.evaluate_fluorescence`` for images, the dict of ``dm.evaluate_labels`` (Dice, F1 at IoU 0.5) when
    ``masks``."""
    from .. import api

    out = []
    for k, (name, data) in enumerate(candidates):
        yield ("progress", float(k), float(len(candidates)))
        if masks:
            out.append((name, api.evaluate_labels(np.asarray(data), np.asarray(reference)), None))
        else:
            out.append((name, api.evaluate_fluorescence(data, reference), None))
    yield ("progress", float(len(candidates)), float(len(candidates)))
    return out


def evaluate_task(reference: np.ndarray, candidates: list[tuple[str, Any]], region=None):
    """Generator: ``("progress", k, n)`` per reconstruction; returns [(name, EvaluationReport, region report or
    None)]. ``region``: a boolean mask on the reference's grid, or ``"cell"`` (:func:`napari_dmicro.regions.cell_mask`
    of the background-referenced reference); scored by :func:`napari_dmicro.regions.evaluate_region`."""
    from .. import api
    from ..regions import cell_mask, evaluate_region

    out = []
    ref = np.asarray(reference, dtype=np.float32)
    mask = cell_mask(ref) if isinstance(region, str) and region == "cell" else region
    for k, (name, data) in enumerate(candidates):
        yield ("progress", float(k), float(len(candidates)))
        phase = np.asarray(data, dtype=np.float32)
        out.append((name, api.evaluate(phase, ref),
                    evaluate_region(phase, ref, mask) if mask is not None else None))
    yield ("progress", float(len(candidates)), float(len(candidates)))
    return out


def line_profile(data, start_rc: np.ndarray, end_rc: np.ndarray, n: int | None = None,
                 wrap_2pi: bool = False) -> np.ndarray:
    """Values of a 2-D array along a segment (data coordinates, row/col), bilinear; NaN outside.

    Only the bounding box of the segment is read, so lazy (dask/zarr) arrays stay cheap.
    ``wrap_2pi``: take the values modulo 2π before interpolating (a field's phase in (−π, π]).
    """
    from scipy.ndimage import map_coordinates

    start_rc, end_rc = np.asarray(start_rc, float), np.asarray(end_rc, float)
    length = float(np.hypot(*(end_rc - start_rc)))
    n = n or max(int(math.ceil(length)) + 1, 2)
    t = np.linspace(0.0, 1.0, n)
    coords = start_rc[:, None] + (end_rc - start_rc)[:, None] * t[None, :]
    rows, cols = data.shape[-2:]
    r0 = int(max(math.floor(coords[0].min()) - 1, 0))
    r1 = int(min(math.ceil(coords[0].max()) + 2, rows))
    c0 = int(max(math.floor(coords[1].min()) - 1, 0))
    c1 = int(min(math.ceil(coords[1].max()) + 2, cols))
    if r1 <= r0 or c1 <= c0:
        return np.full(n, np.nan, np.float32)
    block = np.asarray(data[r0:r1, c0:c1], dtype=np.float32)
    if wrap_2pi:
        block = np.mod(block, 2 * np.pi)
    local = coords - np.array([[r0], [c0]], float)
    values = map_coordinates(block, local, order=1, mode="nearest")
    inside = (coords[0] >= -0.5) & (coords[0] <= rows - 0.5) & (coords[1] >= -0.5) & (coords[1] <= cols - 0.5)
    return np.where(inside, values, np.nan).astype(np.float32)


# ------------------------------------------------------------------------------------------ train


def write_training_fields(fields: list[tuple[str, Any, float, float]], folder) -> Path:
    """Write (name, complex field, pixel_size_um, wavelength_um) as ``.npz`` files the Trainer reads."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for k, (name, data, ps, wl) in enumerate(fields):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "field"
        stem = f"{k:03d}_{safe}"[:80]
        while stem in used:
            stem += "_"
        used.add(stem)
        np.savez(folder / f"{stem}.npz", field=np.asarray(data).astype(np.complex64),
                 pixel_size_um=np.float64(ps), wavelength_um=np.float64(wl))
    return folder


@dataclass
class TrainUpdate:
    """A training event plus what the widget needs to draw it."""

    event: Any  # TrainEvent (it carries the epoch counts)
    cancel_requested: bool = False  # Cancel had been pressed when the trainer produced this event


def train_task(config, data_dir, out_dir, *, cancel: threading.Event, resume: bool = False,
               layer_fields: list | None = None, command: str | None = None):
    """Generator of :class:`TrainUpdate`; returns the path of the best model (or None).

    ``layer_fields``: fields from layers, written to ``data_dir`` first (see :func:`write_training_fields`).
    """
    from ..training import Trainer

    if layer_fields:
        write_training_fields(layer_fields, data_dir)
    trainer = Trainer(config, data_dir, out_dir, resume=resume, cancel=cancel, command=command)
    best = None
    for event in trainer.run():
        if event.kind in ("done", "cancelled", "test") and event.path:
            best = event.path if Path(event.path).exists() else best
        yield TrainUpdate(event, cancel.is_set())
    return best
