"""What the edge of a simulated field costs, and that dm.simulate no longer pays it.

A field smaller than the model's grid (one decoder window of the learnable Fourier filter, 1024 px for lff-x64)
is padded by ``dm.simulate``. Until 2026-12-07 it was padded with empty background, so every cell cut by the
field's edge ended in a phase step no crop of a larger specimen has, and the filter spread it into the field;
now it is padded by the encoder's ``outside_field`` rule (mirrored), as training crops and larger fields are.
Three ways of imaging each field, cropped back and scored with ``dm.evaluate`` (offset-aligned,
background-referenced) on the field itself:

- ``dish``: the field in an empty dish of its background (``MARGIN_PX`` each side: the rule before 2026-12-07);
- ``default``: ``dm.simulate(field)`` as it is now;
- ``embedded``: the field inside its own mirror image (``MARGIN_PX`` each side), i.e. a specimen that continues.

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
    """Full-FoV and patch PSNR of one field imaged in an empty dish, by dm.simulate, and inside its mirror image."""
    import napari_dmicro as dm
    from napari_dmicro.phase_reference import background_phase_rad

    m = MARGIN_PX
    rows, cols = field.shape
    out = {}
    surroundings = {"dish": np.pad(field, m, constant_values=np.exp(1j * background_phase_rad(field))),
                    "embedded": np.pad(field, m, mode="reflect")}
    for name, big in surroundings.items():
        phase = dm.reconstruct(dm.simulate(big.astype(np.complex64), model), model)[m:m + rows, m:m + cols]
        r = dm.evaluate(phase, field)
        out[f"{name}_full_db"], out[f"{name}_patch_db"] = r.psnr_db, r.patch_psnr_db
    r = dm.evaluate(dm.reconstruct(dm.simulate(field, model), model), field)
    out["default_full_db"], out["default_patch_db"] = r.psnr_db, r.patch_psnr_db
    return out


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
