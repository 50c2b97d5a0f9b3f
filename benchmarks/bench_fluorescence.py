"""The fluorescence evidence of issue 12 from trained run folders (or checkpoints), one results file per model.

    PYTHONPATH=src python benchmarks/bench_fluorescence.py --model fluo-x64=/work/runs/fluo-x64 \\
        [--model fluo-x64-random-frozen=/work/runs/fluo-x64-random-frozen ...] [--photon-curve fluo-x64] \\
        [--full-res RUN] [--data /work/data/nuclei-test] [--threads 1] [--timing-threads 2]

Each ``--model NAME=RUN_OR_CHECKPOINT`` writes ``benchmarks/results/fluorescence_<NAME>.json`` (command, date,
machine, load averages); rerun it for a model as its run lands, ``benchmarks/report.py`` merges whatever files
exist into the "Fluorescence" section of docs/benchmarks.md and names the models that are missing.

Per model (all through the public API: ``dm.simulate`` → ``dm.reconstruct`` / ``dm.segment``, full field of view):

- ``heldout``: the held-out generator fields (default /work/data/nuclei-test: 16 fields 1024², seed 101; the
  runs trained on seed 1), imaged through the model's BINARY patterns with exact Poisson + read noise at the
  model's stated dose (its ``photons_per_unit`` and ``read_noise_e``; background as the model states), the noise
  of field k seeded by ``training.evaluation._field_seed(--seed, k)`` (the same seed per field for every
  model). PSNR/SSIM (``napari_dmicro.metrics``, data range 1) of the reconstruction (clipped to [0, 1]) against the
  field normalised to [0, 1] by its min/max (what ``dm.simulate`` images). Strata where a mean hides failure:
  fields by nucleus cover (labels > 0: sparse < 15 %, medium 15–30 %, dense ≥ 30 %) and nuclei by brightness
  (each nucleus's mean true intensity; "dim" = the pooled bottom quartile, "bright" = the top quartile): the
  PSNR of the pooled error over those nuclei's pixels and the median relative error of the nucleus mean
  |mean(pred) − mean(true)| / mean(true).
- segmentation, per field, foreground Dice and IoU-matched F1 at 0.5 (``napari_dmicro.segmentation_metrics``),
  means over fields and F1 of the pooled counts. Arms: ``task_aware`` = ``dm.segment`` of the same measurement
  (models with a segmentation head); ``classical`` = reconstruct-then-segment, :func:`napari_dmicro.instances.classical_nuclei`
  (Otsu threshold + distance-transform watershed, scikit-image) of the model's reconstruction; and once per
  file ``classical_on_truth`` = the same classical method on the noise-free full-resolution truth (the
  classical method's own ceiling, compression 1).
- ``measured``: the DSB2018 nuclei image (512², 125 manual nuclei; its pixel size is not in the file: ASSUMED
  0.5 µm, ``--measured-pixel-size-um``): ``dm.simulate`` resamples it to the model's pixel (0.325 µm,
  anti-aliased), ``dm.reconstruct`` / ``dm.segment`` return on the image's own grid, where it is scored against
  the manual mask as drawn (never resampled).
- ``patterns``: how far the binary patterns moved from the ones the run started from
  (``training.trainer.patterns_report``: the init is re-drawn from the run's seed and ``optics_init``),
  and the run's arm (learned / random-frozen / hadamard-frozen / …) and training budget from its model card and
  ``events.jsonl``.
- ``timing``: ``dm.reconstruct`` of a 1024² field's measurement with ``torch.set_num_threads(--timing-threads)``,
  median of 5 after one warm-up, load averages before and after, and the median process CPU time per call (all
  threads: the work done, which the load does not inflate; the target is < 1 s wall on 2 idle cores).
- ``photon_curve`` (``--photon-curve NAME``): PSNR/SSIM at 10, 30, 100, 300, 1000 photons per unit (read noise
  kept at the model's σ) and noise free, on the first ``--photon-fields`` held-out fields.

``--full-res RUN`` adds the full-resolution arm: a task-aware fluorescence run sampling at compression ≤ 1 (as
many measured numbers as specimen pixels), scored with ``dm.segment`` exactly like the other models; it is
written as ``fluorescence_<name>.json`` with ``role: full-resolution``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_dmicro.instances import classical_nuclei
from napari_dmicro.io.atomic import write_text_atomically

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import machine  # noqa: E402

DEFAULT_DATA = Path("/work/data/nuclei-test")
DEFAULT_MEASURED = Path("/work/shared/realdata/fluo_stardist_dsb2018_nuclei")
MEASURED_PIXEL_SIZE_UM = 0.5  # NOT recorded in the file: an assumption, stated in every result
PHOTON_LEVELS = (10.0, 30.0, 100.0, 300.0, 1000.0, None)
COVER_BINS = ((0.0, 0.15, "sparse (< 15 %)"), (0.15, 0.30, "medium (15–30 %)"), (0.30, 1.01, "dense (≥ 30 %)"))
TIMING_REPEATS = 5


# ---- the pieces ------------------------------------------------------------------------------------------

def image_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """PSNR/SSIM of the prediction clipped to [0, 1] against the [0, 1] truth (data range 1)."""
    from napari_dmicro.metrics import report_metrics

    m = report_metrics(torch.from_numpy(np.ascontiguousarray(pred, np.float32)),
                       torch.from_numpy(np.ascontiguousarray(truth, np.float32)))
    return {"psnr_db": float(m["psnr_db"][0]), "ssim": float(m["ssim"][0])}


def flat_guess_psnr_db(truth: np.ndarray) -> float:
    """PSNR of the field's own mean everywhere (what a model that learned nothing of the field scores): the floor a
    reconstruction's PSNR must be read against — mostly dark fields score 21–25 dB with it."""
    return float(10 * np.log10(1.0 / np.mean((truth - truth.mean()) ** 2)))


