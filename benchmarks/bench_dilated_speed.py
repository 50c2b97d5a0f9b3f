"""Time of a 789² reconstruction with the lff-x64 geometry and the (untrained) conv-dilated decoder.

    PYTHONPATH=src python benchmarks/bench_dilated_speed.py

Prints and writes (benchmarks/results/dilated_speed.json, with the date, machine and load average) the
median of 5 timed calls of ``api.reconstruct`` (after one warm-up) on 2 threads for the
conv-dilated decoder and, as a reference measured in the same run (the machine may be shared), the
swinir-fast decoder of the shipped lff-x64 (0.56 s on an idle machine, docs/benchmarks.md). The camera
image is simulated from a phantom field (seed 12345). The decoder's weights do not change its cost.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from napari_dmicro import api
from napari_dmicro.decoders import decoder_config
from napari_dmicro.phantoms import make_field
from napari_dmicro.training.initial import initial_microscope
from napari_dmicro.training.presets import get_preset

RESULTS = Path(__file__).parent / "results" / "dilated_speed.json"


def main() -> None:
    torch.set_num_threads(2)
    load_before = os.getloadavg()[0]
    result = {"command": "python benchmarks/bench_dilated_speed.py",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
              "cpus": os.cpu_count(), "torch": torch.__version__, "threads": 2, "load_average_before": load_before,
              "field_px": 789, "decoders": {}}
    base = get_preset("lff-x64").system("cpu")
    field = make_field(12345, size_px=789)
    for name in ("conv-dilated", "swinir-fast"):
        system = base.model_copy(update={"decoder": decoder_config(name, 8)})
        model = initial_microscope(system, 0).eval()
        meas = api.simulate(field, model)
        api.reconstruct(meas, model)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            api.reconstruct(meas, model)
            times.append(time.perf_counter() - t0)
        print(f"789² reconstruction, lff-x64 geometry, {name} decoder: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f} s) on 2 threads", flush=True)
        result["decoders"][name] = {"median_s": statistics.median(times), "min_s": min(times), "n": len(times)}
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
