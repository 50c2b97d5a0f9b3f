"""Matplotlib plots inside napari docks."""

from __future__ import annotations

from qtpy.QtWidgets import QSizePolicy


def make_figure_canvas(width_in: float = 4.0, height_in: float = 2.6):
    """A matplotlib (qtagg) canvas and its axes, styled to sit in a napari dock."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=90, layout="constrained")
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(180)
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    ax = fig.add_subplot(111)
    ax.tick_params(labelsize=8)
    return canvas, ax
