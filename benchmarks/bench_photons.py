"""Reconstruction quality against the photon budget, for the noise-free and the noise-robust models.

    python benchmarks/bench_photons.py --data /tmp/bench_fields

Each shipped model of ``--models`` on the held-out test fields (as bench_quality.py: one measurement
per field, exact Poisson + Gaussian read noise σ 6 e⁻, the brightest camera pixel at ``photons``, seeded
per field), at 10², 10³, 10⁴, 10⁵ photons and noise free. Writes ``benchmarks/results/photons.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import ensure_data, evaluate_model, machine, test_fields, write_result  # noqa: E402

PHOTONS = (1e2, 1e3, 1e4, 1e5, None)
READ_NOISE_E = 6.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/dmicro_bench_fields")
    parser.add_argument("--models", default="lff-x64,lff-x64-noisy,d2nn-x64,d2nn-x64-noisy")
    parser.add_argument("--fields", type=int, default=8, help="use the first N test fields (8)")
    args = parser.parse_args(argv)

    import napari_dmicro as dm

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data = Path(args.data)
    ensure_data(data)
    result = {"machine": machine(), "read_noise_e": READ_NOISE_E, "models": {}, "fields": args.fields,
              "command": "python benchmarks/bench_photons.py " + " ".join(argv or sys.argv[1:])}
    t0 = time.perf_counter()
    for name in args.models.split(","):
        model = dm.load_model(name)
        paths = test_fields(model, data)[: args.fields]
        rows = []
        for photons in PHOTONS:
            noise = READ_NOISE_E if photons is not None else 0.0
            rows.append({"photons": photons, "read_noise_e": noise,
                         **evaluate_model(model, paths, photons, noise)})
            print(f"{name} @ {photons}: {rows[-1]}", flush=True)
        result["models"][name] = rows
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    write_result("photons.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
