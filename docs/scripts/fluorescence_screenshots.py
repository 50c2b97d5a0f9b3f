"""Regenerate docs/images/fluo_*.png: the widgets with a trained fluorescence model on a generated nuclei field.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/scripts/fluorescence_screenshots.py \
        [MODEL] [OUT_DIR]

MODEL: a fluorescence checkpoint or run folder (default: the fluo-x64 run, /work/runs/fluo-x64 or
$DMICRO_FLUO_MODEL). The field is the generator's "mixed" nuclei field 0 of seed 7 (512², 0.325 µm; the
models trained on seed 1), written as a fluorescence store with its true labels (as
``dmicro phantom --modality fluorescence --style mixed --seed 7 --size 512`` writes it) and opened with the
napari-dmicro reader. The script then: Simulate (the model's trained photons and read noise, seed 0) →
patterns layer and measurement; Reconstruct; Compare the reconstruction with the truth (PSNR/SSIM, side by
side); and Compare masks: a reconstruction model has no segmentation head, so its reconstruction is
segmented here by the classical method the benchmarks use (`napari_dmicro.instances.classical_nuclei`: Otsu
threshold, holes filled, small objects dropped, touching nuclei split) and scored against the true nuclei (Dice,
F1 at IoU 0.5) — a task-aware model's Labels layer is scored the same way.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "images"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from widget_screenshots import settle, wait  # noqa: E402  (the same event-loop helpers)


def default_model() -> str:
    return os.environ.get("DMICRO_FLUO_MODEL") or "/work/runs/fluo-x64/model.safetensors"


def main(model_path: str, out: Path = OUT) -> None:
    import napari

    from napari_dmicro.instances import classical_nuclei
    from napari_dmicro.io.store import write_fluorescence
    from napari_dmicro.model_registry import model_registry
    from napari_dmicro.phantoms.fluorescence import FLUO_EMISSION_WAVELENGTH_UM, make_fluorescence_field
    from napari_dmicro.widgets import CompareWidget, ReconstructWidget, SimulateWidget
    from napari_dmicro.widgets.layers import scale_bar

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dmicro-fluo-shots-"))
    field = make_fluorescence_field(7, 0, style="mixed", size_px=512)
    store = write_fluorescence(tmp / "nuclei_seed7.zarr", field.image, field.labels,
                               pixel_size_um=field.pixel_size_um, emission_wavelength_um=FLUO_EMISSION_WAVELENGTH_UM,
                               attrs={**field.attrs(), "style": "mixed"})

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1560, 960)
    app = napari.qt.get_qapp()
    viewer.open(str(store), plugin="napari-dmicro")
    truth = next(layer for layer in viewer.layers if layer.name.endswith("fluorescence"))
    truth_labels = next((layer for layer in viewer.layers if layer.__class__.__name__ == "Labels"), None)
    if truth_labels is None:  # a reader that does not (yet) show a store's labels
        truth_labels = viewer.add_labels(field.labels, name="nuclei_seed7 labels", opacity=0.6,
                                         scale=(field.pixel_size_um,) * 2, units=("micrometer", "micrometer"))
    entry = model_registry().add_checkpoint(model_path)
    docks = {}

    def dock(widget, title: str):
        docks[title] = viewer.window.add_dock_widget(widget, name=title, area="right")
        return docks[title]

    def show_only(layers):
        names = {layer.name for layer in layers}
        for layer in viewer.layers:
            layer.visible = layer.name in names
        viewer.layers.selection.active = layers[0]
        viewer.reset_view(layers=list(layers))

    def shot(name: str, title: str):
        from napari._qt.dialogs.qt_notification import NapariQtNotification

        for t, d in docks.items():
            d.setVisible(t == title)
        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()
        scale_bar(viewer).visible = True
        for _ in range(2):  # a newly shown tall dock (Compare's plot) grows the window once: shrink it back
            viewer.window._qt_window.resize(1560, 960)
            settle(app, 0.8)
        viewer.reset_view(layers=[layer for layer in viewer.layers if layer.visible])
        path = out / f"fluo_{name}.png"
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        print(f"wrote {path}")

    # Simulate: the model's binary patterns and the measurement (T = 4 frames of 32² camera pixels)
    sim = SimulateWidget(viewer)
    dock(sim, "Simulate compression")
    sim.model_combo.select(entry.name)
    sim.fluo_combo.set_layer(truth)
    wait(app, sim.run())
    print(sim.status.text())
    meas, patterns = sim.last_layer, sim.patterns_layer
    viewer.dims.set_current_step(0, 0)
    show_only([patterns])
    shot("patterns", "Simulate compression")
    show_only([meas])
    shot("measurement", "Simulate compression")

    # Reconstruct with the model the measurement records
    rec = ReconstructWidget(viewer)
    dock(rec, "Reconstruct")
    rec.meas_combo.set_layer(meas)
    wait(app, rec.run())
    recon = rec.last_layer
    print(rec.status.text())
    for layer in (meas, patterns):  # the (T, y, x) layers: Compare's 2-D grid shows the 2-D images only
        viewer.layers.remove(layer)

    # Compare the reconstruction with the truth, side by side (the 166 µm camera image is hidden)
    cmp_ = CompareWidget(viewer)
    dock(cmp_, "Compare")
    cmp_.set_reference(truth)
    cmp_.set_reconstructions([recon])
    wait(app, cmp_.compare())
    report = cmp_.results[recon.name]
    print(f"{recon.name}: PSNR {report.psnr_db:.2f} dB, SSIM {report.ssim:.3f}")
    cmp_.show_overlay("(none)")
    truth_labels.visible = False
    cmp_.set_grid(True)
    viewer.layers.selection.active = recon
    shot("reconstruction", "Compare")
    cmp_.set_grid(False)

    # Compare masks: the reconstruction segmented by the benchmarks' classical method, against the true nuclei
    seg = classical_nuclei(np.asarray(recon.data), float(recon.scale[-1]))
    predicted = viewer.add_labels(seg, name=f"{entry.name} reconstruction classical labels", scale=tuple(recon.scale),
                                  units=("micrometer", "micrometer"), opacity=0.6)
    cmp_.set_reference(truth_labels)
    cmp_.set_reconstructions([predicted])
    wait(app, cmp_.compare())
    scores = cmp_.results[predicted.name]
    print(f"{predicted.name}: Dice {scores['dice']:.3f}, F1 {scores['f1']:.3f} "
          f"({scores['tp']:.0f} matched, {scores['fp']:.0f} false, {scores['fn']:.0f} missed)")
    cmp_.set_grid(True)
    viewer.layers.selection.active = predicted
    shot("compare_masks", "Compare")
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else default_model(), Path(sys.argv[2]) if len(sys.argv) > 2 else OUT)
