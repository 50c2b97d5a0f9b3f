"""Time the decoder presets on the CPU: inference per image and one training step.

Usage::

    python benchmarks/bench_decoders.py [--upscale 8] [--presets swinir-fast conv]
                                        [--out benchmarks/results/decoders.md]

For each preset: inference of one camera image (``256/upscale`` side, x``upscale`` output) in
eval mode under ``torch.inference_mode``, and one training step (forward, MSE loss, backward,
Adam step) at batch 16. Medians over several repeats after a warm-up; heavy models stop repeating
once a per-preset time budget is spent (at least ``--min-repeats`` timed repeats). Threads are
fixed with ``torch.set_num_threads``. The markdown table is printed and written to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F

from napari_dmicro.decoders import DECODER_PRESETS, build_decoder, count_parameters, decoder_config

OBJECT_SIDE = 256


def _timed(fn, warmup: int, repeats: int, min_repeats: int, budget_s: float) -> list[float]:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_repeats and time.perf_counter() - start > budget_s:
            break
    return times


def bench_preset(name: str, upscale: int, batch: int, args) -> dict:
    torch.manual_seed(0)
    cfg = decoder_config(name, upscale)
    model = build_decoder(cfg)
    side = OBJECT_SIDE // upscale

    model.eval()
    x1 = torch.rand(1, 1, side, side)

    def infer():
        with torch.inference_mode():
            model(x1)

    t_inf = _timed(infer, 2, args.repeats, args.min_repeats, args.budget)

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    xb = torch.rand(batch, 1, side, side)
    yb = torch.rand(batch, 1, side * upscale, side * upscale)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(xb), yb)
        loss.backward()
        opt.step()

    t_train = _timed(step, 1, args.train_repeats, args.min_repeats, args.budget)
    return dict(
        name=name,
        family=cfg.family,
        upsampler=cfg.upsampler,
        params=count_parameters(model),
        inf_ms=1e3 * statistics.median(t_inf),
        inf_min_ms=1e3 * min(t_inf),
        inf_n=len(t_inf),
        train_s=statistics.median(t_train),
        train_min_s=min(t_train),
        train_n=len(t_train),
        batch=batch,
        side=side,
    )


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def markdown(rows: list[dict], upscale: int, threads: int, batch: int, load_before: str) -> str:
    side = OBJECT_SIDE // upscale
    lines = [
        f"# Decoder timings, x{upscale} ({side}² -> {side * upscale}²)",
        "",
        f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads (requested {threads}), {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}; load average before {load_before}, "
        f"after {_load()} (other processes on the machine inflate the timings)",
        "- inference: one image, eval mode, `torch.inference_mode`; train step: batch "
        f"{batch}, MSE + backward + Adam; median [min] (n = number of timed repeats)",
        "",
        "| preset | family | upsampler | params | inference ms/image | train step s (B"
        f"{batch}) | train images/s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['family']} | {r['upsampler']} | {r['params']:,} | "
            f"{r['inf_ms']:.1f} [{r['inf_min_ms']:.1f}] (n={r['inf_n']}) | "
            f"{r['train_s']:.2f} [{r['train_min_s']:.2f}] (n={r['train_n']}) | "
            f"{r['batch'] / r['train_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upscale", type=int, default=8)
    p.add_argument("--presets", nargs="+", default=list(DECODER_PRESETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=20, help="max timed inference repeats")
    p.add_argument("--train-repeats", type=int, default=7, help="max timed training repeats")
    p.add_argument("--min-repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=30.0, help="seconds per preset and phase")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/decoders.md"))
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    unknown = [n for n in args.presets if n not in DECODER_PRESETS]
    if unknown:
        p.error(f"unknown presets {unknown}; known: {', '.join(DECODER_PRESETS)}")
    rows = []
    load_before = _load()
    for name in args.presets:
        r = bench_preset(name, args.upscale, args.batch, args)
        print(
            f"{name}: {r['params']:,} params, {r['inf_ms']:.1f} ms/image, "
            f"{r['train_s']:.2f} s/step",
            file=sys.stderr,
            flush=True,
        )
        rows.append(r)
    text = markdown(rows, args.upscale, args.threads, args.batch, load_before)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
