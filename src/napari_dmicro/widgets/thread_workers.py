"""Running a widget's task in a napari thread worker: errors become notifications, closed docks are safe."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from .notifications import log, notify_error, notify_info
from .workers import TaskCancelled


def start_worker(func: Callable, *args, task: str, on_yield: Callable | None = None,
                 on_return: Callable | None = None, on_finish: Callable | None = None,
                 on_error: Callable | None = None, **kwargs):
    """Run ``func`` (a function or generator) in a napari thread worker.

    Errors become a napari notification "<task>: <message>" (then ``on_error``); ``on_finish`` runs
    in every case (done, error, quit), on the GUI thread.
    """
    from napari.qt.threading import create_worker

    worker = create_worker(_catching(func), *args, _ignore_errors=True, **kwargs)

    def _errored(exc):
        if isinstance(exc, TaskCancelled):
            notify_info(f"{task}: cancelled")
        else:
            notify_error(task, exc)
        if on_error is not None:
            on_error(exc)

    def _returned(value):
        if isinstance(value, _Failure):
            _errored(value.exc)
        elif on_return is not None:
            on_return(value)

    worker.errored.connect(_guarded(_errored))  # only for errors outside the task itself
    if on_yield is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(_guarded(on_yield))
    worker.returned.connect(_guarded(_returned))
    if on_finish is not None:
        worker.finished.connect(_guarded(on_finish))
    worker.done = False  # True once every slot above has run (tests and scripts wait on it)
    worker.finished.connect(lambda: setattr(worker, "done", True))
    worker.start()
    return worker


class _Failure:
    """What a task returns instead of raising (see :func:`_catching`)."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _catching(func: Callable) -> Callable:
    """The task, returning a :class:`_Failure` instead of raising.

    A worker's ``errored`` signal also reaches napari's task-status slots, which take no argument
    under PySide6 and raise in the Qt event loop; a failure delivered through ``returned`` does not.
    """
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def gen(*args, **kwargs):
            try:
                return (yield from func(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - reported by the widget as a notification
                return _Failure(exc)
        return gen

    @functools.wraps(func)
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            return _Failure(exc)
    return call


def _guarded(slot: Callable) -> Callable:
    """A slot that does nothing once its widget's C++ object is gone (the dock was closed mid-task)."""

    def call(*args):
        try:
            return slot(*args)
        except RuntimeError as exc:
            if "already deleted" in str(exc) or "has been deleted" in str(exc):
                log.debug("a widget closed before its task finished: %s", exc)
                return None
            raise

    return call
