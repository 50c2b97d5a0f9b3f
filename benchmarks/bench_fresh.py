"""The shipped models on fresh phantom fields: a larger test set, to put error bars on the test numbers.

    python benchmarks/bench_fresh.py --data /work/data/real-test --count 8 --seed 101 --style realistic --size 512

The held-out fields of the training split (bench_quality.py) are few, and the phantoms' cell density
varies a lot from field to field, so their mean carries a wide 95 % interval. This script evaluates the
first ``--count`` fields of a folder drawn with another seed (``dmicro phantom --seed 101``:
SeedSequence([101, k]), disjoint from the training data's seeds 1 and 2; drawn with ``--style`` and
``--size`` when the folder is missing), every shipped model exactly as bench_quality.py does (one
measurement per field, blended windows, top-left square of whole 256² patches, φ/2π, data range 1;
the ``-noisy`` models at 10⁴ photons, σ 6 e⁻) and reports means with 95 % intervals over fields, and
each field's cell-covered fraction (phase > 0.5 rad) to show how quality depends on cell density.
Writes ``benchmarks/results/quality_fresh.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import (  # noqa: E402
    NOISE,
    checkpoint_sha256,
    evaluate_model,
    machine,
    phantom_command,
    phase_models,
    region_px,
    scored,
    set_threads,
    write_result,
)


def ensure_fresh(data: Path, count: int, seed: int, style: str | None = None, size: int | None = None) -> list[Path]:
    paths = [data / f"phantom_{k:04d}.zarr" for k in range(count)]
    if all(p.exists() for p in paths):
        return paths
    extra = (["--style", style] if style else []) + (["--size", str(size)] if size else [])
    subprocess.run([sys.executable, "-m", "napari_dmicro.cli", "phantom", "--out", str(data), "--count", str(count),
                    "--seed", str(seed), "--overwrite", *extra], check=True)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/dmicro_fresh_fields")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--style", default=None, help="phantom style of the folder (`dmicro phantom --style`)")
    parser.add_argument("--size", type=int, default=None, help="field side (px) of the folder's phantoms")
    parser.add_argument("--models", default=None, help="comma-separated shipped models (default: all)")
    args = parser.parse_args(argv)
    if args.seed in (1, 2):
        raise SystemExit("--seed 1 and 2 are the training data's seeds; fresh fields need another seed")

    import napari_dmicro as dm

    set_threads()
    paths = ensure_fresh(Path(args.data), args.count, args.seed, args.style, args.size)
    names = args.models.split(",") if args.models else phase_models()
    t0 = time.perf_counter()
    result = {"machine": machine(), "noise": NOISE, "fields": args.count,
              "phantom_seed": args.seed, "phantom_style": args.style, "data_dir": args.data,
              "region_px": region_px(paths), "data_command": phantom_command(paths), "checkpoints": {}, "models": {},
              "command": "python benchmarks/bench_fresh.py " + " ".join(argv or sys.argv[1:])}
    from napari_dmicro.io.fields import read_field
    from napari_dmicro.phantoms import field_statistics

    # how much of each field's evaluated region is covered by cells (phase > 0.5 rad): the main reason
    # one field scores far lower than another
    result["cell_area_fraction"] = [
        field_statistics(scored(np.asarray(read_field(p).data)))["cell_area_fraction"] for p in paths]
    for name in names:
        model = dm.load_model(name)
        result["checkpoints"][name] = checkpoint_sha256(name)
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