def seg_scores(labels: np.ndarray, truth_labels: np.ndarray) -> dict:
    from napari_dmicro.segmentation_metrics import dice, matched_f1

    f1 = matched_f1(labels, truth_labels, 0.5)
    return {"dice": dice(labels, truth_labels), "f1": f1["f1"], "tp": f1["tp"], "fp": f1["fp"], "fn": f1["fn"],
            "instances": int(labels.max())}


def nucleus_stats(pred: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Per nucleus: true and predicted mean intensity, squared-error sum and pixel count."""
    from scipy import ndimage

    ids = np.arange(1, int(labels.max()) + 1)
    if not len(ids):
        return []
    pred = np.clip(pred, 0, 1).astype(np.float64)
    count = ndimage.sum_labels(np.ones_like(pred), labels, ids)
    true_mean = ndimage.mean(truth, labels, ids)
    pred_mean = ndimage.mean(pred, labels, ids)
    sq = ndimage.sum_labels((pred - truth) ** 2, labels, ids)
    return [{"true_mean": float(t), "pred_mean": float(p), "sq_error": float(s), "pixels": int(c)}
            for t, p, s, c in zip(true_mean, pred_mean, sq, count, strict=True) if c > 0]


def brightness_strata(nuclei: list[dict]) -> dict:
    """Dim (pooled bottom quartile of nucleus mean intensity) vs bright (top quartile) nuclei."""
    from napari_dmicro.metrics import pooled_psnr

    if not nuclei:
        return {}
    means = np.array([n["true_mean"] for n in nuclei])
    q1, q3 = (float(v) for v in np.quantile(means, [0.25, 0.75]))
    out = {"quartiles_true_mean": [q1, q3]}
    for name, keep in (("dim", means <= q1), ("bright", means >= q3), ("all", np.ones(len(means), bool))):
        group = [n for n, k in zip(nuclei, keep, strict=True) if k]
        rel = [abs(n["pred_mean"] - n["true_mean"]) / n["true_mean"] for n in group if n["true_mean"] > 0]
        out[name] = {"nuclei": len(group),
                     "psnr_db": pooled_psnr(sum(n["sq_error"] for n in group), sum(n["pixels"] for n in group)),
                     "median_relative_error": float(np.median(rel)) if rel else None}
    return out


def summarise_segmentation(rows: list[dict]) -> dict:
    """Means over fields of Dice and F1, and the F1 of the pooled counts."""
    if not rows:
        return {}
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    return {"fields": len(rows), "dice": float(np.mean([r["dice"] for r in rows])),
            "f1": float(np.mean([r["f1"] for r in rows])),
            "pooled_f1": 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0}


def cover_stratum(cover: float) -> str:
    return next(name for lo, hi, name in COVER_BINS if lo <= cover < hi)


# ---- a model and its run -----------------------------------------------------------------------------------

def run_folder(source: str) -> Path | None:
    path = Path(source)
    if path.is_dir():
        return path
    return path.parent if path.suffix == ".safetensors" and (path.parent / "run.json").exists() else None


def training_budget(card: dict, folder: Path | None) -> dict:
    """The run's arm and budget: patterns init, frozen or learned, stages (planned steps; steps done from the
    run's events.jsonl when the folder has one), seed, dose."""
    train = card.get("train_config") or {}
    stages = train.get("stages") or []
    frozen = any(s.get("freeze_optics") for s in stages)  # a learned run freezes no stage
    init = train.get("optics_init") or (train.get("system") or {}).get("encoder", {}).get("patterns", {}).get("init")
    done = {}
    run = folder / "run.json" if folder else None
    data_dir = json.loads(run.read_text()).get("data_dir") if run and run.exists() else None
    events = folder / "events.jsonl" if folder else None
    if events and events.exists():
        for line in events.read_text().splitlines():
            e = json.loads(line)
            if e.get("kind") == "stage_end":
                done[e["stage"]] = e["step"]
    arm = f"{init}-frozen" if frozen else ("learned" if init in (None, "random") else f"learned-from-{init}")
    return {"arm": arm, "optics_init": init, "freeze_optics": frozen,
            "seed": train.get("seed"), "training_data": data_dir, "fine_tuned_from": train.get("init"), "preset": card.get("preset"),
            "extra_data": list((train.get("data") or {}).get("extra_data") or []),
            "extra_data_weight": (train.get("data") or {}).get("extra_data_weight"),
            "stages": [{"name": s["name"], "steps": s.get("steps"), "batch_size": s.get("batch_size"),
                        "steps_done": done.get(s["name"])} for s in stages],
            "finished": (bool(events.exists()) and '"kind": "done"' in events.read_text()) if events else None}


def describe_model(model) -> dict:
    enc = model.config.encoder
    det = enc.detector
    return {"compression": enc.compression, "bin_px": det.bin_px, "n_patterns": enc.patterns.n_patterns,
            "period_bins": enc.patterns.period_bins, "pixel_size_um": enc.pixel_size_um,
            "photons_per_unit": det.photons_per_unit, "read_noise_e": det.read_noise_e,
            "background_photons": det.background_photons, "seg_head": bool(model.has_seg_head),
            "decoder_parameters": int(sum(p.numel() for p in model.decoder.parameters()))}


def pattern_movement(model) -> dict:
    from napari_dmicro.training.trainer import patterns_report

    report = patterns_report(model, model.card or {})
    report["recovered_init"] = ("re-drawn by training.initial.initial_microscope from the card's seed and the "
                                "patterns' init (the run's own start)")
    if report.get("fine_tuned_from"):
        report["recovered_init"] += ("; this run was fine-tuned from another checkpoint, so the flips are "
                                     "counted from that root run's random draw of the same seed")
    return report


# ---- evaluation -------------------------------------------------------------------------------------------

def heldout_fields(data: Path, count: int | None):
    from napari_dmicro.io.fluorescence import read_fluorescence

    paths = sorted(data.glob("*.zarr"))
    if not paths:
        raise FileNotFoundError(f"no fluorescence stores (*.zarr) in {data}; make them with "
                                "`dmicro phantom --modality fluorescence --out DIR --count 16 --size 1024 --seed 101`")
    for path in paths[:count]:
        yield path, read_fluorescence(path)


def generator_of(path: Path) -> dict:
    """The generator seed, index and style a field store records (empty for other images)."""
    from napari_dmicro.io.fields import read_image

    attrs = read_image(path, lazy=True).attrs
    return {k: attrs[k] for k in ("seed", "index", "style") if k in attrs}


def acquire(model, image, *, photons, read_noise, seed, pixel_size_um=None):
    import napari_dmicro as dm

    return dm.simulate(image, model, photons=photons, read_noise=read_noise, seed=seed, pixel_size_um=pixel_size_um)


def evaluate_field(model, image: np.ndarray, labels: np.ndarray | None, seed: int, *, segment: bool = True,
                   pixel_size_um: float | None = None) -> dict:
    """One field at the model's stated dose: image scores, nuclei, and the segmentation arms (``pixel_size_um``:
    the image's, None = the model's)."""
    import napari_dmicro as dm
    from napari_dmicro.training.fluo_data import normalise_unit_range

    det = model.config.encoder.detector
    truth = normalise_unit_range(image)
    meas = acquire(model, image, photons=det.photons_per_unit, read_noise=det.read_noise_e, seed=seed,
                   pixel_size_um=pixel_size_um)
    pred = np.asarray(dm.reconstruct(meas, model))
    row = {"seed": seed, **image_scores(pred, truth), "flat_psnr_db": flat_guess_psnr_db(truth)}
    if labels is not None:
        row["cover"] = float((labels > 0).mean())
        row["nuclei"] = int(labels.max())
        row["_nuclei"] = nucleus_stats(pred, truth, labels)
        if segment:
            ps = model.config.encoder.pixel_size_um if pixel_size_um is None else pixel_size_um
            row["classical"] = seg_scores(classical_nuclei(pred, ps), labels)
            if model.has_seg_head:
                row["task_aware"] = seg_scores(dm.segment(meas, model), labels)
    return row


def evaluate_heldout(model, data: Path, count: int | None, seed: int) -> dict:
    from napari_dmicro.training.evaluation import _field_seed

    rows, nuclei = [], []
    for k, (path, fluo) in enumerate(heldout_fields(data, count)):
        t0 = time.perf_counter()
        row = evaluate_field(model, fluo.image, fluo.labels, _field_seed(seed, k))
        nuclei += row.pop("_nuclei", [])
        row["field"] = path.name
        row["generator"] = generator_of(path)
        rows.append(row)
        print(f"  {path.name}: {row['psnr_db']:.2f} dB, SSIM {row['ssim']:.3f}"
              + (f", cover {row['cover']:.2f}" if "cover" in row else "")
              + "".join(f", {arm} Dice {row[arm]['dice']:.3f} F1 {row[arm]['f1']:.3f}"
                        for arm in ("task_aware", "classical") if arm in row)
              + f" ({time.perf_counter() - t0:.1f} s)", flush=True)
    seeds = sorted({r["generator"]["seed"] for r in rows if r["generator"].get("seed") is not None})
    out = {"data": str(data), "fields": len(rows), "generator_seeds": seeds, "per_field": rows,
           "psnr_db": float(np.mean([r["psnr_db"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
           "flat_psnr_db": float(np.mean([r["flat_psnr_db"] for r in rows]))}
    strata = {}
    for _, _, name in COVER_BINS:
        group = [r for r in rows if "cover" in r and cover_stratum(r["cover"]) == name]
        if group:
            strata[name] = {"fields": len(group), "psnr_db": float(np.mean([r["psnr_db"] for r in group])),
                            "ssim": float(np.mean([r["ssim"] for r in group])),
                            **{arm: summarise_segmentation([r[arm] for r in group if arm in r])
                               for arm in ("task_aware", "classical") if any(arm in r for r in group)}}
    out["by_cover"] = strata
    out["by_brightness"] = brightness_strata(nuclei)
    for arm in ("task_aware", "classical"):
        seg = summarise_segmentation([r[arm] for r in rows if arm in r])
        if seg:
            out[arm] = seg
    return out


@functools.lru_cache(maxsize=4)
def classical_on_truth(data: Path, count: int | None, pixel_size_um: float) -> dict:
    """The classical method on the noise-free fields (model independent: computed once per grid)."""
    from napari_dmicro.training.fluo_data import normalise_unit_range

    rows = [seg_scores(classical_nuclei(normalise_unit_range(f.image), pixel_size_um), f.labels)
            for _, f in heldout_fields(data, count) if f.labels is not None]
    return summarise_segmentation(rows)


def measured_image(image_path: Path, mask_path: Path, pixel_size_um: float):
    """(image, labels, how) of the measured image at its own (assumed) pixel size: ``dm.simulate`` resamples it to
    the model's pixel (anti-aliased, io.resample) and ``dm.reconstruct`` / ``dm.segment`` return on its own grid,
    so it is scored against the manual mask as drawn (never resampled)."""
    from napari_dmicro.io.fluorescence import load_fluorescence_tiff

    fluo = load_fluorescence_tiff(image_path, mask_path, pixel_size_um=pixel_size_um)
    how = (f"dm.simulate resampled the image {pixel_size_um:g} µm → the model's pixel (anti-aliased) and the "
           f"reconstruction / segmentation came back on the image's own {pixel_size_um:g} µm grid; scored there "
           "against the manual mask as drawn")
    return fluo.image, fluo.labels, how


def evaluate_measured(model, image_path: Path, mask_path: Path, pixel_size_um: float, seed: int) -> dict:
    from napari_dmicro.training.fluo_data import normalise_unit_range

    image, labels, how = measured_image(image_path, mask_path, pixel_size_um)
    grid = pixel_size_um
    row = evaluate_field(model, image, labels, seed, pixel_size_um=grid)
    row.pop("_nuclei", None)
    row["classical_on_truth"] = seg_scores(classical_nuclei(normalise_unit_range(image), grid), labels)
    return {"image": str(image_path), "mask": str(mask_path), "pixel_size_um_assumed": pixel_size_um,
            "resampling": how, "scored_on_pixel_size_um": grid, "shape": list(image.shape), **row}


def photon_curve(model, data: Path, count: int, seed: int, levels=PHOTON_LEVELS) -> list[dict]:
    import napari_dmicro as dm
    from napari_dmicro.training.evaluation import _field_seed
    from napari_dmicro.training.fluo_data import normalise_unit_range

    read_noise = model.config.encoder.detector.read_noise_e
    out = []
    fields = list(heldout_fields(data, count))
    for photons in levels:
        scores = []
        for k, (_, fluo) in enumerate(fields):
            meas = acquire(model, fluo.image, photons=photons, read_noise=read_noise if photons else 0.0,
                           seed=_field_seed(seed, k))
            scores.append(image_scores(np.asarray(dm.reconstruct(meas, model)), normalise_unit_range(fluo.image)))
        point = {"photons_per_unit": photons, "read_noise_e": read_noise if photons else 0.0, "fields": len(scores),
                 "psnr_db": float(np.mean([s["psnr_db"] for s in scores])),
                 "ssim": float(np.mean([s["ssim"] for s in scores]))}
        print(f"  photons {photons}: {point['psnr_db']:.2f} dB, SSIM {point['ssim']:.3f}", flush=True)
        out.append(point)
    return out


def timing(model, image: np.ndarray, threads: int, repeats: int = TIMING_REPEATS) -> dict:
    """Wall time of dm.reconstruct on the measurement of ``image`` (one warm-up, then the median of ``repeats``)."""
    import napari_dmicro as dm

    det = model.config.encoder.detector
    meas = acquire(model, image, photons=det.photons_per_unit, read_noise=det.read_noise_e, seed=0)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        load_before = os.getloadavg()
        dm.reconstruct(meas, model)
        walls, cpus = [], []
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            dm.reconstruct(meas, model)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        load_after = os.getloadavg()
    finally:
        torch.set_num_threads(previous)
    return {"image_px": list(image.shape), "threads": threads, "repeats": repeats, "median_s": statistics.median(walls),
            "walls_s": walls, "median_cpu_s": statistics.median(cpus), "load_average_before": list(load_before), "load_average_after": list(load_after)}


# ---- driver -----------------------------------------------------------------------------------------------

def parse_models(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, source = item.partition("=")
        if not sep or not name or not source:
            raise SystemExit(f"--model {item!r}: give NAME=RUN_FOLDER_OR_CHECKPOINT, e.g. fluo-x64=/work/runs/fluo-x64")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise SystemExit(f"--model {item!r}: the name must be letters, digits, '.', '_' or '-' (it names the file)")
        out.append((name, source))
    return out


def bench_model(name: str, source: str, args, command: str, *, role: str = "model") -> dict:
    import napari_dmicro as dm

    print(f"{name} ({source})", flush=True)
    t0 = time.perf_counter()
    load_start = list(os.getloadavg())
    model = dm.load_model(source)
    if getattr(model, "modality", None) != "fluorescence":
        raise SystemExit(f"{name}: {source} is not a fluorescence model")
    model.name = name
    result = {"name": name, "role": role, "source": str(model.source), "sha256": model.sha256, "command": command,
              "machine": machine() | {"load_average_start": load_start}, "model": describe_model(model),
              "training": training_budget(model.card or {}, run_folder(source)), "noise_seed": args.seed}
    if role == "full-resolution" and result["model"]["compression"] > 1:
        result["note"] = (f"given as the full-resolution arm but samples at x{result['model']['compression']:g} "
                          "(> 1): not full resolution")
    result["patterns"] = pattern_movement(model)
    result["heldout"] = evaluate_heldout(model, Path(args.data), args.fields, args.seed)
    result["classical_on_truth"] = classical_on_truth(Path(args.data), args.fields, model.config.encoder.pixel_size_um)
    if args.measured:
        folder = Path(args.measured)
        result["measured"] = evaluate_measured(model, folder / "img2d.tif", folder / "mask2d.tif",
                                               args.measured_pixel_size_um, args.seed)
        print(f"  measured DSB2018: {result['measured']['psnr_db']:.2f} dB", flush=True)
    if name in args.photon_curve:
        result["photon_curve"] = photon_curve(model, Path(args.data), args.photon_fields, args.seed)
    if args.timing_threads > 0:
        _, first = next(heldout_fields(Path(args.data), 1))
        result["timing"] = timing(model, first.image, args.timing_threads)
        print(f"  {first.image.shape} reconstruction: median {result['timing']['median_s']:.3f} s on "
              f"{args.timing_threads} threads (load {result['timing']['load_average_before'][0]:.2f})", flush=True)
    result["machine"]["load_average_end"] = list(os.getloadavg())
    result["wall_s"] = time.perf_counter() - t0
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="NAME=RUN_FOLDER_OR_CHECKPOINT (repeatable)")
    parser.add_argument("--full-res", default=None, help="NAME=RUN or RUN: a task-aware run at compression ≤ 1")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="held-out fluorescence stores")
    parser.add_argument("--fields", type=int, default=None, help="first N held-out fields (default all)")
    parser.add_argument("--measured", default=str(DEFAULT_MEASURED), help="DSB2018 folder ('' to skip)")
    parser.add_argument("--measured-pixel-size-um", type=float, default=MEASURED_PIXEL_SIZE_UM)
    parser.add_argument("--photon-curve", action="append", default=[], help="NAME of a --model to sweep photons for")
    parser.add_argument("--photon-fields", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="noise seed stream (field k: _field_seed(seed, k))")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the evaluation")
    parser.add_argument("--timing-threads", type=int, default=2, help="threads of the timing (0: skip it)")
    parser.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)
    models = [(name, source, "model") for name, source in parse_models(args.model)]
    if args.full_res:
        name, _, source = args.full_res.rpartition("=")
        models.append((name or Path(source.rstrip("/")).name, source, "full-resolution"))
    if not models:
        parser.error("give at least one --model NAME=RUN")
    unknown = set(args.photon_curve) - {n for n, _, _ in models}
    if unknown:
        parser.error(f"--photon-curve {sorted(unknown)}: not among the --model names")
    torch.set_num_threads(args.threads)
    command = "python benchmarks/bench_fluorescence.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name, source, role in models:
        result = bench_model(name, source, args, command, role=role)
        target = write_text_atomically(Path(args.results) / f"fluorescence_{name}.json", json.dumps(result, indent=2))
        print(f"wrote {target}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
