"""How much the edge of a simulated field costs: a field smaller than the model's grid (one decoder window of
the learnable Fourier filter, 1024 px for lff-x64) is padded by ``dm.simulate`` with empty background, so every
cell cut by the field's edge ends in an artificial phase step that no crop of a larger specimen has, and the
filter spreads it into the field. The same fields simulated as part of a specimen that continues beyond them
(mirrored 256 px on every side: the encoder's own ``outside_field="reflect"`` rule) and cropped back show what
that padding costs. Scored with ``dm.evaluate`` (offset-aligned, background-referenced) on the field itself.

    python benchmarks/bench_field_edges.py --data /work/data/real-train --models lff-x64,lff-x256,d2nn-x64

The fields are each model's card test split (never trained on). Writes benchmarks/results/field_edges.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_quality import set_threads  # noqa: E402

MARGIN_PX = 256


def score_pair(field: np.ndarray, model) -> dict:
    """Full-FoV and patch PSNR of one field simulated alone (background-padded) and inside its mirror image."""
    import napari_dmicro as dm

    alone = dm.evaluate(dm.reconstruct(dm.simulate(field, model), model), field)
    m = MARGIN_PX
    embedded = np.pad(field, m, mode="reflect")
    inside = dm.reconstruct(dm.simulate(embedded, model), model)[m:m + field.shape[0], m:m + field.shape[1]]
    within = dm.evaluate(inside, field)
    return {"alone_full_db": alone.psnr_db, "alone_patch_db": alone.patch_psnr_db,
            "embedded_full_db": within.psnr_db, "embedded_patch_db": within.patch_psnr_db}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the folder the models' card test fields are in")
    parser.add_argument("--models", default="lff-x64,lff-x256,d2nn-x64")
    parser.add_argument("--fields", type=int, default=6, help="first N card test fields")
    args = parser.parse_args(argv)

    import napari_dmicro as dm
    from napari_dmicro.io.fields import read_field

    set_threads()
    t0 = time.perf_counter()
    out = {"command": "python benchmarks/bench_field_edges.py " + " ".join(argv or sys.argv[1:]),
           "margin_px": MARGIN_PX, "models": {}}
    for name in args.models.split(","):
        model = dm.load_model(name)
        names = (model.card.get("data") or {}).get("splits", {}).get("test", [])[:args.fields]
        rows = {n: score_pair(np.asarray(read_field(Path(args.data) / n).data), model) for n in names}
        mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
        out["models"][name] = {"fields": rows, "mean": mean}
        print(name, {k: round(v, 2) for k, v in mean.items()}, flush=True)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    (HERE / "results" / "field_edges.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
