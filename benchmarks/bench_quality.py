"""Quality of the shipped models on held-out phantom fields, with baselines and the binned-phase reference.

    python benchmarks/bench_quality.py --data /tmp/bench_fields \
        --curve x4=RUN --curve x16=RUN --curve x1024=RUN --baseline lff-x64=RUN --baseline d2nn-x64=RUN

The data folder is ``dmicro phantom --out DATA --count 80 --seed 1`` (regenerated bit for bit if
missing); the test fields are the 8 named in each model's card (never seen in training or model
selection; all presets share the split). Every field is simulated as ONE measurement over its whole
field of view (``dm.simulate``) and reconstructed with blended windows (``dm.reconstruct``); noise, where
asked, is exact Poisson + Gaussian read noise seeded per field.

Metrics on φ/2π (clipped to [0, 1], data range 1), on each field's top-left 768² px (3 × 3 whole 256²
patches, divisible by every binning):

- **patch**: mean over all 256² patches of per-patch PSNR / SSIM (the paper's "patch FoV" convention);
- **full FoV**: PSNR / mean SSIM computed once on the 768² field, averaged over the test fields.

Rows: every shipped model (noise-free, and the ``-noisy`` models at 10⁴ photons, σ 6 e⁻ beside the
noise-free model under the same noise); the all-optical baselines (``--baseline``: a run of stage 1
only, its camera intensity at full resolution read as φ/2π, the paper's B1/B2); the binned-phase reference
of every compression ratio (true φ/2π averaged over each camera pixel's b×b object pixels, bicubic
upsampled: a *phase* camera with the model's pixel pitch; intensity optics cannot realise it above ~π, where
intensity folds, and it is not a bound either, since a decoder with a learned prior can beat it); and the
compression curve (``--curve`` runs trained with the ``lff-x4``/``lff-x16``/``lff-x1024`` presets plus
the shipped lff-x64 and lff-x256). Writes ``benchmarks/results/quality.json``.
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

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
REGION = 768
NOISE = {"photons": 1e4, "read_noise": 6.0}


def ensure_data(path: Path) -> None:
    if path.exists() and any(path.iterdir()):
        return
    subprocess.run([sys.executable, "-m", "napari_dmicro.cli", "phantom", "--out", str(path), "--count", "80",
                    "--seed", "1"], check=True)


def test_fields(model, data: Path) -> list[Path]:
    names = (model.card.get("data") or {}).get("splits", {}).get("test")
    if not names:
        raise SystemExit(f"{model.source}: its card names no test split")
    paths = [data / n for n in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"test fields {missing} are not in {data}; regenerate with "
                         "`dmicro phantom --out DATA --count 80 --seed 1`")
    return paths


def scores(pred_rad: np.ndarray, field: np.ndarray) -> dict:
    """Patch and full-FoV metrics of one field's prediction on the evaluation region."""
    import napari_dmicro as dm

    r = dm.evaluate(pred_rad[:REGION, :REGION], field[:REGION, :REGION])
    return {"psnr_db": r.psnr_db, "ssim": r.ssim, "patch_psnr": r.patch_psnrs_db, "patch_ssim": r.patch_ssims}


def ci95_half_width(values) -> float:
    """Half-width of the 95 % confidence interval of the mean (Student t over independent fields)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))


def summarise(per_field: list[dict]) -> dict:
    """Means over fields, plus per-field values and 95 % intervals (the field is the independent unit:
    patches of one field share its cell density)."""
    patch_psnr = [float(np.mean(f["patch_psnr"])) for f in per_field]
    patch_ssim = [float(np.mean(f["patch_ssim"])) for f in per_field]
    full_psnr = [float(f["psnr_db"]) for f in per_field]
    full_ssim = [float(f["ssim"]) for f in per_field]
    return {
        "patch_psnr_db": float(np.mean([p for f in per_field for p in f["patch_psnr"]])),
        "patch_ssim": float(np.mean([p for f in per_field for p in f["patch_ssim"]])),
        "full_psnr_db": float(np.mean(full_psnr)),
        "full_ssim": float(np.mean(full_ssim)),
        "fields": len(per_field),
        "per_field": {"patch_psnr_db": patch_psnr, "patch_ssim": patch_ssim, "full_psnr_db": full_psnr,
                      "full_ssim": full_ssim},
        "ci95": {"patch_psnr_db": ci95_half_width(patch_psnr), "patch_ssim": ci95_half_width(patch_ssim),
                 "full_psnr_db": ci95_half_width(full_psnr), "full_ssim": ci95_half_width(full_ssim)},
    }


def evaluate_model(model, paths, photons=None, read_noise=0.0) -> dict:
    import napari_dmicro as dm
    from napari_dmicro.io.fields import read_field

    per_field = []
    for i, path in enumerate(paths):
        field = np.asarray(read_field(path).data)
        meas = dm.simulate(field, model, photons=photons, read_noise=read_noise, seed=1000 + i)
        per_field.append(scores(dm.reconstruct(meas, model), field))
    return summarise(per_field)


@torch.no_grad()
def all_optical(model, paths) -> dict:
    """Stage-1 readout: the camera intensity at full resolution (no binning) read as φ/2π."""
    from napari_dmicro.io.fields import read_field

    per_field = []
    for path in paths:
        field = np.asarray(read_field(path).data)[:REGION, :REGION]
        per_field.append(scores(all_optical_readout(model, field), field))
    return summarise(per_field)


@torch.no_grad()
def all_optical_readout(model, field: np.ndarray) -> np.ndarray:
    """The paper's all-optical baseline (B1/B2): the camera intensity of ``model``'s optics at full resolution
    (no binning, noise free) read as φ/2π, in rad, on the field's grid."""
    acq = model.encoder.acquisition().acquire_field(np.asarray(field, np.complex64), keep_intensity=True)
    rows, cols = np.shape(field)
    return 2 * np.pi * np.asarray(acq.intensity[:rows, :cols], np.float64)


