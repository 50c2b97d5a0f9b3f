"""The "Fluorescence" section of docs/benchmarks.md from results/fluorescence_<model>.json
(benchmarks/bench_fluorescence.py): issue-12 targets met / missed by how much, learned vs designed patterns at
equal dose and decoder budget, strata, photon curve, segmentation arms, the measured DSB2018 image, wall time, and
the like-for-like comparison with the published numbers. Models without a results file are named, never scored.
Used by ``benchmarks/report.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from report_honest import _miss
from report_models import _pyplot, finish_plot, machine_label

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: the issue-12 models: reconstruction, task-aware, and the equal-budget designed baselines
EXPECTED = ("fluo-x64", "fluo-x256", "fluo-x1024", "fluo-seg-x256", "fluo-seg-x1024", "fluo-x64-random-frozen",
            "fluo-x64-hadamard-frozen", "fluo-x256-random-frozen", "fluo-x256-hadamard-frozen")
#: the field strata of bench_fluorescence.COVER_BINS, by name
COVER_STRATA = ("sparse (< 15 %)", "medium (15–30 %)", "dense (≥ 30 %)")
PSNR_TARGETS_DB = {64: 30.0, 256: 26.0, 1024: 22.0}
DICE_TARGETS = {64: 0.93, 256: 0.84, 1024: 0.53}
LEARNED_GAIN_TARGET_DB = 1.0
LEARNED_GAIN_AT = (64, 256)
MEASURED_DICE_TOLERANCE = 0.05
TIME_TARGET_S = 1.0
#: Le0nZim's replication of the fluorescence paper (../shared/reference/seed-code-notes.md §4; the paper's own
#: tables are not in our sources, its seed text is the abstract): learned vs random patterns, test MSE lower by
#: this fraction (Fig. 3, archived campaign), and Dice of fixed vs learnable patterns (Fig. 4, BBBC022 proxy with
#: threshold pseudo-labels)
REPLICATION_MSE_REDUCTION = {64: 0.58, 256: 0.64, 1024: 0.37}
REPLICATION_DICE = {64: (0.9007, 0.9272), 256: (0.7196, 0.8358), 1024: (0.5000, 0.5245)}


def load_all() -> dict[str, dict]:
    found = {}
    for path in sorted(RESULTS.glob("fluorescence_*.json")):
        r = json.loads(path.read_text())
        found[r["name"]] = r
    return found


def _data_key(r: dict) -> tuple:
    t = r["training"]
    return t.get("training_data"), tuple(t.get("extra_data") or ()), t.get("extra_data_weight")


def _data_label(r: dict) -> str:
    data, extra, weight = _data_key(r)
    return f"{data}" + (f" + {', '.join(extra)} at weight {weight:g}" if extra and weight is not None
                        else f" + {', '.join(extra)}" if extra else "")


def _same_data_pairs(records: dict) -> list[tuple[dict, dict]]:
    """(task-aware x64, full-resolution network) pairs trained on the same data with the same seed, both scored on
    DSB2018."""
    full = {(_data_key(r), _seed(r)): r for r in records.values() if r.get("role") == "full-resolution" and "measured" in r}
    return [(r, full[_data_key(r), _seed(r)]) for r in _task_aware(records, 64)
            if "measured" in r and (_data_key(r), _seed(r)) in full]


def _c(r: dict) -> int:
    return int(round(r["model"]["compression"]))


def _arm(r: dict) -> str:
    return "full-resolution" if r.get("role") == "full-resolution" else r["training"]["arm"]


def _seed(r: dict) -> int:
    return r["training"].get("seed") or 0


def _reconstruction_models(records: dict, compression: int, arm: str = "learned") -> list[dict]:
    """The reconstruction models of one arm at one compression, the first seed first (the shipped model)."""
    return sorted((r for r in records.values() if _c(r) == compression and _arm(r) == arm and not r["model"]["seg_head"]),
                  key=lambda r: (_seed(r), r["name"]))


def _task_aware(records: dict, compression: int) -> list[dict]:
    return sorted((r for r in records.values() if _c(r) == compression and r["model"]["seg_head"]
                   and r.get("role") != "full-resolution"), key=lambda r: (_seed(r), r["name"]))


def _label(r: dict) -> str:
    """The model's name, flagged when its run had not finished when it was scored."""
    return r["name"] + (" (run unfinished)" if r["training"].get("finished") is False else "")


