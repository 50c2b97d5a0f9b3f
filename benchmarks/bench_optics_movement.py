"""Why do learned optics barely move? Gradient and Adam-update sizes of the LFF masks, and movement after a
short stage 1 under the paper's objective vs the joint objective.

    dmicro phantom --out /tmp/optx/fields --count 8 --size 512 --seed 3
    PYTHONPATH=src python benchmarks/bench_optics_movement.py /tmp/optx/fields --steps 40

Prints (and writes benchmarks/results/optics_movement*.json): per objective, the rms gradient of the phase
and amplitude logits (inside the pupil, and above NA 0.25; after the optional gradient smoothing), the mean
|Adam update| per step and their sum, the training loss over the first and last 5 steps, and the optics
movement after the run (:func:`napari_dmicro.optics.report.optics_movement`). A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_dmicro.optics.grids import frequency_grid
from napari_dmicro.optics.report import light_throughput, optics_movement
from napari_dmicro.training import data as D
from napari_dmicro.training.initial import initial_microscope, seed_of
from napari_dmicro.training.presets import train_config
from napari_dmicro.training.stages import build_stage
from napari_dmicro.training.trainer import Trainer


def _masks(model):
    optics = model.encoder.optics
    n = optics.config.filter_size_px
    fy, fx = frequency_grid((n, n), optics.config.grid.pixel_size_um, centered=True)
    inside = optics.pupil > 0
    high = inside & ((fx ** 2 + fy ** 2).sqrt() * optics.config.grid.wavelength_um > 0.25)
    return optics, inside, high


def run(data: Path, steps: int, objective: str, optics_init: str, optics_lr: float, out: Path,
        smoothing_px: float = 0.0) -> dict:
    """``objective``: a stage-1 objective, or "end_to_end" (stage 3 of the shipped lff-x64, fine-tuned)."""
    if objective == "end_to_end":
        cfg = train_config("lff-x64", stages=(3,), steps={3: steps}, init="lff-x64")
        stage_update = dict(val_every=10 ** 6, optics_lr=optics_lr, optics_grad_smoothing_px=smoothing_px)
        number = 3
    else:
        # the joint objective trains a decoder too: the decoder at the stage-2 rate of the preset (1e-3)
        lr = 1e-3 if objective == "joint" else optics_lr
        cfg = train_config("lff-x64", stages=(1,), steps={1: steps}, optics_init=optics_init)
        stage_update = dict(val_every=10 ** 6, optics_objective=objective, lr=lr, optics_lr=optics_lr,
                            optics_grad_smoothing_px=smoothing_px)
        number = 1
    cfg = cfg.model_copy(update={"stages": (cfg.stages[0].model_copy(update=stage_update),)})
    cfg = type(cfg).model_validate(cfg.model_dump())
    trainer = Trainer(cfg, data, out)
    out.mkdir(parents=True, exist_ok=True)
    trainer._prepare()
    start = copy.deepcopy(trainer.model)
    stage = build_stage(cfg.stages[0], trainer)
    stage.setup()
    groups, _ = stage.param_groups(0, steps)
    opt = torch.optim.Adam(groups)
    optics, inside, high = _masks(trainer.model)
    losses = []
    stats = {"grad_phase_rms": [], "grad_phase_rms_high_na": [], "grad_amp_rms": [], "update_phase_mean_abs": []}
    t0 = time.perf_counter()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = stage.config.lr_at(step, steps, g["base_lr"])
        rng = D.step_rng(cfg.seed, number, step)
        torch.manual_seed(seed_of(cfg.seed, number, step, 1))
        noise = torch.Generator().manual_seed(seed_of(cfg.seed, number, step, 2))
        opt.zero_grad(set_to_none=True)
        loss, _ = stage.loss(rng, noise, None)
        loss.backward()
        losses.append(float(loss.detach()))
        stage.after_backward(None)
        before = optics.phase_rad.detach().clone()
        gp, ga = optics.phase_rad.grad, optics.amplitude_logit.grad
        stats["grad_phase_rms"].append(float(gp[inside].pow(2).mean().sqrt()))
        stats["grad_phase_rms_high_na"].append(float(gp[high].pow(2).mean().sqrt()))
        stats["grad_amp_rms"].append(float(ga[inside].pow(2).mean().sqrt()))
        opt.step()
        stats["update_phase_mean_abs"].append(float((optics.phase_rad.detach() - before)[inside].abs().mean()))
    init = initial_microscope(cfg.system, cfg.seed, cfg.optics_init)
    result = {"objective": objective, "optics_init": optics_init, "optics_lr": optics_lr,
              "optics_grad_smoothing_px": smoothing_px,
              "steps": steps, "wall_s": round(time.perf_counter() - t0, 1),
              **{k: float(np.median(v)) for k, v in stats.items()},
              "update_phase_sum_abs_mean": float(np.sum(stats["update_phase_mean_abs"])),
              "loss_first5": float(np.mean(losses[:5])), "loss_last5": float(np.mean(losses[-5:])),
              "movement": optics_movement(trainer.model, init),
              "movement_in_this_run": optics_movement(trainer.model, start),
              "throughput_blank": light_throughput(trainer.model.encoder)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--work", type=Path, default=Path("/tmp/optx/runs"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "optics_movement.json")
    parser.add_argument("--only", choices=("phase_intensity", "joint", "end_to_end"), action="append",
                        help="run only these objectives (default: all)")
    parser.add_argument("--smoothing-px", type=float, default=0.0, help="optics_grad_smoothing_px of every run")
    args = parser.parse_args()
    runs = [("phase_intensity", "random", 0.1), ("joint", "random", 0.1), ("joint", "knife_edge", 0.1),
            ("end_to_end", "random", 5e-4), ("end_to_end", "random", 5e-2)]
    runs = [r for r in runs if not args.only or r[0] in args.only]
    results = []
    for objective, init, optics_lr in runs:
        r = run(args.data, args.steps, objective, init, optics_lr,
                args.work / f"{objective}-{init}-{optics_lr:g}-{args.smoothing_px:g}", args.smoothing_px)
        print(json.dumps(r))
        results.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.only or args.smoothing_px:
        tag = "_".join(args.only or ["all"]) + (f"_smooth{args.smoothing_px:g}" if args.smoothing_px else "")
        args.out = args.out.with_name(f"{args.out.stem}_{tag}.json")
    args.out.write_text(json.dumps({"command": " ".join(["bench_optics_movement.py", *sys.argv[1:]]),
                                    "data": f"{args.data} (dmicro phantom --count 8 --size 512 --seed 3)",
                                    "runs": results}, indent=2))


if __name__ == "__main__":
    main()
