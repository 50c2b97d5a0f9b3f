"""Reconstruction on a dask.distributed cluster (a scheduler and two worker processes on 127.0.0.1): a mosaic
cut into row blocks with their halos, and a batch of files, equal the one-process results; each worker
loads a checkpoint once; the CLI runs on an existing scheduler."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import napari_dmicro as dm
from napari_dmicro.batch import reconstruct_files
from napari_dmicro.cli import main
from napari_dmicro.inference.distributed import block_rows_for, cluster_client, worker_model_loads
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.io.fields import read_image, write_measurement

#: one process and the cluster decode the same windows with the same weights: agreement to float rounding
TOLERANCE_RAD = 1e-5


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _camera(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 + rng.random(shape)).astype(np.float32)


@pytest.mark.parametrize("optics", ["lff", "d2nn"])
def test_a_mosaic_on_two_workers_equals_one_process(client, tiny_checkpoints, optics):
    path = tiny_checkpoints[optics]
    model = dm.load_model(path)
    b = int(model.config.encoder.detector.binning)
    tile = model.encoder.tile_px()
    camera = _camera((768, 160) if tile is None else (40 * tile // b, 2 * tile // b))
    one = dm.reconstruct(camera, model)
    rows = block_rows_for(model, None)
    assert camera.shape[0] * b > 2 * rows  # at least three blocks, so halos are crossed

    spread = dm.reconstruct(camera, model, client=client)
    assert spread.shape == one.shape and spread.dtype == np.float32
    assert float(np.max(np.abs(spread - one))) < TOLERANCE_RAD

    # into a zarr array with small chunks: many blocks, each written as whole chunk rows
    out = zarr.create_array(zarr.storage.MemoryStore(), shape=one.shape, chunks=(tile or 256, 160 * b),
                            dtype=np.float32)
    dm.reconstruct(camera, str(path), client=client, out=out)
    assert float(np.max(np.abs(out[:] - one))) < TOLERANCE_RAD

    loads = client.run(worker_model_loads)
    per_worker = [n for counts in loads.values() for key, n in counts.items() if str(path.resolve()) in key]
    assert per_worker and all(n == 1 for n in per_worker)  # one load per worker, reused by every block


def test_a_batch_of_files_runs_one_job_per_task_with_the_one_process_result(client, tiny_checkpoints, tmp_path):
    model = dm.load_model(tiny_checkpoints["lff"])
    jobs = []
    for k in range(3):
        meas = dm.simulate(_field((160, 192), seed=k), model)
        write_measurement(tmp_path / f"m{k}.zarr", meas.image, pixel_size_um=meas.record.camera_pixel_size_um,
                          wavelength_um=meas.record.wavelength_um, attrs=meas.record.to_attrs())
        jobs.append((str(tmp_path / f"m{k}.zarr"), str(tmp_path / f"p{k}.zarr")))
    here = reconstruct_files([(m, o.replace(".zarr", "-here.zarr")) for m, o in jobs], model)
    done = []
    there = reconstruct_files(jobs, model, client=client, progress=lambda d, t: done.append((d, t)))
    assert done[-1] == (3, 3) and [r["shape"] for r in there] == [r["shape"] for r in here] == [[160, 192]] * 3
    for _, out in jobs:
        a = read_image(out).data[:]
        b = read_image(out.replace(".zarr", "-here.zarr")).data[:]
        assert read_image(out).kind == "phase" and float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) < TOLERANCE_RAD


def _field(shape, seed=0):
    rng = np.random.default_rng(seed)
    return np.exp(1j * rng.uniform(0, 2, shape)).astype(np.complex64)


def _cli_args(tmp_path, checkpoint, shape) -> list[str]:
    """``dmicro reconstruct`` arguments for a measurement store of a random field simulated by ``checkpoint``."""
    meas = dm.simulate(_field(shape), dm.load_model(checkpoint))
    write_measurement(tmp_path / "m.zarr", meas.image, pixel_size_um=meas.record.camera_pixel_size_um,
                      wavelength_um=meas.record.wavelength_um, attrs=meas.record.to_attrs())
    return ["reconstruct", str(tmp_path / "m.zarr"), "--model", str(checkpoint)]


def test_the_cli_reconstructs_on_a_running_scheduler(client, tiny_checkpoints, tmp_path, capsys):
    args = _cli_args(tmp_path, tiny_checkpoints["lff"], (1100, 200))
    assert main([*args, "-o", str(tmp_path / "one.zarr")]) == 0
    assert main([*args, "-o", str(tmp_path / "two.zarr"), "--scheduler", client.scheduler.address]) == 0
    assert "on 2 dask worker(s)" in capsys.readouterr().out
    one, two = (np.asarray(read_image(tmp_path / f"{n}.zarr").data[:]) for n in ("one", "two"))
    assert one.shape == (1100, 200) and float(np.max(np.abs(one - two))) < TOLERANCE_RAD
    assert read_image(tmp_path / "two.zarr").attrs["distributed_workers"] == 2


def test_a_model_the_workers_cannot_load_is_refused_before_any_work(client, tiny_microscope, tiny_checkpoints,
                                                                    tmp_path):
    camera = _camera((64, 64))
    with pytest.raises(ValueError, match="only in memory"):
        dm.reconstruct(camera, tiny_microscope(), client=client)
    # the file changed after the client read it: the worker refuses another version of the model
    path = tmp_path / "changing.safetensors"
    save_checkpoint(path, tiny_microscope(seed=0))
    model = dm.load_model(path)
    save_checkpoint(path, tiny_microscope(seed=1))
    with pytest.raises(ValueError, match="differs from the client's"):
        dm.reconstruct(camera, model, client=client)


def test_a_failing_job_stops_the_batch_with_its_error(client, tiny_checkpoints, tmp_path):
    model = dm.load_model(tiny_checkpoints["lff"])
    with pytest.raises(FileNotFoundError, match="missing"):
        reconstruct_files([(str(tmp_path / "missing.zarr"), str(tmp_path / "out.zarr"))], model, client=client)
    assert not (tmp_path / "out.zarr").exists()


def test_the_cli_starts_and_stops_a_local_cluster_with_workers(tiny_checkpoints, tmp_path, capsys):
    args = _cli_args(tmp_path, tiny_checkpoints["d2nn"], (256, 128))
    assert main([*args, "-o", str(tmp_path / "one.zarr")]) == 0
    assert main([*args, "-o", str(tmp_path / "local.zarr"), "--workers", "1"]) == 0
    assert "on 1 dask worker(s)" in capsys.readouterr().out
    one, local = (np.asarray(read_image(tmp_path / f"{n}.zarr").data[:]) for n in ("one", "local"))
    assert float(np.max(np.abs(one - local))) < TOLERANCE_RAD
    # refused before any work, with the flag to change
    assert main([*args, "-o", str(tmp_path / "x.zarr"), "--workers", "1", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "one or the other" in capsys.readouterr().err


def test_cluster_options_are_checked():
    with cluster_client() as none:
        assert none is None
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        with cluster_client("somewhere:8786"):
            pass
    with pytest.raises(ValueError, match="one or the other"):
        with cluster_client("tcp://127.0.0.1:1", workers=2):
            pass
    with pytest.raises(ValueError, match=">= 1"):
        with cluster_client(workers=0):
            pass
