"""Static figures (matplotlib, Agg backend; no Qt) for the demo and the benchmark report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io.atomic import write_file_atomically


def save_panels(path, panels, *, title: str | None = None, dpi: int = 110, ncols: int | None = None) -> Path:
    """Save a row of image panels.

    ``panels`` is a list of dicts with keys ``image`` (2-D array), ``title``, optional ``cmap``,
    ``vmin``/``vmax``, ``extent_um`` (width, height in µm) and ``label`` (colour-bar label).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    n = len(panels)
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.9 * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, panel in zip(axes.flat, panels, strict=False):  # the grid may have spare axes
        image = np.asarray(panel["image"])
        extent = None
        if "extent_um" in panel:
            width, height = panel["extent_um"]
            extent = (0, width, height, 0)
            ax.set_xlabel("x (µm)")
            ax.set_ylabel("y (µm)")
        else:
            ax.axis("off")
        shown = ax.imshow(image, cmap=panel.get("cmap", "gray"), vmin=panel.get("vmin"),
                          vmax=panel.get("vmax"), extent=extent, interpolation="nearest")
        ax.set_title(panel.get("title", ""), fontsize=10)
        cbar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        if panel.get("label"):
            cbar.set_label(panel["label"])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(path)
    try:
        fmt = out.suffix[1:] or "png"  # the temporary's name has no meaningful suffix
        write_file_atomically(out, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt))
    finally:
        plt.close(fig)
    return out
