"""Files in, files out: one reconstruction from a measurement file to a phase store, and a batch of them
(one process, or one job per task on a dask.distributed cluster; docs/scale-out.md).

``dmicro reconstruct`` is :func:`reconstruct_file`; a batch is a list of ``(measurement, output)`` jobs
given to :func:`reconstruct_files` (a folder or a stack becomes such a list).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["ReconstructionJob", "reconstruct_file", "reconstruct_files"]


@dataclass(frozen=True)
class ReconstructionJob:
    """A measurement file and the phase store to write from it."""

    measurement: str
    output: str


def stack_axis_of(image, requested: str | None, source) -> str | None:
    """The leading axis of a 3-D input: the one it names, else ``requested``, else ``t`` (None for 2-D)."""
    if image.data.ndim != 3:
        return None
    named = image.attrs.get("stack_axis")
    if named and requested and named != requested:
        raise ValueError(f"{source} is a stack along '{named}' but --stack-axis {requested} was given; drop the "
                         "flag")
    return named or requested or "t"


def reconstruct_file(model, job: ReconstructionJob, *, model_name: str | None = None, overlap: int | None = None,
                     device: str = "cpu", client=None, progress: Callable[[int, int], None] | None = None,
                     overwrite: bool = False, overwrite_foreign: bool = False, pixel_size_um: float | None = None,
                     stack_axis: str | None = None, image=None, announce: Callable[[str], None] | None = None) -> dict:
    """Reconstruct ``job.measurement`` with ``model`` into the phase store ``job.output`` (radians, on the
    field's own grid and wavelength when the measurement records them, with provenance); returns the
    attributes written (``shape``, ``seconds``, ...).

    A measurement without a recorded pixel size (a bare lab image) is reconstructed as a camera image of
    the model, with a warning, unless ``pixel_size_um`` (its camera pitch at the sample) is given, which is
    then checked; a recorded pitch that contradicts ``pixel_size_um`` is refused. A 3-D input is a stack
    (``stack_axis``: its leading axis when the file does not name it) reconstructed plane by plane.
    ``client``: reconstruct in row blocks on a dask cluster. ``image``: the measurement already read.
    ``announce(text)``: told the scales in use before the work starts.
    """
    import dask.array as da
    import numpy as np

    from . import api
    from .io.fields import read_measurement, write_phase
    from .io.stream import scratch_array
    from .measurement import MeasurementStack, as_measurement, stack_records

    source = job.measurement
    name = model_name or getattr(model, "name", None)
    image = read_measurement(source) if image is None else image
    enc = model.config.encoder
    camera_um = enc.optics.grid.pixel_size_um * enc.detector.binning
    bare = "pixel_size_um" in image.attrs.get("defaults_used", ())  # a bare lab image: pitch not recorded
    if bare and pixel_size_um is None:
        warnings.warn(f"{source} does not record its pixel size; reconstructing it as a camera image of model "
                      f"{name} ({camera_um:.4g} µm camera pixels, x{enc.detector.compression}); give "
                      "--pixel-size-um (camera pitch at the sample) to have it checked", stacklevel=2)
    elif not bare and pixel_size_um is not None and not np.isclose(pixel_size_um, image.pixel_size_um, rtol=1e-6):
        raise ValueError(f"{source} records {image.pixel_size_um:g} µm camera pixels but --pixel-size-um "
                         f"{pixel_size_um:g} was given; drop the flag or fix the file's metadata")
    pitch = pixel_size_um if bare else image.pixel_size_um
    stack = image.data.ndim == 3
    axis = stack_axis_of(image, stack_axis, source)
    if stack:
        records = stack_records(image.attrs, int(image.data.shape[0]))
        meas = MeasurementStack(image.data, records, axis) if records else image.data
    else:
        meas = as_measurement(np.asarray(image.data), image.attrs)
    shape = api.reconstruction_shape(meas, model)
    ps_out, wl_out = api.reconstruction_grid(meas, model)
    plane = meas[0] if isinstance(meas, MeasurementStack) else meas
    note = ""
    if getattr(plane, "record", None) is not None and plane.record.source_field_shape is not None:
        note = f"; back to the field's grid ({plane.record.provenance.get('grid_adaptation', 'recorded')})"
    if announce is not None:
        announce(f"{source}: camera pixels {'unknown' if pitch is None else f'{pitch:g} µm'}; phase written at "
                 f"{ps_out:g} µm, λ {wl_out:g} µm{note}")
    start = time.perf_counter()
    with scratch_array(job.output, shape) as scratch:  # streamed band by band (plane by plane): memory of one band
        api.reconstruct(meas, model, overlap=overlap, device=device, pixel_size_um=pitch, progress=progress,
                        out=scratch, client=client)
        elapsed = time.perf_counter() - start
        attrs = {"model": name, "model_file": model.source, "overlap_px": overlap,
                 "device": device, "source_measurement": str(source),
                 "compression": enc.detector.compression, "optics": enc.optics.kind,
                 "acquisition": image.attrs.get("acquisition"), "seconds": round(elapsed, 3)}
        if note:
            attrs["grid_adaptation"] = plane.record.provenance.get("grid_adaptation")
        if client is not None:
            attrs["distributed_workers"] = len(client.scheduler_info().get("workers", {}))
        write_phase(job.output, da.from_zarr(scratch), pixel_size_um=ps_out, wavelength_um=wl_out, attrs=attrs,
                    stack_axis=axis if stack else None, overwrite=overwrite, overwrite_foreign=overwrite_foreign)
    return {**attrs, "shape": list(shape)}


def reconstruct_files(jobs: Iterable, model, *, client=None, model_name: str | None = None,
                      overlap: int | None = None, device: str = "cpu",
                      progress: Callable[[int, int], None] | None = None, overwrite: bool = False,
                      overwrite_foreign: bool = False) -> list[dict]:
    """:func:`reconstruct_file` for every ``(measurement, output)`` job, in order; returns what each wrote.

    Without ``client`` the jobs run one after the other here; with one, one job per task on its workers
    (each worker loads the checkpoint once; the files must be on a filesystem the workers see).
    ``progress(done, total)`` counts finished jobs.
    """
    jobs = [j if isinstance(j, ReconstructionJob) else ReconstructionJob(str(j[0]), str(j[1])) for j in jobs]
    options = {"model_name": model_name, "overlap": overlap, "device": device, "overwrite": overwrite,
               "overwrite_foreign": overwrite_foreign}
    if client is None:
        results = []
        for done, job in enumerate(jobs, start=1):
            results.append(reconstruct_file(model, job, **options))
            if progress is not None:
                progress(done, len(jobs))
        return results
    from .inference.distributed import map_jobs

    return map_jobs(client, reconstruct_file, jobs, model, model_device=device, progress=progress, **options)
