"""Statistics of the fluorescence nuclei generator beside the measured DSB2018 nuclei (docs/phantoms.md).

    python benchmarks/fluo_statistics.py [--count 32] [--realdata ../shared/realdata]

Measured: ``fluo_stardist_dsb2018_nuclei/img2d.tif`` + ``mask2d.tif`` (512², 125 manually outlined nuclei;
evaluation data, never used for training), loaded with ``load_fluorescence_tiff`` at an ASSUMED pixel size of
``DSB_PIXEL_SIZE_UM`` = 0.5 µm (the data carry none; see docs/phantoms.md for why 0.5). Its four 256²
quadrants give four "count per 256² field" values (a nucleus counts in the quadrant of its centroid).
Generator: ``--count`` fields of 256² at the same 0.5 µm per style ("dsb": DSB2018-like density; "mixed":
the training default, sparse to confluent), seeds ``(EVAL_SEED, k)``, a stream not used for training.
Per field: nucleus areas (px), count per 256² field, fraction of nuclei touching another, covered fraction,
mean nucleus / mean background intensity, and the intensity histogram of the image divided by its 99.9th
percentile (pooled over fields). Writes benchmarks/results/fluo_statistics.json and
docs/images/fluo_statistics.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "images" / "fluo_statistics.png"
#: assumed pixel size of DSB2018 img2d (not recorded in the data): see docs/phantoms.md
DSB_PIXEL_SIZE_UM = 0.5
#: seed of the generated comparison fields (training streams use other seeds)
EVAL_SEED = 9012
STYLES = ("dsb", "mixed")


def _summary(stats: list[dict], quadrant_counts: list[float] | None = None) -> dict:
    areas = np.concatenate([s["areas_px"] for s in stats])
    counts = quadrant_counts or [s["count_per_field"] for s in stats]
    return {
        "fields": len(stats),
        "nuclei": int(areas.size),
        "area_px_median": float(np.median(areas)),
        "area_px_p10": float(np.percentile(areas, 10)),
        "area_px_p90": float(np.percentile(areas, 90)),
        "count_per_256_field_median": float(np.median(counts)),
        "count_per_256_field_min": float(np.min(counts)),
        "count_per_256_field_max": float(np.max(counts)),
        "touching_fraction_mean": float(np.mean([s["touching_fraction"] for s in stats])),
        "cover_fraction_mean": float(np.mean([s["cover_fraction"] for s in stats])),
        "nucleus_to_background_median": float(np.median([s["nucleus_to_background"] for s in stats])),
        "pixels_below_0.2_fraction": _band(stats, 0.0, 0.2),
        "pixels_0.4_to_0.9_fraction": _band(stats, 0.4, 0.9),
    }


def _band(stats: list[dict], lo: float, hi: float) -> float:
    """Mean fraction of a field's pixels with intensity / p99.9 in [lo, hi)."""
    edges = stats[0]["hist_bins"]
    inside = (edges[:-1] >= lo - 1e-9) & (edges[1:] <= hi + 1e-9)
    return float(np.mean([np.sum(s["hist_density"][inside] * np.diff(edges)[inside]) for s in stats]))


def _quadrant_counts(labels: np.ndarray) -> list[float]:
    from scipy import ndimage

    ids = np.arange(1, int(labels.max()) + 1)
    cy, cx = np.array(ndimage.center_of_mass(labels > 0, labels, ids)).T
    h, w = labels.shape
    return [float(((cy < h / 2) == top).__and__((cx < w / 2) == left).sum()) * 256 * 256 / (h * w / 4)
            for top in (True, False) for left in (True, False)]


