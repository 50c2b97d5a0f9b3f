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


def reconstruct_file(model, job: ReconstructionJob, *, model_name: str | None = None, overlap: int | None = None,
                     device: str = "cpu", client=None, progress: Callable[[int, int], None] | None = None,
                     overwrite: bool = False, overwrite_foreign: bool = False) -> dict:
    """Reconstruct ``job.measurement`` with ``model`` into the phase store ``job.output`` (radians, with
    the model's grid and provenance); returns the attributes written (``shape``, ``seconds``, ...).

    A measurement without a recorded pixel size (a bare lab image) is reconstructed as a camera image
    of the model, with a warning. ``client``: reconstruct this one image in row blocks on a cluster.
    """
    import dask.array as da
    import numpy as np

    from . import api
    from .io.fields import read_measurement, write_phase
    from .io.stream import scratch_array
    from .measurement import as_measurement

    name = model_name or getattr(model, "name", None)
    image = read_measurement(job.measurement)
    enc = model.config.encoder
    bare = "pixel_size_um" in image.attrs.get("defaults_used", ())  # a bare lab image: pitch not recorded
    if bare:
        warnings.warn(f"{job.measurement} does not record its pixel size; reconstructing it as a camera image "
                      f"of model {name} ({enc.optics.grid.pixel_size_um * enc.detector.binning:.4g} µm "
                      f"camera pixels, x{enc.detector.compression})", stacklevel=2)
    meas = as_measurement(np.asarray(image.data), image.attrs)
    shape = api.reconstruction_shape(meas, model)
    start = time.perf_counter()
    with scratch_array(job.output, shape) as scratch:  # streamed band by band: memory of one band
        api.reconstruct(meas, model, overlap=overlap, device=device,
                        pixel_size_um=None if bare else image.pixel_size_um, progress=progress, out=scratch,
                        client=client)
        elapsed = time.perf_counter() - start
        attrs = {"model": name, "model_file": model.source, "overlap_px": overlap,
                 "device": device, "source_measurement": str(job.measurement),
                 "compression": enc.detector.compression, "optics": enc.optics.kind,
                 "acquisition": image.attrs.get("acquisition"), "seconds": round(elapsed, 3)}
        if client is not None:
            attrs["distributed_workers"] = len(client.scheduler_info().get("workers", {}))
        write_phase(job.output, da.from_zarr(scratch), pixel_size_um=enc.optics.grid.pixel_size_um,
                    wavelength_um=enc.optics.grid.wavelength_um, attrs=attrs, overwrite=overwrite,
                    overwrite_foreign=overwrite_foreign)
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