def _pair(m: dict | None) -> str:
    return "—" if not m else f"{m['psnr_db']:.2f} / {m['ssim']:.3f}"


def _dose(r: dict) -> str:
    m = r["model"]
    return f"{m['photons_per_unit']:g} ph/unit, σ {m['read_noise_e']:g} e⁻" if m["photons_per_unit"] else "noise free"


def _steps(r: dict) -> str:
    return ", ".join(f"{s['name']} {s['steps_done'] if s['steps_done'] is not None else '?'}/{s['steps']}"
                     for s in r["training"]["stages"]) or "?"


def _db_of_mse_reduction(fraction: float) -> float:
    return 10 * math.log10(1 / (1 - fraction))


# ---- targets -----------------------------------------------------------------------------------------------

def learned_vs_designed(records: dict, compression: int) -> dict | None:
    """The learned reconstruction model and the designed (frozen) arms at ``compression`` with Δ dB."""
    learned = _reconstruction_models(records, compression)
    designed = [r for r in records.values() if _c(r) == compression and _arm(r).endswith("-frozen")
                and not r["model"]["seg_head"]]
    if not learned:
        return None
    out = {"learned": learned[0], "learned_seeds": learned[1:],
           "designed": sorted(designed, key=lambda r: (_seed(r), -r["heldout"]["psnr_db"])),
           # learned patterns that started from a design (``--optics-init hadamard``, not frozen): same budget
           "learned_from": [r for r in records.values() if _c(r) == compression and _arm(r).startswith("learned-from-")
                            and not r["model"]["seg_head"]]}
    # each seed's learned patterns against the best design trained with the same seed; the verdict is their mean
    per_seed = []
    for r in learned:
        same = [d for d in out["designed"] if _seed(d) == _seed(r)]
        if same:
            per_seed.append({"seed": _seed(r), "learned": r, "best": same[0],
                             "gain_db": r["heldout"]["psnr_db"] - same[0]["heldout"]["psnr_db"]})
    if per_seed:
        out["per_seed"] = per_seed
        out["best"] = per_seed[0]["best"]
        out["gain_db"] = sum(g["gain_db"] for g in per_seed) / len(per_seed)
    if designed:
        budgets = {(tuple((s["steps"], s["batch_size"]) for s in r["training"]["stages"]),
                    r["model"]["decoder_parameters"], r["model"]["photons_per_unit"], r["model"]["read_noise_e"])
                   for r in [learned[0], *designed]}
        out["equal_budget"] = len(budgets) == 1
    return out


def _gap_verdict(gap: float) -> str:
    """A DSB2018 Dice gap (full resolution − x64) against the tolerance: met, or missed by how much."""
    return "met" if gap <= MEASURED_DICE_TOLERANCE else f"**missed by {gap - MEASURED_DICE_TOLERANCE:.3f}**"


