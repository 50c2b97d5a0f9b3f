"""Time of a 1024² fluorescence reconstruction by the locality decoder on 2 threads.

    PYTHONPATH=src python benchmarks/bench_fluo_decoder.py

For the ``locality`` preset (T = 4 patterns) at x64 (bin 16: camera 64×64×4), x256 (bin 32: 32×32×4) and
x1024 (bin 64: 16×16×4), and ``locality-seg`` at x64, after one warm-up call: the median and minimum wall time
of 5 calls and the process CPU time per call (all threads), with torch.set_num_threads(2). On a shared machine
the wall time grows with the load (recorded before and after); the CPU time per call is the work done, so
the wall time on 2 idle cores lies between CPU/2 (perfect use of both threads) and CPU (one thread). Writes
benchmarks/results/fluo_decoder_speed.json. The decoder's weights do not change its cost (untrained here).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from napari_dmicro.decoders import build_decoder, count_parameters, decoder_config

RESULTS = Path(__file__).parent / "results" / "fluo_decoder_speed.json"
SIDE_PX = 1024
CASES = (("locality", 16), ("locality", 32), ("locality", 64), ("locality-seg", 16))


def main() -> None:
    torch.set_num_threads(2)
    result = {"command": "python benchmarks/bench_fluo_decoder.py",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
              "cpus": os.cpu_count(), "torch": torch.__version__, "threads": 2,
              "load_average_before": os.getloadavg()[0], "output_px": SIDE_PX, "cases": []}
    for name, bin_px in CASES:
        config = decoder_config(name, bin_px)
        torch.manual_seed(0)
        model = build_decoder(config).eval()
        y = torch.randn(1, config.in_chans, SIDE_PX // bin_px, SIDE_PX // bin_px)
        walls, cpus = [], []
        with torch.inference_mode():
            out = model(y)
            for _ in range(5):
                c0, t0 = time.process_time(), time.perf_counter()
                model(y)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
        case = {"preset": name, "bin_px": bin_px, "compression": config.compression,
                "camera": list(y.shape[1:]), "output": list(out.shape[1:]),
                "parameters": count_parameters(model), "median_wall_s": statistics.median(walls),
                "min_wall_s": min(walls), "median_cpu_s": statistics.median(cpus)}
        print(f"{name} x{config.compression} (camera {tuple(y.shape[1:])} → {tuple(out.shape[1:])}), "
              f"{case['parameters']:,} parameters: wall median {case['median_wall_s']:.3f} s "
              f"(min {case['min_wall_s']:.3f} s), CPU {case['median_cpu_s']:.3f} s per call on 2 threads",
              flush=True)
        result["cases"].append(case)
    result["load_average_after"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
