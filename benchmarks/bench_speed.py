"""Speed on this machine, side by side in one run: reconstruction, the paper's decoder, simulation.

    python benchmarks/bench_speed.py [--repeats 5]

All on the CPU with 2 torch threads, one process, after a warm-up call; median [min] of ``--repeats``.

1. Full FoV 789² reconstruction (``dm.reconstruct``, blended windows, default overlap) with the shipped
   ``lff-x64`` and, on the same measurement in the same run, the same pipeline with the paper's decoder
   configuration (SwinIR embed 180, 6 × 6 blocks, progressive PixelShuffle; untrained weights: the
   time of a forward pass does not depend on their values).
2. Simulation throughput (fields per second) of a 789² field: LFF full FoV (one linear convolution) and
   the 5-layer PhaseD2NN (tile by tile through its 256² aperture).
3. Reconstruction time against field size (256² … 2048²) for ``lff-x64``.
Writes ``benchmarks/results/speed.json`` with the machine and load averages before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import write_result  # noqa: E402

SIZES = (256, 512, 789, 1024, 2048)


def timed(fn, repeats: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "n": repeats}


def phantom(size: int, seed: int = 3) -> np.ndarray:
    from napari_dmicro.phantoms import make_field

    return make_field(seed, size_px=size)


def paper_decoder_model(model):
    """The same optics with the paper's decoder configuration (random weights; timing only)."""
    from napari_dmicro.decoders import decoder_config
    from napari_dmicro.system import Microscope

    config = model.config.model_copy(update={"decoder": decoder_config("swinir-paper",
                                                                        model.config.encoder.detector.binning)})
    paper = Microscope(config, init="all_pass")
    paper.encoder.load_state_dict(model.encoder.state_dict())
    return paper.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import napari_dmicro as dm
    from napari_dmicro.decoders import count_parameters

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    load_before = os.getloadavg()
    lff = dm.load_model("lff-x64")
    d2nn = dm.load_model("d2nn-x64")
    paper = paper_decoder_model(lff)
    field = phantom(789)
    meas = dm.simulate(field, lff)
    result = {"machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_before": load_before},
              "command": "python benchmarks/bench_speed.py " + " ".join(argv or sys.argv[1:])}
    ours = timed(lambda: dm.reconstruct(meas, lff), args.repeats)
    print(f"lff-x64 789² reconstruction: {ours}", flush=True)
    theirs = timed(lambda: dm.reconstruct(meas, paper), max(2, args.repeats // 2))
    print(f"paper decoder 789² reconstruction: {theirs}", flush=True)
    result["reconstruct_789"] = {
        "lff-x64": {**ours, "decoder_params": count_parameters(lff.decoder)},
        "paper_decoder": {**theirs, "decoder_params": count_parameters(paper.decoder)},
        "speedup": theirs["median_s"] / ours["median_s"],
    }
    sim_lff = timed(lambda: dm.simulate(field, lff), args.repeats)
    sim_d2nn = timed(lambda: dm.simulate(field, d2nn), max(2, args.repeats // 2))
    result["simulate_789"] = {
        "lff": {**sim_lff, "fields_per_s": 1 / sim_lff["median_s"]},
        "d2nn": {**sim_d2nn, "fields_per_s": 1 / sim_d2nn["median_s"]},
    }
    print(f"simulation: {result['simulate_789']}", flush=True)
    result["reconstruct_vs_size"] = {}
    for size in SIZES:
        m = dm.simulate(phantom(size), lff)
        r = timed(lambda m=m: dm.reconstruct(m, lff), 3 if size <= 1024 else 1)
        result["reconstruct_vs_size"][str(size)] = r
        print(f"{size}²: {r}", flush=True)
    result["machine"]["load_average_after"] = os.getloadavg()
    write_result("speed.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