def targets_lines(records: dict) -> list[str]:
    lines = ["**Issue-12 targets** (held-out generator fields, each model at its stated dose, binary patterns):", ""]
    for c in LEARNED_GAIN_AT:
        cmp = learned_vs_designed(records, c)
        if cmp is None or "gain_db" not in cmp:
            have = "the learned model" if cmp is None else "a designed (frozen random / Hadamard) baseline"
            lines.append(f"- learned ≥ {LEARNED_GAIN_TARGET_DB:g} dB over random and Hadamard at x{c}: not measured "
                         f"(no results for {have} at x{c})")
            continue
        first = [r for r in cmp["designed"] if _seed(r) == _seed(cmp["learned"])]
        others = "; ".join(f"{_arm(r)} {r['heldout']['psnr_db']:.2f} dB" for r in first)
        seeds = cmp["per_seed"]
        over_seeds = ("" if len(seeds) < 2 else
                      f"; over {len(seeds)} seeds (each learned run against the best design of its own seed): "
                      + ", ".join(f"seed {g['seed']} {g['gain_db']:+.2f} dB ({g['learned']['name']} "
                                  f"{g['learned']['heldout']['psnr_db']:.2f} vs {g['best']['name']} "
                                  f"{g['best']['heldout']['psnr_db']:.2f})" for g in seeds)
                      + f", mean {cmp['gain_db']:+.2f} dB")
        missing = {"random-frozen", "hadamard-frozen"} - {_arm(r) for r in cmp["designed"]}
        budget = "" if cmp["equal_budget"] else " — budgets or doses DIFFER between the arms (see the table)"
        lines.append(f"- learned ≥ {LEARNED_GAIN_TARGET_DB:g} dB over random and Hadamard at x{c}: "
                     f"{cmp['learned']['heldout']['psnr_db']:.2f} dB, {seeds[0]['gain_db']:+.2f} dB over the best "
                     f"designed ({_arm(cmp['best'])}; {others}){over_seeds} "
                     f"({_miss(cmp['gain_db'], LEARNED_GAIN_TARGET_DB, ' dB')})"
                     + (f"; {' and '.join(sorted(missing))} not measured" if missing else "") + budget)
        for r in cmp["learned_from"]:
            gain = r["heldout"]["psnr_db"] - cmp["best"]["heldout"]["psnr_db"]
            lines.append(f"  - {_arm(r)} ({_label(r)}, the same preset and budget, patterns learned from that design): "
                         f"{r['heldout']['psnr_db']:.2f} dB, {gain:+.2f} dB over the best designed "
                         f"({_miss(gain, LEARNED_GAIN_TARGET_DB, ' dB')})")
    for c, target in PSNR_TARGETS_DB.items():
        models = _reconstruction_models(records, c)
        if not models:
            lines.append(f"- reconstruction x{c} ≥ {target:g} dB: not measured (no learned x{c} results)")
            continue
        r = models[0]
        lines.append(f"- reconstruction x{c} ≥ {target:g} dB: {r['heldout']['psnr_db']:.2f} dB "
                     f"({_miss(r['heldout']['psnr_db'], target, ' dB')}; {_label(r)}, {r['heldout']['fields']} fields; "
                     f"the fields' flat guess {_flat(r['heldout'])} dB)")
    for c, target in DICE_TARGETS.items():
        models = [r for r in _task_aware(records, c) if "task_aware" in r["heldout"]]
        if not models:
            lines.append(f"- task-aware Dice x{c} ≥ {target:g}: not measured (no task-aware x{c} results"
                         + (": no such model is trained in issue 12's list)" if c == 64 else ")"))
            continue
        r = models[0]
        d = r["heldout"]["task_aware"]["dice"]
        lines.append(f"- task-aware Dice x{c} ≥ {target:g}: {d:.3f} ({_miss(d, target, '')}; {_label(r)})")
    pairs = _same_data_pairs(records)
    best_full = max((f for _, f in pairs), key=lambda f: f["measured"]["task_aware"]["dice"], default=None)
    for x64, full in pairs:
        gap = full["measured"]["task_aware"]["dice"] - x64["measured"]["task_aware"]["dice"]
        weaker = best_full["measured"]["task_aware"]["dice"] - full["measured"]["task_aware"]["dice"]
        caveat = (f"; but this reference is itself {weaker:.3f} below {best_full['name']}: the gap closed because the "
                  "full-resolution network got worse, not because the x64 model got better"
                  if gap <= MEASURED_DICE_TOLERANCE and weaker > MEASURED_DICE_TOLERANCE else "")
        lines.append(f"- DSB2018 Dice at x64 within {MEASURED_DICE_TOLERANCE:g} of the full-resolution network trained on "
                     f"the same data ({_data_label(x64)}): {x64['name']} {x64['measured']['task_aware']['dice']:.3f} vs "
                     f"{full['name']} {full['measured']['task_aware']['dice']:.3f} "
                     f"({_gap_verdict(gap)}{caveat})")
    for key in sorted({_data_key(x64) for x64, _ in pairs}, key=str):
        seeds = [(x64, full) for x64, full in pairs if _data_key(x64) == key]
        if len(seeds) > 1:  # the verdict over seeds: the mean gap of the same-seed pairs
            gap = sum(f["measured"]["task_aware"]["dice"] - x["measured"]["task_aware"]["dice"] for x, f in seeds) / len(seeds)
            lines.append(f"  - over {len(seeds)} seeds on {_data_label(seeds[0][0])} (each pair trained with one seed): "
                         f"mean gap {gap:.3f} ({_gap_verdict(gap)})")
    if not pairs:
        lines.append(f"- DSB2018 Dice at x64 within {MEASURED_DICE_TOLERANCE:g} of the same network on full-resolution "
                     "images: not measured (needs a task-aware x64 model and a --full-res run on the same data)")
    timed = [r for r in records.values() if "timing" in r]
    for r in timed:
        t = r["timing"]
        load = t["load_average_before"][0]
        head = f"- {t['image_px'][0]}² reconstruction < {TIME_TARGET_S:g} s on 2 idle cores ({_label(r)}): "
        if t["threads"] == 2 and load < 1.0:
            lines.append(head + f"median {t['median_s']:.2f} s "
                         f"({_miss(t['median_s'], TIME_TARGET_S, ' s', higher_is_better=False)})")
        elif t["threads"] <= 2 and t["median_s"] < TIME_TARGET_S:
            # fewer threads and a loaded machine only make it slower: a wall time under the target is an upper bound
            lines.append(head + f"met — median {t['median_s']:.2f} s on {t['threads']} thread(s) at load {load:.1f} "
                         "(an upper bound of the idle 2-core time)")
        else:  # a busy machine: the wall time says nothing about the target, the CPU time per call is the work
            lines.append(head + f"not decided — measured on {t['threads']} thread(s) at load {load:.1f}: median wall "
                         f"{t['median_s']:.2f} s, {t.get('median_cpu_s', float('nan')):.2f} s of CPU per call")
    if not timed:
        lines.append(f"- 1024² reconstruction < {TIME_TARGET_S:g} s on 2 cores: not measured")
    return lines + [""]


