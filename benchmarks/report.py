"""Regenerate docs/benchmarks.md (and its plots) from the JSON/markdown results in benchmarks/results/.

    python benchmarks/report.py

Every number in docs/benchmarks.md comes from a results file written by a script in this folder; the
report names the script and command that produced each table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report_fluorescence  # noqa: E402
import report_honest  # noqa: E402
import report_models  # noqa: E402
import report_optics_table  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs"
IMAGES = DOCS / "images"


def _fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _interval_rates(curve: list[dict], stage: str) -> list[float]:
    """Steps per second between consecutive validations of one stage (each interval includes one validation)."""
    points = [(v["step"], v["elapsed_s"]) for v in curve if v["stage"] == stage]
    return [(s1 - s0) / (t1 - t0) for (s0, t0), (s1, t1) in zip(points, points[1:], strict=False) if t1 > t0 and s1 > s0]


def _run_label(r: dict) -> str:
    """'d2nn-x64 at 10000 photons, σ 6, from d2nn-x64': what a training record is."""
    label = r["preset"]
    if r.get("photons"):
        label += f" at {r['photons']:g} photons, σ {r['read_noise_e']:g}"
    if r.get("init"):
        label += f", from {_init_name(r['init'])}"
    return label


def _init_name(init: str) -> str:
    """A run's starting point: a shipped model's name, or the run folder a checkpoint file is in."""
    path = Path(str(init))
    return path.parent.name if path.suffix == ".safetensors" else path.name


def _training_section(records: list[dict]) -> list[str]:
    lines = ["## Training runs: speed and time to quality (CPU budgets)", ""]
    if not records:
        return lines + ["No training results yet: run `benchmarks/bench_training.py`.", ""]
    lines += ["Each row is one `benchmarks/bench_training.py` run on the phantom data set (80 fields, split 64/8/8 by "
              "field). Validation and test are *patch* metrics (mean over a fixed 3 × 3 grid of 256² patches per "
              "field, φ/2π, data range 1); the test split is evaluated once, by the final model. Steps/s per stage "
              "are whole-stage averages (with validation); the fastest interval between validations is the closest "
              "to an idle machine (other jobs shared the cores in some runs: see the load averages).", "",
              "| run | init | stages: steps (steps/s, fastest interval) | wall (min) | load avg start/end | "
              "time to 28 dB (min) | best validation PSNR / SSIM | test PSNR / SSIM | command |",
              "|---|---|---|---:|---|---:|---|---|---|"]
    for r in records:
        m = r["machine"]
        noise = f" at {r['photons']:g} photons, σ {r['read_noise_e']:g}" if r.get("photons") else ""
        stages = []
        for name, st in r["stages"].items():
            rates = _interval_rates(r["validation"], name)
            fastest = f", {max(rates):.2f}" if rates else ""
            stages.append(f"{name} {st.get('steps')} ({_fmt(st.get('steps_per_s'))}{fastest})")
        best, test = r.get("best_validation") or {}, r.get("test") or {}
        if set(r["stages"]) == {"optics"}:  # an all-optical baseline run: its "test" used an untrained decoder
            test = {"psnr_db": "— (stage 1 only: all-optical baseline", "ssim": "no decoder)"}
        t28 = (r.get("time_to_psnr_s") or {}).get("28")
        lines.append(
            f"| {r['preset']}{noise} ({r['budget']}) | {_init_name(r['init']) if r.get('init') else '—'} | "
            f"{'; '.join(stages)} | {r['wall_s'] / 60:.1f} | {_fmt(m.get('load_average_start'))}/"
            f"{_fmt(m.get('load_average_end'))} | {'—' if t28 is None else f'{t28 / 60:.1f}'} | "
            f"{_fmt(best.get('psnr_db'), 4)} / {_fmt(best.get('ssim'))} | {_fmt(test.get('psnr_db'), 4)} / "
            f"{_fmt(test.get('ssim'))} | `{r['command']}` |")
    experiments = [r for r in records if r.get("init") == r["preset"] and r.get("test")]
    base = {r["preset"]: r for r in records if not r.get("init") and r.get("test") and set(r["stages"]) != {"optics"}}
    for preset in sorted({r["preset"] for r in experiments} & set(base)):
        b = base[preset]
        lines += ["", f"Experiments on the shipped {preset}'s decoder (same optics, same test fields; not shipped):",
                  ""]
        for r in (r for r in experiments if r["preset"] == preset):
            steps = r["stages"].get("decoder", {}).get("steps", "?")
            what = (f"a new `{r['decoder_preset']}` decoder trained for {steps} steps on its optics"
                    if r.get("decoder_preset") else
                    f"its decoder continued for {steps} more steps (learning-rate schedule restarted)")
            lines.append(f"- {what}: test patch PSNR {b['test']['psnr_db']:.2f} → {r['test']['psnr_db']:.2f} dB "
                         f"({r['test']['psnr_db'] - b['test']['psnr_db']:+.2f}), SSIM {b['test']['ssim']:.3f} → "
                         f"{r['test']['ssim']:.3f}, {r['wall_s'] / 60:.0f} min")
        lff = base.get("lff-x64")
        if lff and "optical_psnr_db" in b["test"] and "optical_psnr_db" in lff["test"]:
            lines += ["", f"For comparison, what the optics alone deliver (the stage-1 all-optical image on the same "
                      f"test patches): {preset} {b['test']['optical_psnr_db']:.2f} dB, lff-x64 "
                      f"{lff['test']['optical_psnr_db']:.2f} dB."]
    cpus = sorted({f"{r['machine'].get('cpu', '?')} ({r['machine']['cores']} cores, torch {r['machine']['torch']})"
                   for r in records})
    lines += ["", f"Machines: {'; '.join(cpus)}.", "",
              "![validation PSNR against wall time](images/bench_training_curves.png)", ""]
    return lines


def _full_fov_section(records: list[dict]) -> list[str]:
    lines = ["## Full field of view: one measurement + blended windows vs independently imaged 256² tiles", ""]
    if not records:
        return lines + ["Not measured yet: run `benchmarks/bench_full_fov.py`.", ""]
    lines += _stale_records(records, "full_fov")
    data = sorted({(len(r["fields"]), r.get("data_dir", "the model's test split"),
                    report_models._data_words(r)) for r in records})
    lines += ["Same pixels (the region the 256² tiles cover), PSNR on φ/2π with data range 1, on "
              + "; ".join(f"{n} fields of {d} ({w})" for n, d, w in data) + ". *Pooled* is the PSNR of the pooled error over all fields (the full-FoV number); *mean of",
              "patches* averages per-patch PSNRs (the paper's patch-FoV convention, always higher by Jensen's",
              "inequality). *Tiles* is what a patch imaged on its own sees beyond its edges: `circular` = the",
              "periodic convolution of the authors' code (the paper's protocol), `reflect` = the specimen mirrored",
              "(the strongest per-patch protocol; no microscope can realise it), `dark` = a 256² field stop. The",
              "decoder is the same in every row and was trained on continuous measurements, so with `circular`",
              "and `dark` tiles it also meets patch edges it never saw in training (the paper's decoder was trained",
              "on its own protocol): those gains include that mismatch. Seam ratio: mean absolute error within ±4 px",
              "of a decoder-window boundary / elsewhere (1 = no seams; target ≤ 1.1; — when one decoder window covers",
              "each field, as for 512² fields at x64 and x256: no seam to measure there). The truth here is φ mod 2π",
              "without offset alignment (this script's own convention, older than `dm.evaluate`'s background-referenced",
              "one): on the realistic phantoms, whose thick cells reach 2π and whose background noise can wrap, its",
              "absolute PSNRs are lower than and not comparable with the other tables'; the gain compares both",
              "protocols against the same truth.", "",
              "| model | tiles | fields | overlap (camera px) | pooled PSNR ours | pooled PSNR tiled | gain (target ≥ +0.5 dB) | mean-of-patches ours | mean-of-patches tiled | seam ratio |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = {"circular": 0, "reflect": 1, "dark": 2}
    for r in sorted(records, key=lambda r: (Path(r["model"]).name, order.get(r.get("tiles", "reflect"), 9))):
        lines.append(f"| {Path(r['model']).name} | {r.get('tiles', 'reflect')} | {len(r['fields'])} | "
                     f"{r['overlap_camera_px']} | {r['pooled_psnr_db']['ours']:.2f} | {r['pooled_psnr_db']['tiled']:.2f} | "
                     f"{r['gain_db']:+.2f} dB | {r['mean_patch_psnr_db']['ours']:.2f} | "
                     f"{r['mean_patch_psnr_db']['tiled']:.2f} | "
                     + ("— |" if r["seam_ratio"] is None else f"{r['seam_ratio']:.3f} |"))
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in records), ""]
    return lines


def _stale_records(records: list[dict], kind: str) -> list[str]:
    """The bold warning for the records of a section that were measured on earlier checkpoints."""
    status = {id(r): report_models.checkpoint_status(
        {Path(r["model"]).name: r["checkpoint_sha256"]} if r.get("checkpoint_sha256") else None) for r in records}
    stale = [r for r in records if status[id(r)] != "current"]
    if not stale:
        return []
    names = ", ".join(f"{Path(r['model']).name}" + (f" ({r['tiles']} tiles)" if r.get("tiles") else "") for r in stale)
    worst = "unrecorded" if any(status[id(r)] == "unrecorded" for r in stale) else "earlier"
    return report_models.stale_banner(None, f"results/{kind}_*.json of {names}", worst)


def _realdata_section(records: list[dict]) -> list[str]:
    lines = ["## Real measured fields, first check (superseded by the embedded measured cells above)", ""]
    if not records:
        return lines + ["Not measured yet: run `benchmarks/bench_realdata.py`.", ""]
    lines += _stale_records(records, "realdata")
    lines += ["Measured HL60 fields from ../shared/realdata, resampled with anti-aliasing to 316.4 nm, background",
              "phase set to the phantoms' 0.15 rad (a global phase is unobservable), simulated noise free and",
              "reconstructed; full-field PSNR/SSIM on φ/2π.", "",
              "The PSNR/SSIM columns image the small crop alone: beyond its edge the simulation mirrors the",
              "specimen, i.e. a lattice of copies of the same cell, and the phase is clipped to [0, 2π) without",
              "unwrapping relative to the background, with no offset alignment. \"In FoV\": the same cell placed",
              "in a 256² field of noiseless empty background, scored on the crop's region; on that region, *flat* is",
              "the background phase everywhere (what a model that learned nothing would score) and *binned ref.*",
              "the binned-phase reference (true phase binned to the model's camera grid and bicubic upsampled: a",
              "phase camera, neither achievable by intensity optics above π nor a bound). The section \"Measured",
              "cells embedded in an empty field\" scores them properly.", "",
              "| model | field | size (px at 316.4 nm) | PSNR (dB) | SSIM | in FoV PSNR / SSIM | flat PSNR / SSIM "
              "| binned ref. PSNR / SSIM |",
              "|---|---|---|---:|---:|---|---|---|"]
    nan = float("nan")
    for r in records:
        for f in r["fields"]:
            lines.append(f"| {Path(r['model']).name} | {f['name']} | {f['shape'][0]}×{f['shape'][1]} | "
                         f"{f['psnr_db']:.2f} | {f['ssim']:.3f} | {f.get('in_fov_psnr_db', nan):.2f} / "
                         f"{f.get('in_fov_ssim', nan):.3f} | {f.get('flat_psnr_db', nan):.2f} / "
                         f"{f.get('flat_ssim', nan):.3f} | "
                         f"{f.get('binned_reference_psnr_db', f.get('oracle_psnr_db', nan)):.2f} / "
                         f"{f.get('binned_reference_ssim', f.get('oracle_ssim', nan)):.3f} |")
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in records), ""]
    return lines


def _large_field_section() -> list[str]:
    path = RESULTS / "large_field.md"
    lines = ["## Large fields: memory", ""]
    if not path.exists():
        return lines + ["Not measured yet: run `benchmarks/bench_large_field.py --size 10000`.", ""]
    return lines + [line for line in path.read_text().splitlines() if not line.startswith("# ")] + [""]


def _plot(records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in records:
        curve = [v for v in r["validation"] if "psnr_db" in v]
        if curve:
            ax.plot([v["elapsed_s"] / 60 for v in curve], [v["psnr_db"] for v in curve], marker="o", ms=3,
                    label=_run_label(r))
    ax.axhline(28, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("wall time (min, 2 CPU cores)")
    ax.set_ylabel("validation PSNR (dB, patch)")
    cpus = sorted({r["machine"].get("cpu", "?") for r in records if "machine" in r})
    ax.set_title(f"Time to quality on phantom fields ({'; '.join(cpus)}, 2 CPU cores)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(IMAGES / "bench_training_curves.png", dpi=110)
    plt.close(fig)


def main() -> int:
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("training_*.json"))]
    lines = ["# Benchmarks", "",
             "Generated by `python benchmarks/report.py` from `benchmarks/results/`; each section names the",
             "script that measured it. Timings are on the project's 2-core CPU machines (no GPU) and are noisy",
             "(±30–50 % run to run); ratios are only compared within one run.", ""]
    full_fov = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("full_fov_*.json"))]
    honest = report_honest.load_all()
    lines += report_honest.targets_section(honest)
    lines += report_honest.before_after_section(honest)
    lines += report_optics_table.section()
    lines += report_models.summary_section(full_fov)
    lines += report_models.quality_section()
    lines += report_honest.sections()
    lines += _full_fov_section(full_fov)
    lines += report_models.photons_section()
    lines += report_models.speed_section()
    lines += report_fluorescence.section()
    lines += ["## Reconstructions (like the paper's Fig. 5)", "",
              "Made by `python benchmarks/figure_reconstructions.py`; the figure's title records the date and machine.", "",
              "![ground truth, measurements, reconstructions and SSIM maps](images/bench_fig5.png)", ""]
    lines += _training_section(records)
    if records:
        _plot(records)
    lines += _large_field_section()
    lines += _realdata_section([json.loads(p.read_text()) for p in sorted(RESULTS.glob("realdata_*.json"))])
    decoders = RESULTS / "decoders.md"
    lines += ["## Decoders: inference and training step", "",
              "Measured by `python benchmarks/bench_decoders.py` (upscale 8), which writes benchmarks/results/decoders.md.", ""]
    if decoders.exists():
        body = decoders.read_text().splitlines()
        lines += [line for line in body if not line.startswith("# ")]
    else:
        lines.append("Not measured yet.")
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n")
    print("wrote", DOCS / "benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
