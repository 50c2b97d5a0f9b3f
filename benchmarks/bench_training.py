"""Training speed and time-to-quality of a preset on phantom fields (a benchmark, not a test).

    python benchmarks/bench_training.py --preset lff-x64 --data /tmp/bench_fields --run /tmp/run_lff64

Generates the phantom data set if ``--data`` does not exist (``--fields`` 789² fields, seed 1), runs
``dmicro train`` in-process with the preset's budget, and writes
``benchmarks/results/training_<preset>_<budget>.json`` with the machine, per-stage steps per second,
the validation curve against wall time, the time at which validation PSNR first reached each
threshold, and the final test metrics. ``benchmarks/report.py`` turns the JSON files into
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS_DB = (20.0, 25.0, 27.0, 28.0, 29.0, 30.0)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def ensure_data(path: Path, count: int) -> None:
    if path.exists() and any(path.iterdir()):
        return
    subprocess.run([sys.executable, "-m", "napari_dmicro.cli", "phantom", "--out", str(path), "--count",
                    str(count), "--seed", "1"], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lff-x64")
    parser.add_argument("--budget", default="cpu", choices=("cpu", "paper"))
    parser.add_argument("--data", default="/tmp/dmicro_bench_fields")
    parser.add_argument("--fields", type=int, default=80, help="phantom fields to generate if --data is empty")
    parser.add_argument("--run", default=None, help="run folder (default: /tmp/dmicro_bench_<preset>)")
    parser.add_argument("--photons", type=float, default=None)
    parser.add_argument("--read-noise", type=float, default=0.0)
    parser.add_argument("--init", default=None)
    parser.add_argument("--decoder", default=None, help="another decoder (as dmicro train --decoder)")
    parser.add_argument("--stages", default="1,2,3")
    parser.add_argument("--steps", default=None, help="stage lengths, e.g. 2=800,3=400 (as dmicro train)")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    from napari_dmicro.cli import parse_stage_steps
    from napari_dmicro.training import Trainer, train_config

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data = Path(args.data)
    ensure_data(data, args.fields)
    run = Path(args.run or f"/tmp/dmicro_bench_{args.preset}{args.tag}")
    stages = tuple(int(s) for s in args.stages.split(","))
    config = train_config(args.preset, budget=args.budget, stages=stages, max_photons=args.photons,
                          read_noise_e=args.read_noise, init=args.init, decoder=args.decoder,
                          steps=parse_stage_steps(args.steps) if args.steps else None)
    record = {"preset": args.preset, "budget": args.budget, "machine": machine(), "data": str(data),
              "run": str(run), "photons": args.photons, "read_noise_e": args.read_noise, "init": args.init,
              "decoder": config.system.decoder.family if args.decoder else None, "decoder_preset": args.decoder,
              "stages": {}, "validation": [], "test": None,
              "command": "python benchmarks/bench_training.py " + " ".join(argv or sys.argv[1:])}
    t0 = time.perf_counter()
    stage_t0 = {}
    for event in Trainer(config, data, run, resume=args.resume, command=record["command"]).run():
        now = time.perf_counter() - t0
        if event.kind == "stage_start":
            stage_t0[event.stage] = (now, event.step)
            record["stages"][event.stage] = {"steps": event.total_steps}
        elif event.kind == "stage_end":
            start, first = stage_t0[event.stage]
            s = record["stages"][event.stage]
            s.update(wall_s=round(now - start, 1), steps_per_s=round((event.total_steps - first) / max(now - start, 1e-9), 3))
        elif event.kind == "validation":
            record["validation"].append({"stage": event.stage, "step": event.step, "elapsed_s": round(now, 1),
                                         **{k: v for k, v in event.metrics.items() if isinstance(v, (int, float))}})
            print(f"{now:8.1f}s {event.describe()}", flush=True)
        elif event.kind == "test":
            record["test"] = event.metrics
        elif event.kind in ("cancelled", "done"):
            print(event.describe(), flush=True)
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    curve = [v for v in record["validation"] if "psnr_db" in v]
    record["time_to_psnr_s"] = {f"{t:g}": next((v["elapsed_s"] for v in curve if v["psnr_db"] >= t), None)
                                for t in THRESHOLDS_DB}
    best = max(curve, key=lambda v: v["psnr_db"]) if curve else None
    record["best_validation"] = best
    record["machine"]["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"training_{args.preset}_{args.budget}{args.tag}.json"
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