# ---- tables ------------------------------------------------------------------------------------------------

def _nuclei(strata: dict, group: str) -> str:
    g = strata.get(group)
    if not g:
        return "—"
    rel = g["median_relative_error"]
    return f"{g['psnr_db']:.2f} ({'—' if rel is None else f'{100 * rel:.1f} %'})"


def reconstruction_table(records: dict) -> list[str]:
    strata = COVER_STRATA
    lines = ["| model | arm | C | dose | fields | PSNR / SSIM | flat guess | sparse | medium | dense | dim nuclei PSNR (rel. err) | "
             "bright nuclei PSNR (rel. err) | DSB2018 PSNR / SSIM (flat guess) |",
             "|---|---|---:|---|---:|---|---:|---:|---:|---:|---|---|---|"]
    for r in sorted(records.values(), key=lambda r: (_c(r), r["model"]["seg_head"], r["name"])):
        h = r["heldout"]
        cover = [f"{h['by_cover'][s]['psnr_db']:.2f} ({h['by_cover'][s]['fields']})" if s in h["by_cover"] else "—"
                 for s in strata]
        nuclei = [_nuclei(h.get("by_brightness") or {}, k) for k in ("dim", "bright")]
        measured = r.get("measured")
        lines.append(f"| {_label(r)} | {_arm(r)} | x{_c(r)} | {_dose(r)} | {h['fields']} | {_pair(h)} | "
                     f"{_flat(h)} | {' | '.join(cover)} | {' | '.join(nuclei)} | {_pair(measured)} ({_flat(measured)}) |")
    return lines + ["", "*flat guess*: the PSNR of each field's own mean everywhere (a model that learned nothing of the "
                    "field), averaged like the model's; the generated fields are mostly dark, so read a PSNR against "
                    "it, not against 0.", ""]


def _flat(m: dict | None) -> str:
    return "—" if not m or "flat_psnr_db" not in m else f"{m['flat_psnr_db']:.2f}"


