"""The one atomic writer of napari-dmicro: a zarr store (directory) or a file appears complete or not at all.

:func:`atomic_output` is used for every output the package writes (zarr stores, json, png,
safetensors). The data are written to a hidden sibling ``.NAME.tmp-<pid>-<hex>`` and moved onto
``NAME`` when complete:

* a new target: ``renameat2(RENAME_NOREPLACE)`` (``os.rename`` elsewhere);
* replacing a directory: ``renameat2(RENAME_EXCHANGE)`` swaps temporary and target in one step
  (there is never a moment without ``NAME``), then the old copy is deleted; where the kernel or
  file system cannot exchange, two renames (``NAME`` → ``.NAME.old-<pid>-<hex>``, temporary →
  ``NAME``) with a recovery rule: a later write that finds ``.NAME.old-*`` of a dead process and no
  ``NAME`` renames it back;
* replacing a file: ``os.replace`` (atomic on POSIX).

Only one writer at a time: ``fcntl.flock`` on ``.NAME.lock`` beside the target (removed afterwards);
a second writer gets :class:`OutputBusyError` ("another dmicro process is writing NAME") at once.
While holding the lock, debris of dead writers of the same target (``.NAME.tmp-<pid>-*``,
``.NAME.old-<pid>-*`` and ``.NAME.scratch-<pid>-*`` whose pid no longer runs, see
:func:`hidden_sibling`) is swept. The temporary is removed on any
exception and on SIGINT/SIGTERM (handlers are installed only while writing in the main thread, only
over the default handlers, and restored after; SIGINT raises :class:`KeyboardInterrupt`, SIGTERM
exits with status 143). After a kill -9 the next write to the same target sweeps the debris.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, O_EXCL lock file instead
    fcntl = None

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputBusyError(OSError):
    """Another process holds the write lock of this output."""


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


#: ``renameat2`` from libc, or None (not Linux, old glibc); tests set it to None to force the fallback.
RENAMEAT2 = _load_renameat2()


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """True when done; False when renameat2 or the flag is unsupported here (caller falls back)."""
    if RENAMEAT2 is None:
        return False
    if RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers not in use (_IN_USE): nothing of ours is still writing them
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Kinds of hidden siblings a writer of NAME may leave behind when killed (``scratch``: streamed results).
SIBLING_KINDS = ("tmp", "old", "scratch")


#: hidden siblings this process has handed out and not yet removed (a sweep leaves them alone)
_IN_USE: set[str] = set()


def hidden_sibling(target: Path, kind: str) -> Path:
    """``.NAME.<kind>-<pid>-<hex>`` beside ``target``: once this process is gone (or has removed it
    with :func:`remove_sibling`), the next write to ``target`` sweeps it (an ``old`` copy is restored
    when ``target`` is missing)."""
    if kind not in SIBLING_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {SIBLING_KINDS}")
    path = target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    _IN_USE.add(os.path.abspath(path))
    return path


def remove_sibling(path: Path) -> None:
    """Delete a hidden sibling (folder or file) and forget it."""
    _remove(path)
    _IN_USE.discard(os.path.abspath(path))


def _debris_pattern(name: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(name)}\.({'|'.join(SIBLING_KINDS)})-(\d+)-[0-9a-f]{{8}}")


def sweep_debris(target: Path) -> list[Path]:
    """Remove temporaries of dead writers of ``target``; restore an ``.old-*`` copy if ``target`` is gone.

    Call only while holding the target's lock. Returns the paths removed or restored.
    """
    pattern = _debris_pattern(target.name)
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(target.parent):
            m = pattern.fullmatch(entry.name)
            if m and os.path.abspath(entry.path) not in _IN_USE and not _pid_alive(int(m.group(2))):
                found.append((m.group(1), Path(entry.path)))
    handled = []
    for kind, path in sorted(found, key=lambda kp: kp[0] != "old"):  # restore before deleting
        if kind == "old" and not os.path.lexists(target):
            os.rename(path, target)  # crash between the two renames of the fallback: put it back
        else:
            _remove(path)
        handled.append(path)
    return handled


@contextlib.contextmanager
def _write_lock(target: Path) -> Iterator[None]:
    lock = target.with_name(f".{target.name}.lock")
    busy = OutputBusyError(errno.EBUSY, f"another dmicro process is writing {target}; wait for it to "
                           "finish or choose another output")
    for _attempt in range(5):
        if fcntl is None:  # pragma: no cover
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise busy from None
        else:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise busy from None
            try:  # the holder before us may have removed the file: then this lock guards nothing
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)  # unlink while still holding it, then release
            os.close(fd)
        return
    raise busy


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """SIGINT → KeyboardInterrupt, SIGTERM → SystemExit(143) inside the block, so ``finally`` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame):
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    # only where the handler would kill us without cleaning up (or is Python's own Ctrl-C): a handler
    # the program installed (e.g. dmicro train's "stop after this step") is left alone
    defaults = (signal.SIG_DFL, signal.default_int_handler)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) in defaults}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


def _commit(tmp: Path, target: Path) -> None:
    if not os.path.lexists(target):
        if not _renameat2(tmp, target, _RENAME_NOREPLACE):
            os.rename(tmp, target)
        return
    if not (tmp.is_dir() or target.is_dir()):
        os.replace(tmp, target)  # files: one atomic step
        return
    if _renameat2(tmp, target, _RENAME_EXCHANGE):
        _remove(tmp)  # tmp now holds the old copy
        return
    old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove(old)


def _describe_os_error(exc: OSError, target: Path) -> OSError:
    """The same error with a message that names the output and the fix."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    reason = reasons.get(exc.errno)
    if reason is None or isinstance(exc, OutputBusyError):
        return exc
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(target) else ""
    fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a writable folder"
    return type(exc)(exc.errno, f"cannot write {target}: {reason}{where}; {fix} and try again")


@contextlib.contextmanager
def atomic_output(target, *, check_target: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``target`` into; move it onto ``target`` when the block succeeds.

    Write a directory (a zarr store) or a file at the yielded path. ``check_target(target)`` runs
    while holding the lock, after sweeping debris and before anything is written: raise there to
    refuse an existing target (e.g. FileExistsError). The parent folder is created. On any error or
    signal the temporary is removed and ``target`` is untouched; OS errors (full disk, read-only
    folder) are re-raised with a message naming the output.
    """
    target = Path(target).absolute()
    tmp = hidden_sibling(target, "tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _write_lock(target), _cleanup_on_signals():
            sweep_debris(target)
            if check_target is not None:
                check_target(target)
            try:
                yield tmp
                _commit(tmp, target)
            finally:
                remove_sibling(tmp)
    except OSError as exc:
        described = _describe_os_error(exc, target)
        if described is exc:
            raise
        raise described from exc


def write_file_atomically(target, write: Callable[[Path], None], *, fsync: bool = True) -> Path:
    """``write(tmp_path)`` then move onto ``target`` (a file: json, png, safetensors); returns ``target``.

    The file gets the permissions of a normal new file (umask applied).
    """
    with atomic_output(target) as tmp:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
    return Path(target)


def write_text_atomically(target, text: str) -> Path:
    """Write ``text`` (UTF-8) to the file ``target`` atomically."""
    return write_file_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


__all__ = ["OutputBusyError", "atomic_output", "hidden_sibling", "remove_sibling", "sweep_debris",
           "write_file_atomically", "write_text_atomically"]
