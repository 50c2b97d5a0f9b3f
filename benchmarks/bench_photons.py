"""Reconstruction quality against the photon budget, for the noise-free and the noise-robust models.

    python benchmarks/bench_photons.py --data /work/data/real-train --fields 3

Each shipped model of ``--models`` on the first ``--fields`` test fields its card names in ``--data``
(the folder it was trained on; as bench_quality.py: one measurement per field, exact Poisson + Gaussian read noise σ 6 e⁻, the brightest camera pixel at ``photons``, seeded
per field), at 10², 10³, 10⁴, 10⁵ photons and noise free. Writes ``benchmarks/results/photons.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import (  # noqa: E402
    checkpoint_sha256,
    ensure_data,
    evaluate_model,
    machine,
    phantom_command,
    region_px,
    set_threads,
    test_fields,
    write_result,
)

PHOTONS = (1e2, 1e3, 1e4, 1e5, None)
READ_NOISE_E = 6.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/dmicro_bench_fields")
    parser.add_argument("--models", default="lff-x64,lff-x64-noisy,d2nn-x64,d2nn-x64-noisy")
    parser.add_argument("--fields", type=int, default=8, help="use the first N test fields (8)")
    args = parser.parse_args(argv)

    import napari_dmicro as dm

    set_threads()
    data = Path(args.data)
    ensure_data(data)
    result = {"machine": machine(), "read_noise_e": READ_NOISE_E, "models": {}, "data_dir": str(data),
              "checkpoints": {}, "test_fields": {},
              "command": "python benchmarks/bench_photons.py " + " ".join(argv or sys.argv[1:])}
    t0 = time.perf_counter()
    for name in args.models.split(","):
        model = dm.load_model(name)
        paths = test_fields(model, data)[: args.fields]
        result["checkpoints"][name] = checkpoint_sha256(name)
        result["test_fields"][name] = [p.name for p in paths]
        result["region_px"] = region_px(paths)
        result["data_command"] = phantom_command(paths)
        rows = []
        for photons in PHOTONS:
            noise = READ_NOISE_E if photons is not None else 0.0
            rows.append({"photons": photons, "read_noise_e": noise,
                         **evaluate_model(model, paths, photons, noise)})
            print(f"{name} @ {photons}: {rows[-1]}", flush=True)
        result["models"][name] = rows
    result["fields"] = min(len(v) for v in result["test_fields"].values())
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    write_result("photons.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
