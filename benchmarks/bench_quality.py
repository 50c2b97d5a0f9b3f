"""Quality of the shipped models on their held-out test fields, with baselines and the binned-phase reference.

    python benchmarks/bench_quality.py --data /work/data/real-train \
        --baseline lff-x64=RUN --baseline lff-x256=RUN --baseline d2nn-x64=RUN [--curve xN=RUN ...]

``--data`` is the folder the models were trained on (their cards name it and say how to regenerate it;
for the issue-10 models ``dmicro phantom --style realistic --count 60 --size 512 --seed 1``); the test
fields are the ones named in each model's card (never seen in training or model selection; all presets
share the split). Without the folder, ``dmicro phantom --out DATA --count 80 --seed 1`` (the generator
of the models before issue 10) is drawn. Every field is simulated as ONE measurement over its whole
field of view (``dm.simulate``) and reconstructed with blended windows (``dm.reconstruct``); noise, where
asked, is exact Poisson + Gaussian read noise seeded per field.

Metrics on φ/2π (clipped to [0, 1], data range 1), on each field's top-left square of whole 256²
patches (768² px of a 789² field, all of a 512² field; divisible by every binning):

- **patch**: mean over all 256² patches of per-patch PSNR / SSIM (the paper's "patch FoV" convention);
- **full FoV**: PSNR / mean SSIM computed once on that square, averaged over the test fields.

Rows: every shipped model (noise-free, and the ``-noisy`` models at 10⁴ photons, σ 6 e⁻ beside the
noise-free model under the same noise; a ``-noisy`` model whose weights are its noise-free model's is
evaluated once and marked ``same_weights_as``); the all-optical baselines (``--baseline``: a run of stage 1
only, its camera intensity at full resolution read as φ/2π, the paper's B1/B2); the binned-phase reference
of every compression ratio (true φ/2π averaged over each camera pixel's b×b object pixels, bicubic
upsampled: a *phase* camera with the model's pixel pitch; intensity optics cannot realise it above ~π, where
intensity folds, and it is not a bound either, since a decoder with a learned prior can beat it); and the
compression curve (the shipped lff-x64 and lff-x256, plus any ``--curve`` runs of other ratios). Each
model's checkpoint SHA-256 is recorded, so the report can tell which checkpoints a number describes.
Writes ``benchmarks/results/quality.json``.
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
#: the evaluated square's largest side (px): 3 × 3 whole 256² patches; smaller fields are scored whole
REGION = 768
PATCH = 256
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
        raise SystemExit(f"test fields {missing} are not in {data}; give the folder the model was trained on "
                         "(`dmicro models` prints the command that regenerates it)")
    return paths


def region_px(paths) -> int:
    """Side (px) of the top-left square every field is scored on: REGION, or the fields' side when they are
    smaller (then it must be a multiple of 256, i.e. whole patches, divisible by every binning)."""
    from napari_dmicro.io.fields import read_field

    side = min(REGION, *(min(np.shape(read_field(p).data)[-2:]) for p in paths))
    if side % PATCH:
        raise SystemExit(f"fields of {side} px cannot be cut into whole {PATCH}² patches; use fields of "
                         f"{PATCH}·k px (e.g. `dmicro phantom --size 512`)")
    return side


def scored(field: np.ndarray) -> np.ndarray:
    """The top-left square of whole 256² patches (at most REGION px) that a field is scored on."""
    side = min(REGION, *np.shape(field)[-2:]) // PATCH * PATCH
    return field[:side, :side]


def phantom_command(paths) -> str | None:
    """The ``dmicro phantom`` command that drew the fields (recorded in each phantom's attributes), if any."""
    from napari_dmicro.io.fields import read_field

    commands = {read_field(p).attrs.get("command") for p in paths}
    return commands.pop() if len(commands) == 1 else None


def checkpoint_sha256(name_or_path) -> str:
    """SHA-256 of the weights file a shipped name, run folder or .safetensors path resolves to."""
    import hashlib

    from napari_dmicro.pretrained import resolve_model

    return hashlib.sha256(resolve_model(name_or_path).read_bytes()).hexdigest()


def same_weights(a, b) -> bool:
    """Whether two loaded models have identical parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def scores(pred_rad: np.ndarray, field: np.ndarray) -> dict:
    """Patch and full-FoV metrics of one field's prediction on the evaluation region (see ``region_px``)."""
    import napari_dmicro as dm

    side = len(scored(field))
    r = dm.evaluate(pred_rad[:side, :side], scored(field))
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
        field = scored(np.asarray(read_field(path).data))
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
        field = scored(np.asarray(read_field(path).data))
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


def phase_models() -> list[str]:
    """The shipped quantitative-phase models (the fluorescence ones are bench_fluorescence.py's)."""
    from napari_dmicro.pretrained import shipped_models

    return [n for n in shipped_models() if not n.startswith("fluo-")]


def set_threads() -> None:
    """Torch threads: OMP_NUM_THREADS when set (a shared machine), else up to 2."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


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

    set_threads()
    data = Path(args.data)
    ensure_data(data)
    names = args.models.split(",") if args.models else phase_models()
    command = "python benchmarks/bench_quality.py " + " ".join(argv or sys.argv[1:])
    result = {"machine": machine(), "region_px": REGION, "noise": NOISE, "models": {}, "baselines": {},
              "binned_reference": {}, "curve": {}, "commands": [command], "wall_s": 0.0,
              "data_dir": str(data), "checkpoints": {}}
    previous = RESULTS / "quality.json"
    if args.update and previous.exists():
        old = json.loads(previous.read_text())
        if "commands" in old:
            result.update({k: old[k] for k in ("models", "baselines", "curve", "commands", "wall_s",
                                                   "test_fields", "checkpoints") if k in old})
            result["commands"] = [c for c in old["commands"] if c != command] + [command]
    t0 = time.perf_counter()
    paths = None
    for name in names:
        model = dm.load_model(name)
        paths = paths or test_fields(model, data)
        if test_fields(model, data) != paths:
            raise SystemExit(f"{name} was tested on other fields than the other models; retrain on one split")
        result["checkpoints"][name] = checkpoint_sha256(name)
        entry = {"compression": model.config.compression, "optics": model.config.optics_kind,
                 "card_test": (model.card.get("test") or None), "card_validation": (model.card.get("validation") or None)}
        if name.endswith("-noisy"):
            entry["noisy"] = evaluate_model(model, paths, NOISE["photons"], NOISE["read_noise"])
            clean = name.removesuffix("-noisy")
            if clean in shipped_models():
                clean_model = dm.load_model(clean)
                if same_weights(model, clean_model):  # the fine-tune kept its start: one evaluation is both rows
                    entry["same_weights_as"] = clean
                    entry["clean_model_noisy"] = entry["noisy"]
                else:
                    entry["clean_model_noisy"] = evaluate_model(clean_model, paths, NOISE["photons"],
                                                                NOISE["read_noise"])
        else:
            entry["noise_free"] = evaluate_model(model, paths)
        result["models"][name] = entry
        print(f"{name}: {json.dumps(entry)}", flush=True)
    for spec in args.baseline:
        name, run = spec.split("=", 1)
        result["baselines"][name] = {"run": run, "checkpoint_sha256": checkpoint_sha256(run),
                                     **all_optical(dm.load_model(run), paths)}
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
                                  "checkpoint_sha256": checkpoint_sha256(run),
                                  "card_validation": model.card.get("validation") or None,
                                  **(known or evaluate_model(model, paths))}
        print(f"curve {ratio}: {result['curve'][ratio]}", flush=True)
    if result.get("test_fields", [p.name for p in paths]) != [p.name for p in paths]:
        raise SystemExit("--update: the existing quality.json was measured on other test fields; run without --update")
    result["test_fields"] = [p.name for p in paths]
    result["region_px"] = region_px(paths)
    result["data_command"] = phantom_command(paths)
    result["wall_s"] = round(result["wall_s"] + time.perf_counter() - t0, 1)
    write_result("quality.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