def designed_table(records: dict) -> list[str]:
    lines = ["| C | arm | model | PSNR / SSIM | Δ dB vs learned | mirrors flipped vs its init | duty | training steps "
             "(done/planned) | decoder parameters |", "|---:|---|---|---|---:|---:|---:|---|---:|"]
    rows = 0
    for c in sorted({_c(r) for r in records.values()}):
        cmp = learned_vs_designed(records, c)
        if cmp is None:
            continue
        learned = {_seed(r): r for r in [cmp["learned"], *cmp["learned_seeds"]]}
        for r in [cmp["learned"], *cmp["learned_seeds"], *cmp["learned_from"], *cmp["designed"]]:
            p = r["patterns"]
            own = learned.get(_seed(r), cmp["learned"])  # against the learned run of the same seed
            delta = "" if r is own else f"{r['heldout']['psnr_db'] - own['heldout']['psnr_db']:+.2f}"
            lines.append(f"| x{c} | {_arm(r)} | {_label(r)} | {_pair(r['heldout'])} | {delta} | "
                         f"{100 * p['mirrors_flipped_fraction']:.1f} % ({p['init']}) | {p['duty_cycle']:.3f} | "
                         f"{_steps(r)} | {r['model']['decoder_parameters']:,} |")
            rows += 1
    return (lines if rows else ["No learned reconstruction model measured yet."]) + [""]


def compression_plot(records: dict) -> list[str]:
    """PSNR against compression for each pattern type (the first seed of every arm), as a figure."""
    arms = ("learned", "hadamard-frozen", "random-frozen")
    points = {arm: sorted((_c(r), r["heldout"]["psnr_db"]) for c in sorted({_c(r) for r in records.values()})
                          for r in _reconstruction_models(records, c, arm)[:1])
              for arm in arms}
    if sum(len(v) > 1 for v in points.values()) < 2:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for arm, pts in points.items():
        if pts:
            ax.semilogx([c for c, _ in pts], [db for _, db in pts], marker="o", label=arm.replace("-frozen", " (frozen)"),
                        base=4)
    ax.set_xticks([c for c, _ in points["learned"]], [f"x{c}" for c, _ in points["learned"]])
    m = next(iter(records.values()))["machine"]
    finish_plot(fig, ax, "compression C = d²/T", "PSNR (dB)",
                f"held-out fields, equal dose and decoder budget ({machine_label(m)})", "bench_fluorescence_patterns.png")
    return ["![PSNR against compression for learned, Hadamard and random patterns]"
            "(images/bench_fluorescence_patterns.png)", ""]


def segmentation_table(records: dict) -> list[str]:
    lines = ["| C | arm | model | Dice | F1 @ IoU 0.5 (mean / pooled) | Dice sparse / medium / dense fields | "
             "DSB2018 Dice | DSB2018 F1 |", "|---:|---|---|---:|---|---|---:|---:|"]

    def row(c, arm, name, h, m, by_cover=None, key=None):
        cover = " / ".join(f"{by_cover[s][key]['dice']:.3f}" if key in by_cover.get(s, {}) else "—"
                           for s in COVER_STRATA) if by_cover else "—"
        return (f"| {c} | {arm} | {name} | {h['dice']:.3f} | {h['f1']:.3f} / {h['pooled_f1']:.3f} | {cover} | "
                + (f"{m['dice']:.3f} | {m['f1']:.3f} |" if m else "— | — |"))
    ordered = sorted(records.values(), key=lambda r: (_c(r), r["name"]))
    for r in ordered:
        h, m = r["heldout"], r.get("measured") or {}
        label = "full-resolution network" if r.get("role") == "full-resolution" else "task-aware (dm.segment)"
        if "task_aware" in h:
            lines.append(row(f"x{_c(r)}", label, _label(r), h["task_aware"], m.get("task_aware"), h["by_cover"],
                             "task_aware"))
        if "classical" in h and _arm(r) == "learned" and not r["model"]["seg_head"]:
            lines.append(row(f"x{_c(r)}", "reconstruct → classical", _label(r), h["classical"], m.get("classical"),
                             h["by_cover"], "classical"))
    truth = next((r for r in ordered if r.get("classical_on_truth")), None)
    if truth:
        lines.append(row("x1", "classical on the full-resolution truth", "—", truth["classical_on_truth"],
                         (truth.get("measured") or {}).get("classical_on_truth")))
    return lines + [""]


