"""Reconstruction on a dask.distributed cluster: a large mosaic block by block, a batch one job per task.

* What a worker receives: a :class:`ModelRef` — the checkpoint's shipped name or path and its SHA-256,
  never the weights — and, per block, the camera rows that block needs (its own rows and the halo of
  the decoder windows that reach into it; :func:`~.reconstruct.camera_rows_needed`). A worker process
  loads each checkpoint once with the package's safetensors loader (:func:`napari_dmicro.api.load_model`)
  and keeps it (a cache keyed by checkpoint, digest and device), refusing a file whose digest differs
  from the client's (another version of the model at the same path).
* A mosaic is cut into bands of whole output rows; each band is computed on a worker from exactly the
  windows (or PhaseD2NN tiles) that touch it, with the same weights as the one-process reconstruction,
  and comes back to the client, which writes it into the output (a zarr array: whole chunk rows) as it
  arrives. Neighbouring bands decode the windows of their shared halo twice (the price of
  independence); the result equals the one-process reconstruction to float rounding.
* A batch (:func:`map_jobs`) runs a function of (model, job) on the workers, one task per job (a file,
  a plane of a stack, ...), each with its worker's cached model; the jobs read and write their own
  files (a filesystem the workers share with the client, as on one machine).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .reconstruct import CameraRows, camera_rows_needed, reconstruct_full_field

__all__ = ["ModelRef", "cluster_client", "reconstruct_on_cluster", "map_jobs", "block_rows_for",
           "worker_model_loads"]

#: output rows of a block when the output is not chunked (numpy)
DEFAULT_BLOCK_ROWS = 1024
#: a block spans at least this many decoder bands, so the halo decoded twice stays a small fraction
MIN_BANDS_PER_BLOCK = 4


# ------------------------------------------------------------------------------------------ clusters
@contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None,
                   threads_per_worker: int = 1) -> Iterator[object | None]:
    """A ``distributed.Client`` for the duration of the block, or None (one process) if neither is given.

    ``scheduler``: ``"tcp://HOST:PORT"`` of a running scheduler (its workers are used as they are), or
    ``"local"``; ``workers``: the number of worker processes of a local cluster (``"local"`` without
    it: one per core). A local cluster listens on 127.0.0.1 only, has no dashboard, and is closed on
    exit; an existing cluster is left running (only the connection is closed).
    """
    if scheduler is None and workers is None:
        yield None
        return
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers={workers} must be >= 1 (worker processes of a local cluster)")
    from distributed import Client, LocalCluster

    if scheduler not in (None, "local"):
        if workers is not None:
            raise ValueError(f"workers={workers} starts a local cluster; with scheduler {scheduler} the "
                             "cluster's own workers are used (give one or the other)")
        if "://" not in str(scheduler):
            raise ValueError(f"scheduler {scheduler!r}: give tcp://HOST:PORT of a running dask scheduler or "
                             "'local' for a cluster on this machine")
        with Client(str(scheduler)) as client:
            yield client
        return
    kwargs = {} if workers is None else {"n_workers": int(workers)}
    with LocalCluster(threads_per_worker=int(threads_per_worker), processes=True, host="127.0.0.1",
                      dashboard_address=None, **kwargs) as cluster, Client(cluster) as client:
        yield client


# ------------------------------------------------------------------------------------------ models
_MODELS: dict[tuple[str, str, str], object] = {}
_LOADS: dict[tuple[str, str, str], int] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelRef:
    """What identifies a model on a worker: a shipped model name or a checkpoint path the workers can
    read, the file's SHA-256, and the device to load it on."""

    source: str
    sha256: str
    device: str = "cpu"

    @classmethod
    def of(cls, model, device: str = "cpu") -> ModelRef:
        """The reference of a model loaded from a file (:func:`napari_dmicro.api.load_model`)."""
        from ..io.safetensors_header import file_sha256
        from ..pretrained import shipped_models

        source = getattr(model, "source", None)
        if source is None or not Path(source).is_file():
            raise ValueError("this model exists only in memory, so the workers cannot load it; save it "
                             "(napari_dmicro.io.checkpoints.save_checkpoint) and pass the checkpoint file")
        path = Path(source).resolve()
        name = str(getattr(model, "name", "") or "")
        shipped = shipped_models().get(name)
        ref = name if shipped is not None and Path(shipped).resolve() == path else str(path)
        digest = getattr(model, "sha256", None) or file_sha256(path)  # the file as it was loaded
        return cls(ref, digest, str(device))

    def load(self):
        """The model on this process (loaded once, then cached); refuses a file of another digest."""
        from ..api import load_model
        from ..io.safetensors_header import file_sha256
        from ..pretrained import resolve_model

        key = (self.source, self.sha256, self.device)
        with _LOCK:
            model = _MODELS.get(key)
            if model is None:
                path = resolve_model(self.source)
                found = file_sha256(path)
                if found != self.sha256:
                    raise ValueError(f"the checkpoint {path} on this worker differs from the client's "
                                     f"(sha256 {found[:12]}, expected {self.sha256[:12]}); give the workers the "
                                     "same file")
                model = load_model(path, device=self.device)
                _MODELS[key] = model
                _LOADS[key] = _LOADS.get(key, 0) + 1
        return model


def worker_model_loads() -> dict[str, int]:
    """How many times this process loaded each model (``source@sha256[:12]`` → count); run it on the
    workers with ``client.run(worker_model_loads)``."""
    with _LOCK:
        return {f"{source}@{digest[:12]}": n for (source, digest, _), n in _LOADS.items()}


