"""Regenerate docs/images/widget_*.png: each napari-dmicro widget docked in a viewer, after doing its job.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/scripts/widget_screenshots.py

The run needs ../shared/realdata (the measured HL60 hologram; or $DMICRO_REALDATA) and takes a few
minutes on 2 busy CPU cores: a phantom store for Load, a *tiny* model trained by the Train widget
itself (learnable Fourier filter, x16, conv-tiny decoder, a hundred steps — so the Train screenshot
shows real progress, not a model to use), then the lab walk-through of docs/lab-data.md: Import the
HL60 hologram (0.107 µm, 633 nm), Simulate it through two shipped models (lff-x256, lff-x64), Reconstruct
each measurement with the model it records, and Compare with the hologram's phase (full field and cell).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "images"


def wait(app, worker, timeout_s: float = 600):
    t0 = time.time()
    while not getattr(worker, "done", False):
        app.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout_s:
            raise TimeoutError("worker did not finish")
    for _ in range(5):
        app.processEvents()


def settle(app, seconds: float = 0.3):
    t0 = time.time()
    while time.time() - t0 < seconds:
        app.processEvents()
        time.sleep(0.02)


def tiny_hook(config):
    """Shrink the preset to a demo-sized run that keeps the widget's choice of stages."""
    from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
    from napari_dmicro.decoders import decoder_config
    from napari_dmicro.system import SystemConfig
    from napari_dmicro.training import DataConfig, StageConfig, TrainConfig

    enc = EncoderConfig(optics=FourierFilterConfig(filter_size_px=64), detector=DetectorConfig(compression=16))
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 4))
    plan = {"optics": dict(steps=20, lr=0.1, select_on="l1", val_every=10),
            "decoder": dict(steps=80, lr=3e-3, milestones=(0.7,), val_every=40),
            "end_to_end": dict(steps=20, lr=1e-4, optics_lr=1e-3, loss="l1_ssim", val_every=10)}
    stages = tuple(StageConfig(name=s.name, batch_size=6, **plan[s.name]) for s in config.stages)
    return TrainConfig(preset=None, system=system, stages=stages, seed=config.seed,
                       data=DataConfig(patch_px=64, val_patches_per_side=1), checkpoint_every_steps=100)


