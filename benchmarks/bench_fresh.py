"""The shipped models on fresh phantom fields: a larger test set, to put error bars on the test numbers.

    python benchmarks/bench_fresh.py [--data /tmp/dmicro_fresh_fields] [--count 32] [--seed 2]

The 8 held-out fields of the training split (bench_quality.py) are few, and the phantoms' cell density
varies a lot from field to field (a dense field scores below 20 dB, a sparse one near 38 dB with the
same model), so their mean carries a 95 % uncertainty of about ±6 dB. This script draws ``--count`` new fields
from the same generator with another seed (``dmicro phantom --seed 2``: SeedSequence([2, k]), disjoint
from the training data's SeedSequence([1, k])), evaluates every shipped model exactly as
bench_quality.py does (one measurement per field, blended windows, 768² region, φ/2π, data range 1;
the ``-noisy`` models at 10⁴ photons, σ 6 e⁻) and reports means with 95 % intervals over fields, and
each field's cell-covered fraction (phase > 0.5 rad) to show how quality depends on cell density.
Writes ``benchmarks/results/quality_fresh.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import NOISE, REGION, evaluate_model, machine, write_result  # noqa: E402


def ensure_fresh(data: Path, count: int, seed: int) -> list[Path]:
    paths = [data / f"phantom_{k:04d}.zarr" for k in range(count)]
    if all(p.exists() for p in paths):
        return paths
    subprocess.run([sys.executable, "-m", "napari_dmicro.cli", "phantom", "--out", str(data), "--count", str(count),
                    "--seed", str(seed), "--overwrite"], check=True)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/dmicro_fresh_fields")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--models", default=None, help="comma-separated shipped models (default: all)")
    args = parser.parse_args(argv)
    if args.seed == 1:
        raise SystemExit("--seed 1 is the training data's seed; fresh fields need another seed")

    import napari_dmicro as dm
    from napari_dmicro.pretrained import shipped_models

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    paths = ensure_fresh(Path(args.data), args.count, args.seed)
    names = args.models.split(",") if args.models else list(shipped_models())
    t0 = time.perf_counter()
    result = {"machine": machine(), "region_px": REGION, "noise": NOISE, "fields": args.count,
              "phantom_seed": args.seed, "models": {},
              "command": "python benchmarks/bench_fresh.py " + " ".join(argv or sys.argv[1:])}
    from napari_dmicro.io.fields import read_field
    from napari_dmicro.phantoms import field_statistics

    # how much of each field's evaluated region is covered by cells (phase > 0.5 rad): the main reason
    # one field scores far lower than another
    result["cell_area_fraction"] = [
        field_statistics(np.asarray(read_field(p).data)[:REGION, :REGION])["cell_area_fraction"] for p in paths]
    for name in names:
        model = dm.load_model(name)
        noisy = name.endswith("-noisy")
        entry = {"compression": model.config.compression, "optics": model.config.optics_kind,
                 "condition": "10⁴ photons, σ 6 e⁻" if noisy else "noise free"}
        entry.update(evaluate_model(model, paths, NOISE["photons"], NOISE["read_noise"]) if noisy
                     else evaluate_model(model, paths))
        result["models"][name] = entry
        print(f"{name}: patch {entry['patch_psnr_db']:.2f} ± {entry['ci95']['patch_psnr_db']:.2f} dB, full "
              f"{entry['full_psnr_db']:.2f} ± {entry['ci95']['full_psnr_db']:.2f} dB", flush=True)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    write_result("quality_fresh.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