def binned_phase_reference(field: np.ndarray, binning: int) -> np.ndarray:
    """The binned-phase reference (rad): true φ/2π averaged over each b×b camera pixel, bicubic upsampled back
    (a phase camera binned b×b; neither achievable by intensity optics above ~π nor a bound).

    ``field``'s sides must be multiples of ``binning``."""
    import torch.nn.functional as F

    unit = torch.from_numpy(np.mod(np.angle(field), 2 * np.pi) / (2 * np.pi)).float()[None, None]
    low = F.avg_pool2d(unit, binning)
    up = F.interpolate(low, scale_factor=binning, mode="bicubic", align_corners=False)[0, 0]
    return 2 * np.pi * up.clamp(0, 1).numpy()


def binned_reference(binning: int, paths) -> dict:
    """The binned-phase reference (see ``binned_phase_reference``) scored on each test field's region."""
    from napari_dmicro.io.fields import read_field

    per_field = []
    for path in paths:
        field = np.asarray(read_field(path).data)[:REGION, :REGION]
        per_field.append(scores(binned_phase_reference(field, binning), field))
    return summarise(per_field)


def write_result(name: str, result: dict) -> None:
    """benchmarks/results/<name>, written whole (temporary file, then rename)."""
    target = RESULTS / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(target)
    print(f"wrote {target}")


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/dmicro_bench_fields")
    parser.add_argument("--models", default=None, help="comma-separated shipped models (default: all)")
    parser.add_argument("--curve", action="append", default=[], help="xN=RUN: a compression-curve model")
    parser.add_argument("--baseline", action="append", default=[], help="NAME=RUN: a stage-1-only run")
    parser.add_argument("--update", action="store_true",
                        help="keep the other entries of an existing quality.json (same test fields) and "
                             "replace only what this run measures")
    args = parser.parse_args(argv)

    import napari_dmicro as dm
    from napari_dmicro.pretrained import shipped_models

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data = Path(args.data)
    ensure_data(data)
    names = args.models.split(",") if args.models else list(shipped_models())
    command = "python benchmarks/bench_quality.py " + " ".join(argv or sys.argv[1:])
    result = {"machine": machine(), "region_px": REGION, "noise": NOISE, "models": {}, "baselines": {},
              "binned_reference": {}, "curve": {}, "commands": [command], "wall_s": 0.0}
    previous = RESULTS / "quality.json"
    if args.update and previous.exists():
        old = json.loads(previous.read_text())
        if "commands" in old:
            result.update({k: old[k] for k in ("models", "baselines", "curve", "commands", "wall_s",
                                                   "test_fields")})
            result["commands"] = [c for c in old["commands"] if c != command] + [command]
    t0 = time.perf_counter()
    paths = None
    for name in names:
        model = dm.load_model(name)
        paths = paths or test_fields(model, data)
        if test_fields(model, data) != paths:
            raise SystemExit(f"{name} was tested on other fields than the other models; retrain on one split")
        entry = {"compression": model.config.compression, "optics": model.config.optics_kind}
        if name.endswith("-noisy"):
            entry["noisy"] = evaluate_model(model, paths, NOISE["photons"], NOISE["read_noise"])
            clean = name.removesuffix("-noisy")
            if clean in shipped_models():
                entry["clean_model_noisy"] = evaluate_model(dm.load_model(clean), paths, NOISE["photons"],
                                                            NOISE["read_noise"])
        else:
            entry["noise_free"] = evaluate_model(model, paths)
        result["models"][name] = entry
        print(f"{name}: {json.dumps(entry)}", flush=True)
    for spec in args.baseline:
        name, run = spec.split("=", 1)
        result["baselines"][name] = all_optical(dm.load_model(run), paths)
        print(f"all-optical {name}: {result['baselines'][name]}", flush=True)
    for b in (2, 4, 8, 16, 32):
        result["binned_reference"][f"x{b * b}"] = binned_reference(b, paths)
    curve_runs = {f"x{dm.load_model(n).config.compression}": n for n in ("lff-x64", "lff-x256")
                  if n in names or f"x{dm.load_model(n).config.compression}" not in result["curve"]}
    curve_runs.update(dict(spec.split("=", 1) for spec in args.curve))
    for ratio, run in sorted(curve_runs.items(), key=lambda kv: int(kv[0][1:])):
        model = dm.load_model(run)
        if f"x{model.config.compression}" != ratio:
            raise SystemExit(f"--curve {ratio}={run}: that model compresses x{model.config.compression}")
        known = result["models"].get(run, {}).get("noise_free")
        result["curve"][ratio] = {"model": run if run in names else Path(run).name,
                                  **(known or evaluate_model(model, paths))}
        print(f"curve {ratio}: {result['curve'][ratio]}", flush=True)
    if result.get("test_fields", [p.name for p in paths]) != [p.name for p in paths]:
        raise SystemExit("--update: the existing quality.json was measured on other test fields; run without --update")
    result["test_fields"] = [p.name for p in paths]
    result["wall_s"] = round(result["wall_s"] + time.perf_counter() - t0, 1)
    write_result("quality.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