def photon_lines(records: dict) -> list[str]:
    curves = {n: r["photon_curve"] for n, r in records.items() if r.get("photon_curve")}
    if not curves:
        return ["Photon curve: not measured yet (`--photon-curve NAME`).", ""]
    lines = ["| model | fields | " + " | ".join("noise free" if p["photons_per_unit"] is None else
                                                 f"{p['photons_per_unit']:g} ph" for p in next(iter(curves.values())))
             + " |", "|---|---:|" + "---:|" * len(next(iter(curves.values())))]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, curve in curves.items():
        lines.append(f"| {name} | {curve[0]['fields']} | " + " | ".join(f"{p['psnr_db']:.2f}" for p in curve) + " |")
        finite = [p for p in curve if p["photons_per_unit"]]
        ax.semilogx([p["photons_per_unit"] for p in finite], [p["psnr_db"] for p in finite], marker="o", label=name)
        free = [p for p in curve if p["photons_per_unit"] is None]
        if free:
            ax.axhline(free[0]["psnr_db"], ls="--", lw=0.8, color=ax.lines[-1].get_color())
    m = next(iter(records[n] for n in curves))["machine"]
    finish_plot(fig, ax, "photons per unit density (read noise at the model's σ)", "PSNR (dB)",
                f"held-out fields; dashed: noise free ({machine_label(m)})", "bench_fluorescence_photons.png")
    return lines + ["", "![PSNR against photons per unit](images/bench_fluorescence_photons.png)", ""]


def timing_table(records: dict) -> list[str]:
    timed = [r for r in records.values() if "timing" in r]
    if not timed:
        return []
    lines = ["| model | image | threads | median wall (s) | all (s) | median CPU per call (s) | load average before / "
             "after (1 min) |", "|---|---|---:|---:|---|---:|---|"]
    for r in timed:
        t = r["timing"]
        lines.append(f"| {r['name']} | {t['image_px'][0]}×{t['image_px'][1]} | {t['threads']} | {t['median_s']:.3f} | "
                     f"{', '.join(f'{w:.2f}' for w in t['walls_s'])} | {t.get('median_cpu_s', float('nan')):.2f} | "
                     f"{t['load_average_before'][0]:.2f} / "
                     f"{t['load_average_after'][0]:.2f} |")
    return lines + [""]


def paper_lines(records: dict) -> list[str]:
    lines = ["**Like for like with the published numbers.** The paper's own fluorescence tables are not in our "
             "sources (its seed is the abstract); the comparable published numbers are the Le0nZim replication's "
             "(../shared/reference/seed-code-notes.md §4; other data: BBBC022 proxy, threshold pseudo-labels), so only "
             "each one's gain over its own baseline is compared:", "",
             "| C | replication: learned vs random (MSE, Fig. 3) | ours: learned − random-frozen | ours: learned − "
             "Hadamard-frozen | replication: Dice fixed → learned (Fig. 4) | ours: task-aware Dice |",
             "|---:|---|---|---|---|---|"]
    for c, reduction in REPLICATION_MSE_REDUCTION.items():
        cmp = learned_vs_designed(records, c) or {"designed": []}
        ours = {_arm(r): cmp["learned"]["heldout"]["psnr_db"] - r["heldout"]["psnr_db"] for r in cmp["designed"]
                if _seed(r) == _seed(cmp["learned"])}
        fixed, learned = REPLICATION_DICE[c]
        seg = [r for r in _task_aware(records, c) if "task_aware" in r["heldout"]]
        lines.append(f"| x{c} | −{100 * reduction:.0f} % (= {_db_of_mse_reduction(reduction):+.1f} dB) | "
                     + " | ".join(f"{ours[a]:+.2f} dB" if a in ours else "not measured"
                                  for a in ("random-frozen", "hadamard-frozen"))
                     + f" | {fixed:.3f} → {learned:.3f} ({learned - fixed:+.3f}) | "
                     + (f"{seg[0]['heldout']['task_aware']['dice']:.3f} (no frozen-pattern task-aware arm: gain not "
                        "measured)" if seg else "not measured") + " |")
    return lines + ["", "Ours are differences of mean per-field PSNR (dB); the replication's are test-MSE ratios "
                    "converted to dB (10·log10 of the MSE ratio).", ""]


