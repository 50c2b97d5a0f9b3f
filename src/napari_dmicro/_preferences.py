"""napari's reader preference for napari-dmicro stores (no "choose a reader" dialog for a ``.zarr``).

napari opens a file without asking only when exactly one plugin can read it or the user's settings name a
preferred reader for its pattern (``settings.plugins.extension2reader``); its builtin reader also claims
``*.zarr``, so without a preference File ▸ Open shows a dialog with the builtin preselected. When the
plugin is activated (the first time one of its widgets, sample data or readers is used) and whenever a
widget opens, :func:`prefer_plugin_reader` makes napari-dmicro the reader of ``*.zarr`` unless the user
already chose another reader for that pattern (their choice is kept). A zarr store napari-dmicro cannot
read then fails with the reason (see :func:`napari_dmicro._reader.napari_get_reader`), and napari offers
its other readers.
"""

from __future__ import annotations

PLUGIN_NAME = "napari-dmicro"
#: the patterns napari-dmicro is the preferred reader of (plain ``.npy`` images stay with napari's builtin);
#: napari matches a folder as ``path/`` (``napari.plugins.utils._get_preferred_readers``), hence ``*.zarr/``
PREFERRED_PATTERNS = ("*.zarr/", "*.zarr")


def prefer_plugin_reader() -> dict[str, str]:
    """Make napari-dmicro napari's reader for :data:`PREFERRED_PATTERNS` where the user chose none; returns
    the patterns set now."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    current = dict(plugins.extension2reader)
    if any(p in current for p in PREFERRED_PATTERNS):  # the user chose a reader for zarr: keep it
        return {}
    added = {p: PLUGIN_NAME for p in PREFERRED_PATTERNS}
    if added:
        plugins.extension2reader = {**current, **added}
    return added


def activate(ctx=None) -> None:
    """npe2 ``on_activate`` hook."""
    prefer_plugin_reader()
