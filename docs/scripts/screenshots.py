"""Regenerate the screenshots in docs/images (needs a display: run under Xvfb, e.g. `xvfb-run -a`).

    .venv/bin/dmicro demo --out demo_output
    xvfb-run -a .venv/bin/python docs/scripts/screenshots.py demo_output
"""

import sys
from pathlib import Path

import napari

out = Path(__file__).resolve().parents[1] / "images"
demo = Path(sys.argv[1] if len(sys.argv) > 1 else "demo_output")

viewer = napari.Viewer(show=True)
viewer.window.resize(1400, 800)
viewer.open(demo / "field.zarr", plugin="napari-dmicro")
viewer.open(demo / "measurement.zarr", plugin="napari-dmicro")
viewer.open(demo / "phase.zarr", plugin="napari-dmicro")
viewer.grid.enabled = True
viewer.reset_view()
napari.qt.get_qapp().processEvents()
viewer.screenshot(str(out / "napari_demo_field.png"), canvas_only=False, flash=False)
print("wrote", out / "napari_demo_field.png")
viewer.close()
