"""napari notifications for the widgets: errors keep the widget usable, the traceback goes to the log."""

from __future__ import annotations

import logging

log = logging.getLogger("napari_dmicro.widgets")


def notify_error(task: str, exc: BaseException | str) -> None:
    """Show an error as a napari notification (the widget stays usable)."""
    from napari.utils.notifications import show_error

    text = str(exc) if not isinstance(exc, str) else exc
    if isinstance(exc, BaseException) and not text:
        text = type(exc).__name__
    if isinstance(exc, BaseException):
        log.debug("%s failed", task, exc_info=(type(exc), exc, exc.__traceback__))
    show_error(f"{task}: {text}")


def notify_info(text: str) -> None:
    from napari.utils.notifications import show_info

    show_info(text)


def notify_warning(text: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(text)