def arguments(argv, doc: str, count: int) -> argparse.Namespace:
    """``--count`` generated fields and the ``--realdata`` folder (shared with benchmarks/fluo_gap.py)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--count", type=int, default=count)
    ap.add_argument("--realdata", default=str(ROOT.parent / "shared" / "realdata"))
    return ap.parse_args(argv)


def load_dsb(realdata: str):
    """DSB2018 img2d + mask2d at the ASSUMED ``DSB_PIXEL_SIZE_UM`` (from ``realdata``, else /work/shared/realdata)."""
    from napari_dmicro.io import load_fluorescence_tiff

    dsb_dir = Path(realdata) / "fluo_stardist_dsb2018_nuclei"
    if not dsb_dir.is_dir():
        dsb_dir = Path("/work/shared/realdata/fluo_stardist_dsb2018_nuclei")
    return load_fluorescence_tiff(dsb_dir / "img2d.tif", dsb_dir / "mask2d.tif", pixel_size_um=DSB_PIXEL_SIZE_UM)


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from napari_dmicro.phantoms import make_fluorescence_field, nuclei_statistics

    args = arguments(argv, __doc__, 32)
    dsb = load_dsb(args.realdata)
    dsb_stats = nuclei_statistics(dsb.image, dsb.labels)
    results = {"pixel_size_um": DSB_PIXEL_SIZE_UM, "eval_seed": EVAL_SEED,
               "DSB2018 img2d": _summary([dsb_stats], _quadrant_counts(dsb.labels))}
    fields = {}
    for style in STYLES:
        fields[style] = [make_fluorescence_field(EVAL_SEED, k, style=style, size_px=256,
                                                 pixel_size_um=DSB_PIXEL_SIZE_UM) for k in range(args.count)]
        results[f"generator {style}"] = _summary([nuclei_statistics(f.image, f.labels) for f in fields[style]])
    pooled = {style: [nuclei_statistics(f.image, f.labels) for f in fields[style]] for style in STYLES}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fluo_statistics.json").write_text(json.dumps(results, indent=2) + "\n")
    _figure(dsb, dsb_stats, fields, pooled, results)
    keys = ("area_px_median", "area_px_p10", "area_px_p90", "count_per_256_field_median", "touching_fraction_mean",
            "cover_fraction_mean", "nucleus_to_background_median", "pixels_below_0.2_fraction",
            "pixels_0.4_to_0.9_fraction")
    print(f"{'':18s}" + "".join(f"{k[:14]:>15s}" for k in keys))
    for name, r in results.items():
        if isinstance(r, dict):
            print(f"{name:18s}" + "".join(f"{r[k]:15.3g}" for k in keys))
    return 0


def _figure(dsb, dsb_stats, fields, pooled, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"DSB2018 img2d": "k", "dsb": "tab:orange", "mixed": "tab:blue"}
    fig, ax = plt.subplots(2, 3, figsize=(15, 9.5))
    ax[0, 0].imshow(dsb.image[:256, :256], cmap="gray", vmax=np.percentile(dsb.image, 99.9))
    ax[0, 0].set_title(f"DSB2018 img2d (measured), top-left 256² (assumed {DSB_PIXEL_SIZE_UM} µm/px)")
    example = fields["dsb"][0]
    ax[0, 1].imshow(example.image, cmap="gray", vmax=np.percentile(example.image, 99.9))
    ax[0, 1].set_title(f"generator 'dsb', seed ({EVAL_SEED}, 0), {example.n_nuclei} nuclei")
    for a in ax[0, :2]:
        a.set_xticks([])
        a.set_yticks([])
    bins = np.linspace(0, 1200, 41)
    ax[0, 2].hist(dsb_stats["areas_px"], bins=bins, density=True, histtype="step", color="k", lw=2,
                  label=f"DSB2018 ({dsb_stats['n_nuclei']} nuclei)")
    for style, stats in pooled.items():
        areas = np.concatenate([s["areas_px"] for s in stats])
        ax[0, 2].hist(areas, bins=bins, density=True, histtype="step", color=colors[style],
                      label=f"generator {style} ({areas.size})")
    ax[0, 2].set_xlabel("nucleus area (px)")
    ax[0, 2].set_ylabel("density")
    ax[0, 2].legend()
    ax[0, 2].set_title("nucleus area")
    dsb_counts = _quadrant_counts(dsb.labels)
    data = [dsb_counts] + [[s["count_per_field"] for s in pooled[st]] for st in pooled]
    ax[1, 0].boxplot(data, showfliers=True)
    for i, d in enumerate(data, start=1):
        ax[1, 0].plot(np.full(len(d), i) + np.random.default_rng(i).uniform(-0.12, 0.12, len(d)), d, ".", alpha=0.6)
    ax[1, 0].set_xticks([1, 2, 3], ["DSB2018\n(4 quadrants)", "generator dsb", "generator mixed"])
    ax[1, 0].set_ylabel("nuclei per 256² field")
    ax[1, 0].set_title("density")
    centres = 0.5 * (dsb_stats["hist_bins"][1:] + dsb_stats["hist_bins"][:-1])
    ax[1, 1].semilogy(centres, dsb_stats["hist_density"], "k", lw=2, label="DSB2018")
    for style, stats in pooled.items():
        ax[1, 1].semilogy(centres, np.mean([s["hist_density"] for s in stats], axis=0), color=colors[style],
                          label=f"generator {style}")
    ax[1, 1].set_xlabel("intensity / 99.9th percentile of the field")
    ax[1, 1].set_ylabel("density")
    ax[1, 1].set_ylim(1e-3, None)
    ax[1, 1].legend()
    ax[1, 1].set_title("intensity histogram")
    names = ["DSB2018 img2d", "generator dsb", "generator mixed"]
    touch = [results[n]["touching_fraction_mean"] for n in names]
    ax[1, 2].bar(range(3), touch, color=["k", colors["dsb"], colors["mixed"]])
    for st_i, st in enumerate(pooled, start=1):
        ax[1, 2].plot(np.full(len(pooled[st]), st_i), [s["touching_fraction"] for s in pooled[st]], "w.", alpha=0.7)
    ax[1, 2].set_xticks(range(3), ["DSB2018", "generator dsb", "generator mixed"])
    ax[1, 2].set_ylabel("fraction of nuclei touching another")
    ax[1, 2].set_title("touching nuclei (bars: mean; dots: fields)")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=80)


if __name__ == "__main__":
    raise SystemExit(main())
