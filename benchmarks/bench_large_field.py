"""Peak memory and time of `dmicro simulate`, `reconstruct` and `evaluate` of a large field of view.

Usage::

    python benchmarks/bench_large_field.py [--size 10000] [--field smooth|phantom] [--compression 64]
        [--filter-px 256] [--decoder swinir-fast] [--overlap N] [--threads N] [--limit-gb 2]
        [--workdir DIR] [--keep] [--out benchmarks/results/large_field.md]

Steps, each in its own subprocess (so each has its own peak RSS, measured by the parent with
``os.wait4``, i.e. the child's ``ru_maxrss``; the table also gives ``getrusage(RUSAGE_CHILDREN)``, the
maximum over all steps):

1. ``make-field``: a ``size × size`` complex64 field written blockwise (2000² blocks) to a zarr store
   in a temporary directory. ``--field smooth`` (default, cheap): unit amplitude and a smooth random
   phase, a sum of 12 random plane-wave sinusoids (periods 20–400 px) around π, computed per block
   from global coordinates (continuous across blocks). ``--field phantom``: tiles of
   ``napari_dmicro.phantoms.make_field(seed=k, size_px=(2000, 2000))`` (realistic cells, slow; tile
   seams are visible but irrelevant for a memory/time benchmark).
2. ``make-model``: a checkpoint of an LFF x``compression`` microscope (random ``filter_px`` filter,
   randomly initialised ``--decoder``: weights do not matter for memory and time).
3. ``simulate``: ``dmicro simulate field.zarr -o meas.zarr --model model.safetensors --photons 1e4``
   (the field is read lazily, block by block).
4. ``reconstruct``: ``dmicro reconstruct meas.zarr -o phase.zarr --model model.safetensors`` (the phase
   is streamed band by band into the store).
5. ``evaluate``: ``dmicro evaluate phase.zarr --reference field.zarr --ssim-map ssim.zarr`` (PSNR/SSIM
   block by block; the SSIM map streamed into its store).

The commands are the CLI's own (``napari_dmicro.cli.main``), so the numbers are what a user gets. The
script asserts (exit status 1) that every step's peak RSS stays below ``--limit-gb`` (10⁹ bytes) and
writes a markdown table to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BLOCK = 2000  # field generation block (and phantom tile) side


# ------------------------------------------------------------------------------------ child steps
def _progress(label: str):
    state = {"last": -1, "t0": time.perf_counter()}

    def report(done: int, total: int):
        pct = int(100 * done / total)
        if pct // 5 != state["last"] // 5 or done == total:
            state["last"] = pct
            print(f"  {label}: {done}/{total} ({pct}%), {time.perf_counter() - state['t0']:.0f} s",
                  file=sys.stderr, flush=True)

    return report


def _smooth_block(r0, r1, c0, c1, rng_seed=0):
    import numpy as np

    rng = np.random.default_rng(rng_seed)
    n = 12
    periods = rng.uniform(20, 400, n)
    angles = rng.uniform(0, 2 * np.pi, n)
    offsets = rng.uniform(0, 2 * np.pi, n)
    amps = rng.uniform(0.5, 1.0, n)
    amps *= (np.pi - 0.05) / amps.sum()  # phase stays inside (0, 2π)
    y = np.arange(r0, r1, dtype=np.float64)[:, None]
    x = np.arange(c0, c1, dtype=np.float64)[None, :]
    phase = np.full((r1 - r0, c1 - c0), np.pi)
    for p, a, o, amp in zip(periods, angles, offsets, amps, strict=True):
        k = 2 * np.pi / p
        phase += amp * np.sin(k * np.cos(a) * y + k * np.sin(a) * x + o)
    out = np.empty(phase.shape, np.complex64)
    out.real = np.cos(phase)
    out.imag = np.sin(phase)
    return out


def step_make_field(args):
    import zarr

    size = args.size
    z = zarr.open_array(store=str(Path(args.workdir) / "field.zarr"), mode="w", shape=(size, size),
                        chunks=(1000, 1000), dtype="complex64")
    n = math.ceil(size / BLOCK)
    report = _progress("make-field")
    for i in range(n):
        for j in range(n):
            r0, c0 = i * BLOCK, j * BLOCK
            r1, c1 = min(r0 + BLOCK, size), min(c0 + BLOCK, size)
            if args.field == "phantom":
                from napari_dmicro.phantoms import make_field

                block = make_field(i * n + j, size_px=(BLOCK, BLOCK))[:r1 - r0, :c1 - c0]
            else:
                block = _smooth_block(r0, r1, c0, c1)
            z[r0:r1, c0:c1] = block
            report(i * n + j + 1, n * n)
    return {"field": f"{size}x{size} complex64 zarr ({args.field})"}


def step_make_model(args):
    import torch

    from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
    from napari_dmicro.decoders import decoder_config
    from napari_dmicro.io.checkpoints import save_checkpoint
    from napari_dmicro.system import Microscope, SystemConfig

    enc = EncoderConfig(optics=FourierFilterConfig(filter_size_px=args.filter_px),
                        detector=DetectorConfig(compression=args.compression))
    torch.manual_seed(0)
    model = Microscope(SystemConfig(encoder=enc, decoder=decoder_config(args.decoder, enc.detector.binning)))
    save_checkpoint(Path(args.workdir) / "model.safetensors", model, card={"note": "random weights (benchmark)"})
    return {"model": f"LFF x{args.compression}, {args.filter_px}-px filter, {args.decoder}",
            "window": model.config.decoder.img_size}


def _cli(argv: list[str]) -> None:
    from napari_dmicro.cli import main

    status = main(argv)
    if status != 0:
        raise SystemExit(f"dmicro {' '.join(argv)} exited with {status}")


def step_simulate(args):
    from napari_dmicro.io.fields import read_image

    w = Path(args.workdir)
    _cli(["simulate", str(w / "field.zarr"), "-o", str(w / "meas.zarr"), "--model", str(w / "model.safetensors"),
          "--photons", "1e4"])
    shape = read_image(w / "meas.zarr").shape
    return {"camera": f"{shape[0]}x{shape[1]}"}


def step_reconstruct(args):
    import numpy as np

    from napari_dmicro.io.fields import read_image

    w = Path(args.workdir)
    argv = ["reconstruct", str(w / "meas.zarr"), "-o", str(w / "phase.zarr"), "--model", str(w / "model.safetensors")]
    if args.overlap is not None:
        argv += ["--overlap", str(args.overlap)]
    _cli(argv)
    phase = read_image(w / "phase.zarr")
    rows, cols = phase.shape
    probe = np.asarray(phase.data[rows // 2:rows // 2 + 256, :256])
    return {"output": f"{rows}x{cols} float32 zarr", "finite": bool(np.isfinite(probe).all())}


def step_evaluate(args):
    import contextlib
    import io

    from napari_dmicro.io.fields import read_image

    w = Path(args.workdir)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _cli(["evaluate", str(w / "phase.zarr"), "--reference", str(w / "field.zarr"),
              "--ssim-map", str(w / "ssim.zarr")])
    report = json.loads(printed.getvalue().split("wrote")[0])
    shape = read_image(w / "ssim.zarr").shape
    return {"ssim_map": f"{shape[0]}x{shape[1]} float32 zarr", "psnr_db": report["psnr_db"],
            "ssim": report["ssim"], "n_patches": report["n_patches"]}


STEPS = {"make-field": step_make_field, "make-model": step_make_model, "simulate": step_simulate,
         "reconstruct": step_reconstruct, "evaluate": step_evaluate}
#: the steps whose memory is the benchmark's subject (the others only prepare inputs)
MEASURED = ("simulate", "reconstruct", "evaluate")


def run_child(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    info = STEPS[args.step](args)
    info["seconds_in_child"] = time.perf_counter() - t0
    info["maxrss_self_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT " + json.dumps(info), flush=True)


# ---------------------------------------------------------------------------------------- parent
def _run_step(step: str, args, argv: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--workdir", args.workdir, *argv]
    print(f"[{step}] {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the rusage of exactly this child
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"step {step} failed with exit status {proc.returncode}")
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    info = json.loads(line[len("RESULT "):])
    info.update(step=step, wall_s=wall, peak_rss_bytes=usage.ru_maxrss * 1024)  # Linux: KiB
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=10000, help="field side in object pixels")
    p.add_argument("--field", choices=("smooth", "phantom"), default="smooth")
    p.add_argument("--compression", type=int, default=64)
    p.add_argument("--filter-px", type=int, default=256)
    p.add_argument("--decoder", default="swinir-fast")
    p.add_argument("--overlap", type=int, default=None, help="camera pixels (default: half a window)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--limit-gb", type=float, default=2.0)
    p.add_argument("--workdir", default=None, help="scratch directory (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "large_field.md"))
    p.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.step:  # inside a child
        return run_child(args)

    own_tmp = args.workdir is None
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="dmicro-large-field-")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    forward = ["--size", str(args.size), "--field", args.field, "--compression", str(args.compression),
               "--filter-px", str(args.filter_px), "--decoder", args.decoder, "--threads", str(args.threads)]
    if args.overlap is not None:
        forward += ["--overlap", str(args.overlap)]
    results = []
    try:
        for step in STEPS:
            results.append(_run_step(step, args, forward))
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    limit = args.limit_gb * 1e9

    import torch

    model = next(r for r in results if r["step"] == "make-model")
    measured = [r for r in results if r["step"] in MEASURED]
    peak = max(r["peak_rss_bytes"] for r in measured)
    lines = [
        f"# Large field of view: {args.size} × {args.size} px",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `python benchmarks/bench_large_field.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads() if not args.threads else args.threads} threads), "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        f"- field: {args.field} ({'sum of random sinusoids, unit amplitude' if args.field == 'smooth' else 'tiled phantoms'}),"
        f" complex64 zarr, read lazily by the commands",
        f"- model: {model['model']} (random weights), decoder window {model['window']} camera px, overlap "
        f"{'half a window' if args.overlap is None else args.overlap}; 10⁴ photons",
        "- commands: `dmicro simulate`, `dmicro reconstruct` (phase streamed band by band into the store), "
        "`dmicro evaluate --ssim-map` (PSNR/SSIM block by block, SSIM map streamed into its store)",
        f"- peak RSS: per step from `os.wait4` (the child's ru_maxrss); limit {args.limit_gb:g} GB for "
        f"{', '.join(MEASURED)} (the preparation steps are listed for completeness)",
        "",
        "| step | wall time (s) | peak RSS (MiB) | result |",
        "|---|---:|---:|---|",
    ]
    for r in results:
        detail = ", ".join(f"{k}={v}" for k, v in r.items()
                           if k not in ("step", "wall_s", "peak_rss_bytes", "maxrss_self_kib", "seconds_in_child"))
        lines.append(f"| {r['step']} | {r['wall_s']:.1f} | {r['peak_rss_bytes'] / 2**20:.0f} | {detail} |")
    ok = peak < limit
    lines += ["", f"**{'PASS' if ok else 'FAIL'}**: simulate, reconstruct and evaluate each below "
              f"{args.limit_gb:g} GB of RAM (highest {peak / 1e9:.2f} GB)."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    assert ok, f"peak RSS {peak / 1e9:.2f} GB above {args.limit_gb:g} GB"
    return 0


if __name__ == "__main__":
    sys.exit(main())
