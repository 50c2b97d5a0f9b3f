"""A figure like the paper's Fig. 5: ground truth, measurements, reconstructions and SSIM maps.

    python benchmarks/figure_reconstructions.py --data /tmp/bench_fields [--field phantom_0037.zarr]

One held-out test field (by default the one with the most cell area in the shown region) through every noise-free shipped
model: each is ONE measurement of the whole field, reconstructed with blended windows; the figure shows
a 384² px region (121 µm). Writes docs/images/bench_fig5.png, labelled with the machine and date.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import ensure_data, test_fields  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "bench_fig5.png"
MODELS = ("lff-x64", "lff-x256", "d2nn-x64")
CROP = (slice(0, 384), slice(0, 384))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/dmicro_bench_fields")
    parser.add_argument("--field", default=None, help="file name of a test field (default: the densest)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    import napari_dmicro as dm
    from napari_dmicro.io.fields import read_field

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data = Path(args.data)
    ensure_data(data)
    models = {name: dm.load_model(name) for name in MODELS}
    paths = test_fields(next(iter(models.values())), data)

    def cell_fraction(p):  # of the shown region: phase more than 0.5 rad
        return float((np.mod(np.angle(np.asarray(read_field(p).data)[CROP]), 2 * np.pi) > 0.5).mean())

    path = data / args.field if args.field else max(paths, key=cell_fraction)
    field = np.asarray(read_field(path).data)
    truth = np.mod(np.angle(field), 2 * np.pi)
    px = 0.3164
    fig, axes = plt.subplots(3, len(MODELS) + 1, figsize=(3.3 * (len(MODELS) + 1), 9.6))
    extent = (0, CROP[1].stop * px, CROP[0].stop * px, 0)
    axes[0, 0].imshow(truth[CROP], cmap="twilight", vmin=0, vmax=2 * np.pi, extent=extent)
    axes[0, 0].set_title("ground truth φ (rad)", fontsize=9)
    axes[1, 0].axis("off")
    axes[2, 0].axis("off")
    for k, (name, model) in enumerate(models.items(), start=1):
        meas = dm.simulate(field, model)
        phase = dm.reconstruct(meas, model)
        report = dm.evaluate(phase[:768, :768], field[:768, :768])
        b = model.config.encoder.detector.binning
        cam = np.asarray(meas)[: CROP[0].stop // b, : CROP[1].stop // b]
        axes[0, k].imshow(cam, cmap="gray", extent=extent, interpolation="nearest")
        axes[0, k].set_title(f"{name}: camera {cam.shape[0]}×{cam.shape[1]} px", fontsize=9)
        axes[1, k].imshow(phase[CROP], cmap="twilight", vmin=0, vmax=2 * np.pi, extent=extent)
        axes[1, k].set_title(f"reconstruction ({report.psnr_db:.2f} dB full FoV)", fontsize=9)
        axes[2, k].imshow(report.ssim_map[CROP], cmap="magma", vmin=0, vmax=1, extent=extent)
        axes[2, k].set_title(f"SSIM map (field mean {report.ssim:.3f})", fontsize=9)
    for ax in axes.flat:
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Held-out test field {path.name}, noise free; region {CROP[0].stop}² px = "
                 f"{CROP[0].stop * px:.0f} µm (axes in µm). Made by benchmarks/figure_reconstructions.py on "
                 f"{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
                 fontsize=9)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=100)
    plt.close(fig)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