def section(records: dict | None = None) -> list[str]:
    records = load_all() if records is None else records
    lines = ["## Fluorescence (issue 12)", ""]
    missing = [n for n in EXPECTED if n not in records]
    if not records:
        return lines + ["Not measured yet: run `benchmarks/bench_fluorescence.py --model NAME=RUN` for each model "
                        f"({', '.join(EXPECTED)}).", ""]
    any_r = next(iter(records.values()))
    held = {(r["heldout"]["data"], tuple(r["heldout"].get("generator_seeds", ()))) for r in records.values()}
    trained = sorted({r["training"].get("training_data") or "not recorded" for r in records.values()})
    lines += ["Measured by `benchmarks/bench_fluorescence.py` (one results file per model). Held-out fields: "
              + "; ".join(f"{d} (generator seed {', '.join(map(str, s)) or 'not recorded'})" for d, s in sorted(held))
              + f" — the models trained on {', '.join(trained)}; full field of view through "
              "`dm.simulate` → `dm.reconstruct` / `dm.segment`, binary patterns, exact Poisson + read noise at each "
              "model's stated dose, noise seeded per field (the same seeds for every model). PSNR/SSIM of the "
              "reconstruction clipped to [0, 1] against the field normalised to [0, 1] (data range 1, per-field "
              "means). The measured DSB2018 image's pixel size is not in the file: **assumed 0.5 µm**; "
              + (f"{any_r['measured']['resampling']}." if any_r.get("measured") else "not measured."), ""]
    lines += ["Not measured (no `results/fluorescence_<name>.json`): " + ", ".join(missing) + "."
              if missing else "Every issue-12 model has results.", ""]
    lines += targets_lines(records)
    lines += ["### Reconstruction on held-out fields, by nucleus cover and nucleus brightness", "",
              "Cover strata are fields by the fraction of pixels inside nuclei (fields per stratum in brackets); dim / "
              "bright nuclei are the pooled bottom / top quartile of nuclei by true mean intensity: PSNR of the pooled "
              "error over their pixels and the median relative error of each nucleus's mean intensity.", ""]
    lines += reconstruction_table(records)
    lines += ["### Learned vs random vs Hadamard patterns (equal dose, equal decoder budget)", "",
              "Each pattern set is normalised to the same total excitation energy (T·0.5); the designed arms train the "
              "same decoder for the same steps behind frozen patterns (`--optics-init random|hadamard "
              "--freeze-optics`). Mirrors flipped: fraction of binary DMD pixels differing from the patterns the run "
              "started from (re-drawn from the run's seed; 0 for a frozen arm).", ""]
    lines += designed_table(records)
    lines += compression_plot(records)
    lines += ["### Photon curve", ""] + photon_lines(records)
    lines += ["### Segmentation: task-aware vs reconstruct-then-segment vs full resolution", "",
              "Foreground Dice and IoU-matched F1 at 0.5 (one-to-one matching), means over fields (pooled: F1 of the "
              "summed counts). *Task-aware*: the model's segmentation head from the compressed measurement "
              "(`dm.segment`). *Reconstruct → classical*: the reconstruction model's image segmented by Otsu "
              "threshold, holes filled, objects < 12.6 µm² dropped, watershed of the smoothed distance transform "
              "from maxima ≥ 3 µm apart (`napari_dmicro.instances.classical_nuclei`). *Classical on the "
              "full-resolution truth*: the same classical method on the noise-free field (its own ceiling). "
              "*Full-resolution network*: a task-aware run at compression ≤ 1, when given (`--full-res`).", ""]
    lines += segmentation_table(records)
    lines += ["### Reconstruction wall time", ""] + timing_table(records)
    lines += paper_lines(records)
    lines += ["Commands: " + "; ".join(sorted({f"`{r['command']}`" for r in records.values()})), "",
              "Machines: " + "; ".join(sorted({machine_label(r["machine"]) for r in records.values()})) + ".", ""]
    return lines