def realdata() -> Path:
    """The measured data folder (../shared/realdata beside the repository, $DMICRO_REALDATA, /work/shared/realdata)."""
    import os

    here = Path(__file__).resolve()
    for candidate in (os.environ.get("DMICRO_REALDATA"), here.parents[3] / "shared" / "realdata",
                      "/work/shared/realdata"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError("no realdata folder: set DMICRO_REALDATA")


def main(out: Path = OUT) -> None:
    import napari

    from napari_dmicro.config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
    from napari_dmicro.io.fields import write_field
    from napari_dmicro.phantoms import make_field, make_fields
    from napari_dmicro.widgets import (
        CompareWidget,
        ImportWidget,
        LoadWidget,
        ReconstructWidget,
        SimulateWidget,
        TrainWidget,
    )

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dmicro-shots-"))
    fields = tmp / "fields"
    fields.mkdir()
    for k, f in enumerate(make_fields(10, seed=7, size_px=(160, 160))):
        np.save(fields / f"phantom_{k:02d}.npy", f)
    store = write_field(tmp / "cells.zarr", make_field(seed=12, size_px=(512, 512)),
                        pixel_size_um=DEFAULT_PIXEL_SIZE_UM, wavelength_um=DEFAULT_WAVELENGTH_UM,
                        attrs={"source": "napari_dmicro.phantoms", "seed": 12})

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1560, 960)
    app = napari.qt.get_qapp()

    docks = {}

    def dock(widget, title: str):
        for other in docks.values():
            other.hide()
        docks[title] = viewer.window.add_dock_widget(widget, name=title, area="right")
        return docks[title]

    def shot(name: str, title: str):
        from napari._qt.dialogs.qt_notification import NapariQtNotification

        for t, d in docks.items():
            d.setVisible(t == title)
        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()
        settle(app, 0.6)
        path = out / f"widget_{name}.png"
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        widget = docks[title].widget()
        print(f"wrote {path}; dock {title!r} needs {widget.minimumSizeHint().height()} px "
              f"(prefers {widget.sizeHint().height()} px)")

    # Load: a phantom store (its phase background-referenced, viridis 0..2π)
    load = LoadWidget(viewer)
    dock(load, "Load")
    wait(app, load.load(str(store)))
    shot("load", "Load")

    # Train (tiny run on the phantom folder)
    train = TrainWidget(viewer)
    train.config_hook = tiny_hook
    train.data_edit.setText(str(fields))
    train.out_edit.setText(str(tmp / "tiny-x16"))
    dock(train, "Train")
    t0 = time.time()
    wait(app, train.start())
    print(f"tiny training: {time.time() - t0:.0f} s; last event: {train.events[-1].kind}")
    shot("train", "Train")
    viewer.layers.clear()

    # Import: the measured HL60 off-axis hologram (qpimage; 0.107 µm pixels, 633 nm; PROVENANCE.txt)
    hologram = realdata() / "qpimage_hl60_oah_hologram" / "hologram_cell.npz"
    imp = ImportWidget(viewer)
    dock(imp, "Import acquisition")
    imp.path_edit.setText(str(hologram))
    imp.pixel_size.setValue(0.107)
    imp.wavelength.setValue(0.633)
    imp.output_edit.setText(str(tmp / "hl60.zarr"))
    wait(app, imp.run())
    cell_phase = viewer.layers["hologram_cell phase"]
    shot("import", "Import acquisition")

    # Simulate: the cell through two shipped microscopes (the field is resampled to their 0.3164 µm grid,
    # padded by the encoder's outside_field rule, and the record says so); 10⁴ photons, read noise σ 6
    shipped = ("lff-x256", "lff-x64")
    sim = SimulateWidget(viewer)
    dock(sim, "Simulate compression")
    sim.photons.setValue(10000)
    sim.read_noise.setValue(6)
    measurements = {}
    for name in shipped:  # lff-x64 (the default) last: its measurement is on top in the screenshot
        sim.model_combo.select(name)
        wait(app, sim.run())
        measurements[name] = sim.last_layer
    shot("simulate", "Simulate compression")

    # Reconstruct each measurement with the model it records (the widget's default)
    rec = ReconstructWidget(viewer)
    dock(rec, "Reconstruct")
    phases = {}
    for name in shipped:
        rec.meas_combo.set_layer(measurements[name])
        wait(app, rec.run())
        phases[name] = rec.last_layer
    for layer in viewer.layers:
        layer.visible = layer is phases["lff-x64"]
    viewer.reset_view(layers=[phases["lff-x64"]])
    shot("reconstruct", "Reconstruct")
    for layer in list(viewer.layers):  # the 104 µm camera images would set the grid's tile size below
        if layer.name.startswith("hologram_cell measurement"):
            viewer.layers.remove(layer)

    # Compare against the ground truth (the hologram's phase): full field and the cell, SSIM overlay, grid
    cmp_ = CompareWidget(viewer)
    dock(cmp_, "Compare")
    cmp_.set_reference(cell_phase)
    cmp_.set_reconstructions([phases[n] for n in shipped])
    wait(app, cmp_.compare())
    for name, report in cmp_.results.items():
        region = cmp_.region_results[name]
        print(f"{name}: full field PSNR {report.psnr_db:.2f} dB SSIM {report.ssim:.3f}; cell PSNR "
              f"{region.psnr_db:.2f} dB SSIM {region.ssim:.3f}")
    cmp_.add_profile_line()
    cmp_.set_grid(True)
    shot("compare", "Compare")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
