"""The one atomic writer: swap without a gap, fallback with recovery, kill -9 / Ctrl-C / SIGTERM mid-write,
concurrent writers, read-only folders and full disks."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_dmicro.io import OutputBusyError, atomic, read_field, store, write_field, write_text_atomically

PS, WL = 0.3164, 0.6328
SRC = str(Path(__file__).resolve().parents[1] / "src")

# writes a store slowly (every 256-row block sleeps), so that a test can interrupt it mid-write
SLOW_WRITER = """
import signal, sys, time
# an interactive program: Ctrl-C is Python's (a test runner may hand its children an ignored SIGINT, which
# the writer rightly leaves alone)
signal.signal(signal.SIGINT, signal.default_int_handler)
import dask.array as da, numpy as np
from napari_dmicro.io import atomic, write_field
if sys.argv[2] == "fallback":
    atomic.RENAMEAT2 = None
def slow(block):
    time.sleep(0.25)
    return block
field = da.full((4096, 1024), 2 + 0j, chunks=(256, 1024), dtype=np.complex64).map_blocks(slow)
write_field(sys.argv[1], field, pixel_size_um=0.3164, wavelength_um=0.6328, overwrite=True)
"""


def _field(shape=(64, 48), value=1.0):
    return np.full(shape, value * np.exp(0.5j), np.complex64)


def _hidden(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _start_slow_writer(target: Path, mode: str = "exchange") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target), mode], env=env,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(".tmp-" in n for n in os.listdir(target.parent)):  # wait until it writes
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the writer never started"
        time.sleep(0.05)
    time.sleep(0.5)  # some chunks are on disk now
    return proc


def test_replacing_a_store_exchanges_it_in_one_step(tmp_path, monkeypatch):
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    calls = []
    real = atomic.RENAMEAT2
    monkeypatch.setattr(atomic, "RENAMEAT2", lambda *a: calls.append(a[-1]) or real(*a))
    monkeypatch.setattr(os, "rename", lambda *a: pytest.fail(f"two-rename replacement {a}"))
    write_field(out, _field(value=3.0), pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    assert calls == [2]  # RENAME_EXCHANGE: the target never disappears
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 3.0)
    assert _hidden(tmp_path) == []


def test_fallback_replaces_and_a_crash_between_its_renames_is_recovered(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "RENAMEAT2", None)
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    write_field(out, _field(value=2.0), pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 2.0)
    assert _hidden(tmp_path) == []
    # a writer killed between "f.zarr → .f.zarr.old-*" and "tmp → f.zarr": no f.zarr, the data hidden
    os.rename(out, tmp_path / f".f.zarr.old-{_dead_pid()}-0123abcd")
    assert not out.exists()
    with pytest.raises(FileExistsError, match="already exists"):  # the next write restores it first
        write_field(out, _field(value=5.0), pixel_size_um=PS, wavelength_um=WL)
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 2.0)
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_kill_9_mid_write_keeps_the_old_store_and_the_next_write_sweeps_the_debris(tmp_path, mode):
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    proc = _start_slow_writer(out, mode)
    proc.kill()
    proc.wait()
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 1.0)  # old output intact
    assert any(".tmp-" in n for n in _hidden(tmp_path))  # debris of the killed writer
    write_field(out, _field(value=4.0), pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    assert _hidden(tmp_path) == []
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 4.0)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, (-signal.SIGINT, 1, 130)), (signal.SIGTERM, (143,))])
def test_ctrl_c_or_sigterm_mid_write_leaves_no_debris_and_the_old_store(tmp_path, sig, status):
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    proc = _start_slow_writer(out)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) in status
    assert _hidden(tmp_path) == []
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 1.0)


def _race(target, barrier, results):
    barrier.wait()
    try:
        write_field(target, _field((1500, 1500)), pixel_size_um=PS, wavelength_um=WL)
        results.put("ok")
    except OutputBusyError as exc:
        results.put("busy" if "another dmicro process is writing" in str(exc) else repr(exc))
    except FileExistsError as exc:
        results.put("exists" if "already exists" in str(exc) else repr(exc))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results.put(repr(exc))


def test_twenty_concurrent_writers_one_wins_the_others_get_a_clear_error(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n = 20
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(tmp_path / "f.zarr", barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in range(n))
    for p in procs:
        p.join(timeout=60)
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) <= {"ok", "busy", "exists"}, outcomes
    assert "busy" in outcomes
    assert _hidden(tmp_path) == []
    assert read_field(tmp_path / "f.zarr").shape == (1500, 1500)


def test_debris_of_dead_writers_is_swept_and_that_of_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    (tmp_path / f".f.zarr.tmp-{dead}-0123abcd").mkdir()
    (tmp_path / f".f.zarr.tmp-{live}-0123abcd").mkdir()
    (tmp_path / f".f.zarr.scratch-{dead}-0123abcd").mkdir()  # a streamed result of a killed run
    (tmp_path / f".other.zarr.tmp-{dead}-0123abcd").mkdir()  # another target's: not ours to judge
    write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    assert _hidden(tmp_path) == [f".f.zarr.tmp-{live}-0123abcd", f".other.zarr.tmp-{dead}-0123abcd"]


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A folder nobody may write into (root ignores the mode bits, so refuse for root too)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real_open, real_mkdir = os.open, os.mkdir

        def refuse(real):
            def call(path, *args, **kwargs):
                if str(path).startswith(str(folder)):
                    raise PermissionError(errno.EACCES, "Permission denied", str(path))
                return real(path, *args, **kwargs)
            return call

        monkeypatch.setattr(os, "open", refuse(real_open))
        monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    yield folder
    folder.chmod(0o755)


def test_read_only_folder_is_one_clear_error(read_only_dir):
    with pytest.raises(PermissionError, match=r"cannot write .*f\.zarr: permission denied.*writable folder"):
        write_field(read_only_dir / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)
    with pytest.raises(PermissionError, match="cannot write .*run.json: permission denied"):
        write_text_atomically(read_only_dir / "run.json", "{}")
    assert os.listdir(read_only_dir) == []


def test_full_disk_mid_write_removes_the_temporary(tmp_path, monkeypatch):
    out = write_field(tmp_path / "f.zarr", _field(), pixel_size_um=PS, wavelength_um=WL)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "ome_metadata", full)  # after all chunks are written
    with pytest.raises(OSError, match=r"cannot write .*f\.zarr: the disk is full.*free some space"):
        write_field(out, _field(value=2.0), pixel_size_um=PS, wavelength_um=WL, overwrite=True)
    assert _hidden(tmp_path) == []
    np.testing.assert_allclose(np.abs(read_field(out, lazy=False).data), 1.0)
