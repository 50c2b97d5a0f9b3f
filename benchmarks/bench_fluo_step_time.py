"""CPU time of one training step of the fluorescence presets, on 1 thread: what their budgets are set from.

    PYTHONPATH=src python benchmarks/bench_fluo_step_time.py [PRESET ...]

For each preset (default: fluo-x4, fluo-x16, fluo-x64, fluo-seg-x256, fluo-seg-full): its first stage's batch of
generated 256² crops measured through its patterns (soft when they learn, binary when fixed) with differentiable
noise, decoded, L1 (+ Dice/BCE when the decoder has a segmentation head, so a seg preset is timed at its dearest
stage), backward, Adam step; the median process CPU time of 3 steps after a warm-up. CPU time, not wall time: on
a shared machine the wall time depends on the load; the presets' budgets convert it with the measured ratio of the
finished fluo-x64 run (wall s per step on one busy thread / CPU s per step). Writes
benchmarks/results/fluo_step_times.json.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_dmicro.phantoms.fluorescence import make_fluorescence_field
from napari_dmicro.training import train_config
from napari_dmicro.training.fluo_data import normalise_unit_range
from napari_dmicro.training.initial import initial_microscope
from napari_dmicro.training.losses import SegmentationLoss, segmentation_targets

RESULTS = Path(__file__).parent / "results" / "fluo_step_times.json"
DEFAULT = ("fluo-x4", "fluo-x16", "fluo-x64", "fluo-seg-x256", "fluo-seg-full")


def step_cpu_s(name: str, images: torch.Tensor, labels: np.ndarray) -> dict:
    cfg = train_config(name)
    stage = cfg.stages[0]
    patch, batch = cfg.data.patch_px, stage.batch_size
    x, lab = images[:batch, :patch, :patch], labels[:batch, :patch, :patch]
    model = initial_microscope(cfg.system, 0, cfg.optics_init).train()
    learn = cfg.system.encoder.patterns.learnable and not stage.freeze_optics
    with torch.no_grad():
        model.fit_measurement_normalization(model.measure(x, binary=True))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    seg = SegmentationLoss() if model.has_seg_head else None
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(4):
        t0 = time.process_time()
        opt.zero_grad()
        pred, logits = model.decode_all(model.measure(x, noise="differentiable", generator=gen, binary=not learn))
        loss = (pred - x).abs().mean()
        if seg is not None:
            loss = loss + seg(logits, segmentation_targets(lab))[0]
        loss.backward()
        opt.step()
        times.append(time.process_time() - t0)
    return {"cpu_s_per_step": round(statistics.median(times[1:]), 4), "batch": batch, "patch_px": patch,
            "steps": {s.name: s.steps for s in cfg.stages}}


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or DEFAULT
    torch.set_num_threads(1)
    fields = [make_fluorescence_field(7, k, size_px=256) for k in range(8)]
    images = torch.from_numpy(np.stack([normalise_unit_range(f.image) for f in fields]))
    labels = np.stack([f.labels for f in fields])
    out = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": 1,
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, "presets": {}}
    for name in names:
        out["presets"][name] = step_cpu_s(name, images, labels)
        print(name, out["presets"][name], flush=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