# ------------------------------------------------------------------------------------------ mosaics
def block_rows_for(model, out_chunks, requested: int | None = None) -> int:
    """Output rows of one block: ``requested``, else whole chunk rows of the output spanning at least
    :data:`MIN_BANDS_PER_BLOCK` decoder bands (tiled optics: whole tile rows)."""
    b = int(model.config.encoder.detector.binning)
    tile_px = model.encoder.tile_px()
    if requested is not None:
        rows = int(requested)
        if rows < 1:
            raise ValueError(f"block_rows={requested} must be >= 1")
        if tile_px is not None and rows % int(tile_px):
            raise ValueError(f"block_rows={requested} must be a multiple of the {tile_px}-px aperture "
                             "(tiles are decoded whole)")
        return rows
    unit = int(tile_px) if tile_px is not None else int(model.config.decoder.img_size) * b
    chunk = int(out_chunks[0]) if out_chunks and isinstance(out_chunks[0], (int, np.integer)) else DEFAULT_BLOCK_ROWS
    want = max(chunk, MIN_BANDS_PER_BLOCK * unit)
    rows = -(-want // chunk) * chunk
    if tile_px is not None:
        rows = -(-rows // int(tile_px)) * int(tile_px)
    return rows


def _reconstruct_block(ref: ModelRef, camera_rows: np.ndarray, first: int, height: int, rows: tuple[int, int],
                       overlap: int | None, batch_size: int) -> np.ndarray:
    """On a worker: φ/2π of object rows ``rows`` from the camera rows sent."""
    from ..device import resolve_device

    model = ref.load()
    return reconstruct_full_field(CameraRows(camera_rows, first, height), model, overlap=overlap,
                                  device=resolve_device(ref.device), rows=rows, batch_size=batch_size)


def reconstruct_on_cluster(image, model, client, *, out, overlap: int | None = None, device: str = "cpu",
                           block_rows: int | None = None, progress: Callable[[int, int], None] | None = None,
                           batch_size: int = 16, max_in_flight: int | None = None):
    """φ/2π (float32) of a 2-D camera image, computed by row blocks on ``client``'s workers.

    ``model``: loaded from a file (its :class:`ModelRef` is what the workers get). ``out``: receives
    ``out[r0:r1] = rows`` for every block of object rows (the whole ``(h·b, w·b)`` reconstruction),
    written by the client as blocks arrive; ``out.chunks`` (if any) sets the block height
    (:func:`block_rows_for`). At most ``max_in_flight`` blocks (default: 2 per worker thread) are
    queued at once, so memory stays bounded on a mosaic of any size. ``progress(done, total)``: blocks.
    """
    from distributed import as_completed

    ref = ModelRef.of(model, device)
    b = int(model.config.encoder.detector.binning)
    h, w = (int(s) for s in image.shape)
    rows = block_rows_for(model, getattr(out, "chunks", None), block_rows)
    blocks = [(r0, min(r0 + rows, h * b)) for r0 in range(0, h * b, rows)]
    if max_in_flight is None:
        max_in_flight = 2 * max(sum(client.nthreads().values()), 1)
    todo = iter(blocks)
    where: dict[object, tuple[int, int]] = {}  # future in flight → its object rows
    queue = as_completed()

    def submit_next() -> None:
        block = next(todo, None)
        if block is None:
            return
        c0, c1 = camera_rows_needed(model, (h, w), block, overlap)
        band = image[c0:c1]
        band = np.asarray(band.compute() if hasattr(band, "compute") else band)
        [sent] = client.scatter([band])
        future = client.submit(_reconstruct_block, ref, sent, c0, h, block, overlap, int(batch_size), pure=False)
        where[future] = block
        queue.add(future)

    for _ in range(max(int(max_in_flight), 1)):
        submit_next()
    done = 0
    try:
        for future in queue:
            r0, r1 = where.pop(future)
            out[r0:r1] = future.result()
            future.release()
            done += 1
            if progress is not None:
                progress(done, len(blocks))
            submit_next()
    finally:
        if where:  # an error (or Ctrl-C): nothing more is computed for this reconstruction
            client.cancel(list(where))
    return out


# ------------------------------------------------------------------------------------------ batches
def _run_job(ref: ModelRef, function: Callable, job, kwargs: dict):
    return function(ref.load(), job, **kwargs)


def map_jobs(client, function: Callable, jobs: Iterable, model, *, model_device: str = "cpu",
             progress: Callable[[int, int], None] | None = None, **kwargs) -> list:
    """``[function(model, job, **kwargs) for job in jobs]``, one task per job on ``client``'s workers,
    each with its worker's cached copy of ``model`` (loaded on ``model_device``); results in the order
    of ``jobs``.

    ``function`` must be importable on the workers (a module-level function of this package or one
    installed beside it); ``job`` is any picklable description (e.g. an (input, output) pair of paths).
    The first job that fails stops the batch: the jobs not yet finished are cancelled and its error is
    raised here (jobs already finished keep their outputs).
    """
    from distributed import as_completed

    jobs = list(jobs)
    ref = ModelRef.of(model, model_device)
    futures = [client.submit(_run_job, ref, function, job, kwargs, pure=False) for job in jobs]
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            if future.status == "error":
                future.result()  # raises the job's error (after the finally below cancelled the rest)
            if progress is not None:
                progress(done, len(jobs))
        return client.gather(futures)
    finally:
        client.cancel([f for f in futures if not f.done()])
