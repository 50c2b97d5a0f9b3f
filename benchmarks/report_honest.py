"""Sections of docs/benchmarks.md from the honest evaluation (results/honest_<model>.json, bench_honest.py):
the issue-10 targets with met / missed, errors by true-phase band, the thick-cell sweep, dense vs sparse
fields, measured cells embedded in an empty field, invariance, and the gain over each model's own
all-optical baseline beside the paper's. Used by ``benchmarks/report.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from report_models import _load, _pyplot, _save, checkpoint_status, finish_plot, machine_label

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ORDER = ("lff-x64", "lff-x64-noisy", "lff-x256", "d2nn-x64", "d2nn-x64-noisy")

#: the paper's Table 1 (full FoV / patch PSNR, dB): each system and its own all-optical baseline
PAPER_GAINS = {
    "lff-x64": {"row": "C2", "baseline": "B1", "model": (27.26, 29.76), "base": (16.16, 16.98)},
    "lff-x64-noisy": {"row": "E1", "baseline": "B1", "model": (27.38, 29.81), "base": (16.16, 16.98)},
    "lff-x256": {"row": "C4", "baseline": "B1", "model": (26.00, 27.61), "base": (16.16, 16.98)},
    "d2nn-x64": {"row": "C8", "baseline": "B2", "model": (25.86, 27.24), "base": (12.37, 12.66)},
    "d2nn-x64-noisy": {"row": "E2", "baseline": "B2", "model": (25.77, 27.07), "base": (12.37, 12.66)},
}
#: issue 10: offset-aligned patch / full-FoV (PSNR dB, SSIM) targets on held-out fields
PSNR_TARGETS = {"lff-x64": ((30.0, 0.90), (27.3, 0.90)), "lff-x256": ((27.6, 0.83), (26.0, 0.83)),
                "d2nn-x64": ((27.3, 0.86), (25.9, 0.86)), "lff-x64-noisy": ((29.5, 0.89), (27.0, 0.89))}
GAIN_TARGET_DB = 8.0
THICK_BAND_TARGET_RAD = 0.5
INVARIANCE_TARGET_RAD = 0.02
MEASURED_TARGET_DB = 26.0
#: the --heldout folder whose fields have the realistic phase histogram the targets ask for
REALISTIC_HELDOUT = "real-test"


def load_all() -> dict[str, dict]:
    found = {json.loads(p.read_text())["model"]: json.loads(p.read_text()) for p in sorted(RESULTS.glob("honest_*.json"))}
    return {k: found[k] for k in ORDER if k in found} | {k: v for k, v in found.items() if k not in ORDER}


def _cond(r: dict) -> str:
    c = r["condition"]
    return f"{c['photons']:g} photons, σ {c['read_noise_e']:g} e⁻" if c.get("photons") else "noise free"


def _miss(value: float, target: float, unit: str, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value < target
    if ok:
        return "met"
    return f"**missed by {abs(value - target):.2f}{unit}**" if unit != "" else f"**missed by {abs(value - target):.3f}**"


def _thick_ok(t: dict) -> bool:
    """A peak passes when every cell's decoded core is within the tolerance (a mean over cells read too high
    and too low could pass while no cell does)."""
    return t["cells_within"] == t["cells"]


def _worst_thick(bad: list[dict]) -> str:
    """The failing peak whose worst cell is furthest beyond the tolerance, in words."""
    def beyond(t):
        return t.get("worst_cell_error_rad", abs(t["decoded_core_rad"] - t["true_core_rad"])) - t["tolerance_rad"]
    w = max(bad, key=beyond)
    err = w.get("worst_cell_error_rad", abs(w["decoded_core_rad"] - w["true_core_rad"]))
    return (f"(worst P = {w['peak_rad']:g}: mean core {w['decoded_core_rad']:.2f} rad for {w['true_core_rad']:.2f}, "
            f"{w['cells_within']} of {w['cells']} cells within; its worst cell off by {err:.2f} rad, "
            f"{err - w['tolerance_rad']:.2f} beyond the tolerance)")

def own_gain(name: str, r: dict | None) -> dict | None:
    """Gain (dB) of a model over its own all-optical baseline: from honest_<name>.json's ``gain`` (bench_honest.py
    --baseline) if measured, else from results/quality.json (bench_quality.py --baseline, same preset's stage-1
    run; the -noisy models share their noise-free model's optics initialisation and baseline)."""
    if r and "gain" in r:
        g = r["gain"]
        return {"model": (g["model"]["full_psnr_db"], g["model"]["patch_psnr_db"]),
                "base": (g["baseline"]["full_psnr_db"], g["baseline"]["patch_psnr_db"]),
                "source": f"`{r['command']}`"}
    q = _load("quality.json")
    if not q or (r and r.get("heldout") and checkpoint_status(q.get("checkpoints")) != "current"):
        return None  # a retrained model and a quality.json of its predecessor: not the same model
    base = q.get("baselines", {}).get(name.removesuffix("-noisy"))
    entry = q["models"].get(name) or {}
    m = entry.get("noisy") or entry.get("noise_free")
    if not base or not m:
        return None
    return {"model": (m["full_psnr_db"], m["patch_psnr_db"]), "base": (base["full_psnr_db"], base["patch_psnr_db"]),
            "source": "results/quality.json"}


def field_edges_lines() -> list[str]:
    """What an empty surround of a small simulated field costs and what dm.simulate does now
    (results/field_edges.json), if measured."""
    path = RESULTS / "field_edges.json"
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    if "default_full_db" not in next(iter(record["models"].values()))["mean"]:
        return ["**results/field_edges.json predates the field-edge fix: re-run benchmarks/bench_field_edges.py.**", ""]
    parts = [f"{name} {m['mean']['dish_full_db']:.2f} in an empty dish, {m['mean']['default_full_db']:.2f} by "
             f"`dm.simulate`, {m['mean']['embedded_full_db']:.2f} inside its mirror image"
             for name, m in record["models"].items()]
    n = max(len(m["fields"]) for m in record["models"].values())
    return ["**Field edges (fixed 2026-12-07).** The held-out fields (512²) are smaller than the learnable Fourier "
            "filter's grid (one decoder window: 1024 px at x64). `dm.simulate` used to pad such a field with empty "
            "background, so every cell cut by the field's edge ended in a phase step no crop of a real specimen has, "
            "which the filter spread into the field (training images crops of a specimen that continues). It now "
            "pads by the encoder's `outside_field` rule (mirrored), and every LFF number in this document was "
            f"measured after the fix. The same {n} card test fields, full FoV, offset-aligned: " + "; ".join(parts) +
            f" dB (`{record['command']}`). The tiled PhaseD2NN images each 256² tile on its own: a 512² field is "
            "not padded.", ""]


def targets_section(records: dict[str, dict]) -> list[str]:
    """Issue 10's targets, each met or missed by how much, from the honest results."""
    lines = ["## Issue 10 targets: met or missed", ""]
    if not records:
        return lines + ["Not measured yet: run `benchmarks/bench_honest.py --model NAME` for each shipped model.", ""]
    lines += ["Computed from `benchmarks/results/honest_<model>.json` (`benchmarks/bench_honest.py`; the command is in "
              "each file). Phantom scores are offset-aligned. A model scored with `--heldout` is scored on held-out "
              "fields with a realistic phase histogram (`dmicro phantom --style realistic --seed 101`, 16 fields of "
              "512², never seen in training; see Phantoms); a model without them on the older phantoms' test split "
              "and fresh fields (the models shipped before issue 10). The gain is over the model's own all-optical "
              "readout (`--baseline`, its stage-1 optics read as φ/2π) or, without it, results/quality.json.", ""]
    lines += field_edges_lines()
    for name, r in records.items():
        parts = []
        thick = r.get("thick") or []
        if thick:
            bad = [t for t in thick if not _thick_ok(t)]
            parts.append("thick-cell sweep (every cell): " + ("met for P = 1…6" if not bad else
                         f"**missed for P = {', '.join(format(t['peak_rad'], 'g') for t in bad)}** "
                         + _worst_thick(bad)))
        realistic = (r.get("heldout") or {}).get(REALISTIC_HELDOUT)
        bands, where = (realistic, "held-out realistic fields") if realistic else \
            ((r.get("bands") or {}).get("fresh"), "fresh fields")
        if bands:
            top = bands["bands"][-1]
            parts.append(f"rms error at 4–2π rad ({where}): {top['rms_rad']:.2f} rad "
                         f"({_miss(top['rms_rad'], THICK_BAND_TARGET_RAD, ' rad', False)}, target < 0.5)")
        inv = r.get("invariance")
        if inv:
            worst = max(inv["amplitude_x0.25"], inv["amplitude_x4"])
            parts.append(f"illumination ×0.25 / ×4: {inv['amplitude_x0.25']:.3f} / {inv['amplitude_x4']:.3f} rad rms "
                         f"change ({_miss(worst, INVARIANCE_TARGET_RAD, ' rad', False)}, target < 0.02)")
        t = PSNR_TARGETS.get(name)
        test = realistic or (r.get("bands") or {}).get("test_split")
        if t and test:
            (tp, tps), (tf, tfs) = t
            parts.append(f"offset-aligned {'held-out realistic fields' if realistic else 'test split'}: patch {test['patch_psnr_db']:.2f} dB "
                         f"({_miss(test['patch_psnr_db'], tp, ' dB')}) / SSIM {test['patch_ssim']:.3f} "
                         f"({_miss(test['patch_ssim'], tps, '')}), full FoV {test['full_psnr_db']:.2f} dB "
                         f"({_miss(test['full_psnr_db'], tf, ' dB')}) / {test['full_ssim']:.3f} "
                         f"({_miss(test['full_ssim'], tfs, '')})")
        meas = r.get("measured") or []
        if meas and "x64" in name:
            parts.append("measured cells on the cell region: " + ", ".join(
                f"{m['name'].split(' (')[0]} {m['cell']['psnr_db']:.1f} dB "
                f"({_miss(m['cell']['psnr_db'], MEASURED_TARGET_DB, ' dB')})" for m in meas) + " (target ≥ 26)")
        g = own_gain(name, r)
        if g:
            gain = g["model"][1] - g["base"][1]
            parts.append(f"gain over its own all-optical baseline {gain:+.2f} dB patch "
                         f"({_miss(gain, GAIN_TARGET_DB, ' dB')}, target ≥ +8)")
        else:
            parts.append("gain over its own all-optical baseline: **not measured** (no stage-1-only run; see Gains)")
        lines.append(f"- **{name}** ({_cond(r)}): " + "; ".join(parts) + ".")
    import report_optics_table

    found = report_optics_table.margins()
    lines += ["- Learned optics beat the best designed optics by ≥ 1 dB (best learned − best frozen arm of the same "
              "seed, held-out full FoV, the mean over seeds where a table has several; the learned-vs-designed "
              "sections below): " + ("; ".join(found) if found else "**not measured**") + ".", ""]
    return lines + why_missed_lines(records)


def _phase_camera(table: str, binned: str) -> dict | None:
    """The binned-phase reference scored in a learned-vs-designed table (results/<table>/<binned>.json)."""
    path = RESULTS / table / f"{binned}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _mean_cell_error(sweep: list[dict], peak_rad: float, smallest: bool) -> float:
    """Mean decoded − true core (rad) of the cells ≤ 12 µm (smallest) or ≥ 16 µm across, at one peak."""
    t = next(t for t in sweep if t["peak_rad"] == peak_rad)
    errors = [d - tr for um, tr, d in zip(t["diameters_um"], t["per_cell_true_rad"], t["per_cell_decoded_rad"],
                                              strict=True)
              if (um <= 12.5 if smallest else um >= 15.5)]
    return sum(errors) / len(errors)


def _seed_spread() -> str:
    """How far apart the seeds of each LFF learned-vs-designed table are, beside their margin over 1 dB."""
    import report_optics_table

    parts, moved = [], []
    for spec in report_optics_table.TABLES:
        path = RESULTS / f"{spec['name']}.json"
        rows = json.loads(path.read_text())["rows"] if path.exists() else []
        moved += [r["mean_abs_damplitude"] for r in rows if r["label"].startswith("learned from DPC")
                  and r.get("mean_abs_damplitude") is not None]
        v = report_optics_table.verdict(rows) if rows else None
        if v and len(v["per_seed"]) > 1 and "LFF" in spec["heading"]:
            m = [p["margin_db"] for p in v["per_seed"]]
            above = v["margin_db"] - report_optics_table.LEARNED_MARGIN_TARGET_DB
            parts.append(f"{spec['heading'].split(': ', 1)[1].split(' (')[0]}: seeds {', '.join(f'{x:+.2f}' for x in m)} "
                         f"dB (spread {max(m) - min(m):.2f}, mean {above:+.2f} from the line)")
    return ((f"Learning from it moves the filter little (mean |Δamplitude| ≤ {max(moved):.3f}). " if moved else "")
            + ("Where two seeds were run, read the mean against their spread — " + "; ".join(parts) + "." if parts
               else ""))


def why_missed_lines(records: dict[str, dict]) -> list[str]:
    """Why the missed targets are missed, each reason with the measurement that shows it."""
    cam64, cam256 = _phase_camera("optics_table", "binned-x64"), _phase_camera("optics_table_x256", "binned-x256")
    if not (cam64 and cam256) or any(REALISTIC_HELDOUT not in (records.get(n, {}).get("heldout") or {})
                                     or not records[n].get("thick") for n in ("lff-x64", "lff-x256")):
        return []
    c64, c256 = cam64["heldout"][REALISTIC_HELDOUT], cam256["heldout"][REALISTIC_HELDOUT]
    m64, m256 = records["lff-x64"]["heldout"][REALISTIC_HELDOUT], records["lff-x256"]["heldout"][REALISTIC_HELDOUT]
    (tp256, ts256), (tf256, _) = PSNR_TARGETS["lff-x256"]
    gain = own_gain("lff-x256", records["lff-x256"])
    qlsi = next(m for m in cam64["measured"] if "QLSI" in m["name"])["cell"]["psnr_db"]
    holo = next(m for m in cam64["measured"] if "QLSI" not in m["name"])["cell"]["psnr_db"]
    within = ", ".join(f"{t['cells_within']}" for t in cam256["thick"])
    qlsi_px = next(m for m in cam64["measured"] if "QLSI" in m["name"])["shape"][0]
    d2nn = records.get("d2nn-x64") or {}
    d2nn_rms = ((d2nn.get("heldout") or {}).get(REALISTIC_HELDOUT) or {}).get("bands", [{}])[-1].get("rms_rad")
    d2nn_bad = [t for t in d2nn.get("thick") or [] if not _thick_ok(t)]
    sweep = records["lff-x256"]["thick"]
    lines = ["**Why the misses, and the measurement behind each.** The *phase camera* below is the binned-phase "
             "reference of the learned-vs-designed tables: the true phase binned to the model's camera pixels and "
             "interpolated bicubically, scored on the same held-out realistic fields. It is no bound (a decoder with a "
             "prior can beat it) and no intensity microscope can measure it, but it shows what these fields still "
             "hold at that pixel count.",
             f"- *Image quality (patch PSNR, SSIM).* The targets are the paper's numbers on its HeLa fields. On these "
             f"fields the x64 phase camera scores patch {c64['patch_psnr_db']:.2f} dB / SSIM {c64['patch_ssim']:.3f} "
             f"and the x256 one {c256['patch_psnr_db']:.2f} / {c256['patch_ssim']:.3f}, full FoV "
             f"{c256['full_psnr_db']:.2f} dB: the SSIM targets (0.90 at x64, {ts256} at x256) lie above both "
             f"(lff-x64 reaches {m64['patch_ssim']:.3f}, above its phase camera; lff-x256 {m256['patch_ssim']:.3f}), "
             f"and lff-x256's {tp256} / {tf256} dB lie {tp256 - c256['patch_psnr_db']:.1f} / "
             f"{tf256 - c256['full_psnr_db']:.1f} dB above its phase camera, which lff-x256 itself trails by "
             f"{c256['full_psnr_db'] - m256['full_psnr_db']:.1f} dB. At x64 the PSNR targets (lff-x64 "
             f"{PSNR_TARGETS['lff-x64'][0][0]} / {PSNR_TARGETS['lff-x64'][1][0]} dB, d2nn-x64 "
             f"{PSNR_TARGETS['d2nn-x64'][0][0]} / {PSNR_TARGETS['d2nn-x64'][1][0]}) lie at or below that phase "
             f"camera ({c64['patch_psnr_db']:.2f} / {c64['full_psnr_db']:.2f}): the x64 PSNR misses are not a pixel "
             "limit but the intensity encoding and the decoder (the short-budget runs of the learned-vs-designed "
             "tables were still improving when they stopped).",
             f"- *lff-x256's gain over its own all-optical baseline.* The baseline is the same full-resolution "
             f"stage-1 readout as lff-x64's ({gain['base'][1]:.2f} dB patch); +8 dB would need "
             f"{gain['base'][1] + GAIN_TARGET_DB:.2f} dB patch at x256, {gain['base'][1] + GAIN_TARGET_DB - c256['patch_psnr_db']:+.1f} dB "
             "beside the x256 phase camera." if gain else "",
             f"- *rms at 4–2π for lff-x256* ({m256['bands'][-1]['rms_rad']:.2f} rad): the x256 phase camera's own is "
             f"{c256['bands'][-1]['rms_rad']:.2f} rad on the same fields; 5.06 µm pixels average a nucleus with its "
             "slopes." + (f" (d2nn-x64's {d2nn_rms:.2f} rad is not explained by its pixels: the x64 phase camera's "
                          f"is {c64['bands'][-1]['rms_rad']:.2f} rad.)" if d2nn_rms else ""),
             f"- *Thick-cell sweep at x256.* Cells of 9–12 µm are 2–3 camera pixels across. The x256 phase camera itself "
             f"has every cell within tolerance only at some peaks (cells within, P = 1…6: {within} of 8): it reads "
             f"small thick cells low. lff-x256 fails differently: it reads the small thin and middle cells high "
             f"(cells ≤ 12 µm at P = 2: {_mean_cell_error(sweep, 2.0, True):+.2f} rad on average, ≥ 16 µm: "
             f"{_mean_cell_error(sweep, 2.0, False):+.2f}), towards the 3–6 rad cells it was trained on: where the "
             "camera cannot resolve a cell the decoder returns its prior. The frozen DPC filter at the short budget "
             "over-reads P = 2–4 too (learned-vs-designed x256 table), so this is the decoder at this pixel count, "
             "not the learned filter alone. Not fixed: it would need training fields with small thin cells weighted "
             "like the thick ones.",
             "- *Thick-cell sweep, P = 1, at x64* (lff-x64, -noisy): large thin cells read low — docs/physics.md, "
             "*Intensity is not monotonic in phase* (per cell: the gradient encoding sees a cell by its edges)."
             + (f" The PhaseD2NN misses by single cells at P = {', '.join(format(t['peak_rad'], 'g') for t in d2nn_bad)} "
                f"({min(t['cells_within'] for t in d2nn_bad)}–{max(t['cells_within'] for t in d2nn_bad)} of "
                f"{d2nn_bad[0]['cells']} within): its small cells read low at P = 1 and its large ones high at "
                "P = 2–3, the opposite size dependence to the LFF's; the cause is not isolated." if d2nn_bad else ""),
             f"- *Measured cells, HL60 QLSI.* The x64 phase camera scores {qlsi:.1f} dB on that cell (and "
             f"{holo:.1f} dB on the hologram cell): at {qlsi_px}×{qlsi_px} px the cell is "
             f"{qlsi_px / 8:.0f}×{qlsi_px / 8:.0f} camera pixels at x64, and the ≥ 26 dB "
             "target is above what a phase camera with those pixels reads on it. The PhaseD2NN's miss on the "
             "hologram cell (d2nn-x64 above) is not explained by the pixels, which allow the phase camera's score.",
             "- *Learned beats designed by 1 dB (PhaseD2NN; the LFF margins are close to the line).* The gradient "
             "(DPC-like) encoding is what lets an intensity camera read thick cells, and a designed filter already "
             "has it. " + _seed_spread() +
             " For the PhaseD2NN, flat layers (defocus contrast) are already a working encoder and learning did not "
             "improve on them (one seed)."]
    return [lines[0], ""] + [line for line in lines[1:] if line] + [""]


def before_after_section(records: dict[str, dict]) -> list[str]:
    """The models shipped before issue 10 (results/before_retraining/<model>.json, bench_honest.py --table
    before_retraining on the old checkpoints) beside the retrained ones, on the same held-out fields."""
    before = {json.loads(p.read_text())["model"]: json.loads(p.read_text())
              for p in sorted((RESULTS / "before_retraining").glob("*.json"))}
    rows = [(n, before[n], records[n]) for n in ORDER if n in before and n in records and records[n].get("heldout")]
    if not rows:
        return []
    lines = ["## Before and after the retraining (same held-out fields)", "",
             "The checkpoints shipped before issue 10 (from git history) and the retrained ones, scored by "
             "`bench_honest.py --heldout` on the same 32 held-out fields (noise free; offset-aligned full-FoV PSNR "
             "in dB, rms error at true phase 4–2π in rad) and the thick-cell sweep (decoded core for the 6 rad "
             "cells, true 5.86 rad).", "",
             "| model | realistic full dB before → after | round | dense | rms 4–2π rad before → after | "
             "6 rad core before → after |", "|---|---|---|---|---|---|"]
    for name, b, a in rows:
        cells = [f"{b['heldout'][f]['full_psnr_db']:.2f} → {a['heldout'][f]['full_psnr_db']:.2f}"
                 for f in (REALISTIC_HELDOUT, "round-test", "dense-test")]
        rms = " → ".join(f"{r['heldout'][REALISTIC_HELDOUT]['bands'][-1]['rms_rad']:.2f}" for r in (b, a))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rms} | {_core_at(b, 6.0):.2f} → {_core_at(a, 6.0):.2f} |")
    return lines + [""]


def _core_at(record: dict, peak_rad: float) -> float:
    """Decoded core phase (rad) of the thick-cell sweep's cells of peak ``peak_rad`` (NaN if not measured)."""
    return next((t["decoded_core_rad"] for t in record.get("thick") or [] if t["peak_rad"] == peak_rad), float("nan"))


def bands_section(records: dict[str, dict]) -> list[str]:
    lines = ["## Errors by true-phase band", ""]
    lines += heldout_bands_lines(records)
    rows = [(n, r) for n, r in records.items() if r.get("bands")]
    if not rows:
        return lines + ([] if len(lines) > 2 else ["Not measured yet.", ""])
    lines += ["Models scored on the older phantoms (before issue 10's realistic fields):", ""]
    first = rows[0][1]["bands"]
    lines += ["rms error (rad) of the offset-aligned reconstruction, by the true phase above the background, pooled "
              "over the pixels of each field's top-left 768² px. *Test split*: the "
              f"{first['test_split']['fields']} held-out fields named in each model's card "
              "(`dmicro phantom --out /tmp/dmicro_bench_fields --count 80 --seed 1`); *fresh*: "
              f"{first['fresh']['fields']} new fields of the same generator (`--seed 2`, never seen in training). "
              "Alignment: the prediction minus the median of (prediction − truth) over the background pixels "
              "(a global phase is unobservable by intensity optics); the truth is the generator's phase (never "
              "wrapped). Offset-aligned PSNR/SSIM on φ/2π (data range 1); the unaligned full-FoV PSNR is the "
              "convention of the sections above.", "",
              "| model | condition | fields | 0–1 | 1–2 | 2–3 | 3–4 | 4–2π | pixels at 4–2π | patch PSNR / SSIM "
              "(aligned) | full FoV PSNR / SSIM (aligned) | full FoV PSNR unaligned |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for name, r in rows:
        for split in ("test_split", "fresh"):
            s = r["bands"][split]
            b = s["bands"]
            lines.append(f"| {name} | {_cond(r)} | {split.replace('_', ' ')} ({s['fields']}) | "
                         + " | ".join(f"{x['rms_rad']:.2f}" for x in b) + f" | {b[-1]['pixels']:,} | "
                         f"{s['patch_psnr_db']:.2f} / {s['patch_ssim']:.3f} | {s['full_psnr_db']:.2f} / "
                         f"{s['full_ssim']:.3f} | {s.get('unaligned_full_psnr_db', float('nan')):.2f} |")
    dense = [f for f in rows[0][1]["bands"]["test_split"]["per_field"] if f["cell_cover"] > 0.6]
    if dense:
        lines += ["", f"On the densest test fields (cell cover > 60 %: {', '.join(f['name'] for f in dense)}) the "
                  "decoded background itself is off (median offset " + ", ".join(
                      f"{f['offset_rad']:+.2f}" for f in dense) + f" rad for {rows[0][0]}), so aligning on the few "
                  "background pixels lowers their PSNR: the offset-aligned means are lower than the unaligned ones "
                  "there. That is a property of the model (its background reading depends on the neighbouring "
                  "cells), not of the alignment, which any user referencing the phase to the background does."]
    lines += ["", "![rms error by true-phase band](images/bench_band_errors.png)", ""]
    _plot_bands(rows)
    return lines


def heldout_bands_lines(records: dict[str, dict]) -> list[str]:
    """rms error by true-phase band and offset-aligned PSNR/SSIM on the --heldout folders (realistic, round
    and dense phantoms of seeds never used in training), one row per model and folder."""
    rows = [(n, r) for n, r in records.items() if r.get("heldout")]
    if not rows:
        return []
    lines = ["On held-out fields never seen in training (`bench_honest.py --heldout`, 512² each): *real-test* "
             "16 realistic fields (`dmicro phantom --style realistic --seed 101`: thick round cells, dense "
             "clusters, the measured HL60 fields' background noise and amplitude variation), *round-test* 8 "
             "round-cell fields (`--style round --seed 102`), *dense-test* 8 confluent fields (`--style dense "
             "--seed 103`); *all*: the 32 pooled. Offset-aligned as above; the truth is the generator's "
             "unwrapped phase.", "",
             "| model | condition | fields | 0–1 | 1–2 | 2–3 | 3–4 | 4–2π | pixels at 4–2π | patch PSNR / SSIM "
             "| full FoV PSNR / SSIM |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name, r in rows:
        for folder, h in r["heldout"].items():
            b = h["bands"]
            lines.append(f"| {name} | {_cond(r)} | {folder} ({h['fields']}) | "
                         + " | ".join(f"{x['rms_rad']:.2f}" for x in b) + f" | {b[-1]['pixels']:,} | "
                         f"{h['patch_psnr_db']:.2f} / {h['patch_ssim']:.3f} | {h['full_psnr_db']:.2f} / "
                         f"{h['full_ssim']:.3f} |")
    return lines + [""]


def _plot_bands(rows) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, split in zip(axes, ("test_split", "fresh"), strict=True):
        for name, r in rows:
            b = r["bands"][split]["bands"]
            ax.plot([(x["band_rad"][0] + min(x["band_rad"][1], 6.28)) / 2 for x in b], [x["rms_rad"] for x in b],
                    "o-", label=name)
        ax.axhline(THICK_BAND_TARGET_RAD, color="gray", ls="--", lw=0.8)
        ax.set_xlabel("true phase above background (rad, band centre)")
        ax.set_title(f"{split.replace('_', ' ')} ({rows[0][1]['bands'][split]['fields']} fields)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("rms error, offset aligned (rad)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"dashed: target 0.5 rad at 4–2π; {machine_label(rows[0][1]['machine'])}", fontsize=8)
    _save(fig, "bench_band_errors.png")


def thick_section(records: dict[str, dict]) -> list[str]:
    lines = ["## Thick cells: decoded vs true core phase", ""]
    rows = [(n, r) for n, r in records.items() if r.get("thick")]
    if not rows:
        return lines + ["Not measured yet.", ""]
    peaks = [t["peak_rad"] for t in rows[0][1]["thick"]]
    cells = rows[0][1]["thick"][0]["cells"]
    lines += [f"Test object (analytic, `honest_metrics.cap_cell_field`): one 512² field per peak phase P with {cells} "
              "round cells, φ(r) = P·sqrt(1 − r²/R²), diameters 9–20 µm, not touching, on a flat 0.15 rad background "
              "with 0.02 rad noise and 1 % amplitude noise. Core phase = mean phase above the background over "
              "r < 0.3 R (true core = 0.977 P); decoded after offset alignment. Each entry: the mean decoded core over "
              "the field's cells, ✓ when EVERY cell is within max(0.25 rad, 10 %) of its true core (the target), "
              "and in brackets how many cells are. "
              "(Issue 10's own figures used a larger core, true core 0.86 P.)", "",
              "| model | condition | " + " | ".join(f"P = {p:g}" for p in peaks) + " |",
              "|---|---|" + "---|" * len(peaks)]
    lines.append("| true core (rad) | | " + " | ".join(f"{t['true_core_rad']:.2f}" for t in rows[0][1]["thick"]) + " |")
    for name, r in rows:
        lines.append(f"| {name} | {_cond(r)} | " + " | ".join(
            f"{t['decoded_core_rad']:.2f} {'✓' if _thick_ok(t) else '✗'} ({t['cells_within']}/{t['cells']})"
            for t in r["thick"]) + " |")
    lines += ["", "![decoded vs true core phase](images/bench_thick_core.png)", ""]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    top = max(t["true_core_rad"] for t in rows[0][1]["thick"]) * 1.1
    ax.plot([0, top], [0, top], "k-", lw=0.8, label="truth")
    xs = [0, 2.5, top]
    ax.fill_between(xs, [x - max(0.25, 0.1 * x) for x in xs], [x + max(0.25, 0.1 * x) for x in xs], color="gray",
                    alpha=0.2, label="target max(0.25 rad, 10 %)")
    for name, r in rows:
        ax.plot([t["true_core_rad"] for t in r["thick"]], [t["decoded_core_rad"] for t in r["thick"]], "o-",
                label=f"{name} ({_cond(r)})")
    finish_plot(fig, ax, "true core phase (rad)", "decoded core phase (rad)",
                f"round cells, P = 1…6 rad; {machine_label(rows[0][1]['machine'])}", "bench_thick_core.png", 8)
    return lines


def density_section(records: dict[str, dict]) -> list[str]:
    lines = ["## Dense vs sparse fields", ""]
    rows = [(n, r) for n, r in records.items() if r.get("density")]
    if not rows:
        return lines + ["Not measured yet.", ""]
    d0 = rows[0][1]["density"]
    lines += [f"Round-cell fields (512², peaks 1–5 rad, same background as the thick-cell sweep): *sparse* = "
              f"{len(d0['sparse']['per_field'])} fields of 14 cells of 9–20 µm placed at random, not touching (mean "
              f"cover {100 * d0['sparse']['cover']:.0f} %); *dense* = {len(d0['dense']['per_field'])} fields of "
              f"12–16 µm cells packed on a hexagonal lattice with 3 px gaps (mean cover "
              f"{100 * d0['dense']['cover']:.0f} %). Whole-field PSNR / SSIM of φ/2π and rms error (rad), offset "
              "aligned on the gaps and borders.", "",
              "| model | condition | sparse PSNR / SSIM | sparse rms (rad) | dense PSNR / SSIM | dense rms (rad) | "
              "dense − sparse PSNR |", "|---|---|---|---:|---|---:|---:|"]
    for name, r in rows:
        s, d = r["density"]["sparse"], r["density"]["dense"]
        lines.append(f"| {name} | {_cond(r)} | {s['psnr_db']:.2f} / {s['ssim']:.3f} | {s['rms_rad']:.2f} | "
                     f"{d['psnr_db']:.2f} / {d['ssim']:.3f} | {d['rms_rad']:.2f} | {d['psnr_db'] - s['psnr_db']:+.2f} dB |")
    return lines + [""]


def measured_section(records: dict[str, dict]) -> list[str]:
    lines = ["## Measured cells embedded in an empty field, beside matched phantom cells", ""]
    rows = [(n, r) for n, r in records.items() if r.get("measured")]
    if not rows:
        return lines + ["Not measured yet.", ""]
    lines += ["Each measured HL60 cell (../shared/realdata, resampled to 316.4 nm, phase unwrapped and referenced to "
              "its own background) is pasted in the middle of an EMPTY 256² field: background phase 0.15 rad plus "
              "noise at the measured field's own background level, amplitude 1 plus its amplitude noise (no "
              "mirrored copies of the cell). Scored on the cell region (phase > background + 0.3 rad, dilated "
              "3 px): PSNR of φ/2π and rms error (rad) on the region, SSIM on its bounding box, after offset "
              "alignment on the background. *Matched phantom*: a spherical-cap cell with the same area above "
              "0.3 rad and the same peak (99th percentile) in the same kind of field, through the same pipeline. "
              "*Flat*: the background phase everywhere, scored on the measured cell's region.", "",
              "| model | condition | cell | size (px) | peak (rad) | cell px at 3–5 rad | measured PSNR / SSIM | measured "
              "rms (rad) | matched phantom PSNR / SSIM | phantom rms (rad) | flat PSNR |",
              "|---|---|---|---|---:|---:|---|---:|---|---:|---:|"]
    for name, r in rows:
        for m in r["measured"]:
            c, p = m["cell"], m["matched_phantom"]
            lines.append(f"| {name} | {_cond(r)} | {m['name']} | {m['shape'][0]}×{m['shape'][1]} | {m['peak_rad']:.2f} | "
                         f"{100 * m['fraction_cell_px_3_to_5_rad']:.0f} % | {c['psnr_db']:.2f} / {c['ssim_box']:.3f} | "
                         f"{c['rms_rad']:.2f} | {p['psnr_db']:.2f} / {p['ssim_box']:.3f} | {p['rms_rad']:.2f} | "
                         f"{c['flat_psnr_db']:.2f} |")
    return lines + [""]


def invariance_section(records: dict[str, dict]) -> list[str]:
    lines = ["## Invariance to what a microscope cannot know", ""]
    rows = [(n, r) for n, r in records.items() if r.get("invariance")]
    if not rows:
        return lines + ["Not measured yet.", ""]
    lines += [f"rms change (rad, all pixels, no alignment) of the noise-free reconstruction of "
              f"{rows[0][1]['invariance']['fields']} fresh phantom fields (512²) when the field's amplitude is "
              "scaled (illumination power × exposure) or the field is multiplied by e^{iθ} (a global phase). "
              f"Target for the amplitude: < {INVARIANCE_TARGET_RAD} rad.", "",
              "| model | amplitude × 0.25 | amplitude × 4 | e^{i·1} | e^{i·2} |", "|---|---:|---:|---:|---:|"]
    for name, r in rows:
        v = r["invariance"]
        lines.append(f"| {name} | {v['amplitude_x0.25']:.3f} | {v['amplitude_x4']:.3f} | {v['global_phase_1rad']:.1e} | "
                     f"{v['global_phase_2rad']:.1e} |")
    invariant = all(max(r["invariance"]["amplitude_x0.25"], r["invariance"]["amplitude_x4"]) < INVARIANCE_TARGET_RAD
                    for _, r in rows)
    amplitude = ("every model here divides its camera image by its flat field (docs/physics.md, Flat-field "
                 "normalisation), so scaling the amplitude leaves the measurement, and the reconstruction, unchanged to "
                 "float rounding." if invariant else
                 "a model above the target reads the absolute intensity: check whether it divides by its flat field "
                 "(docs/physics.md, Flat-field normalisation).")
    return lines + ["", "A global phase leaves every intensity unchanged, so the reconstruction is unchanged to float "
                    f"precision; {amplitude}", ""]


def gains_section(records: dict[str, dict]) -> list[str]:
    lines = ["## Gain over each system's own all-optical baseline, beside the paper's", ""]
    lines += ["The paper's numbers are on its HeLa fields, ours on this project's phantoms: absolute PSNRs are not "
              "comparable (different specimens, and on the older phantoms our all-optical baseline scored far higher "
              "than the paper's B1 on HeLa), so the like-for-like comparison is the *gain* of each full system over its own all-optical baseline "
              "(stage 1 only: the optics trained to make the camera intensity ≈ φ/2π, read at full resolution). "
              "Paper (Table 1 of the seed paper): B1 (LFF) 16.16 / 16.98 dB, B2 (PhaseD2NN) 12.37 / 12.66 dB "
              "(full FoV / patch). Issue 10's target: ≥ +8 dB.", "",
              "| model | ours: model full / patch (dB) | ours: own baseline full / patch | **ours: gain** full / patch | "
              "paper row | paper model full / patch | paper baseline | **paper gain** full / patch | source |",
              "|---|---|---|---|---|---|---|---|---|"]
    missing = []
    for name in ORDER:
        p = PAPER_GAINS[name]
        g = own_gain(name, records.get(name))
        paper = (f"{p['row']} | {p['model'][0]:.2f} / {p['model'][1]:.2f} | {p['baseline']} {p['base'][0]:.2f} / "
                 f"{p['base'][1]:.2f} | **{p['model'][0] - p['base'][0]:+.2f} / {p['model'][1] - p['base'][1]:+.2f}**")
        if g is None:
            missing.append(name)
            lines.append(f"| {name} | — | not measured | — | {paper} | — |")
            continue
        lines.append(f"| {name} | {g['model'][0]:.2f} / {g['model'][1]:.2f} | {g['base'][0]:.2f} / {g['base'][1]:.2f} "
                     f"| **{g['model'][0] - g['base'][0]:+.2f} / {g['model'][1] - g['base'][1]:+.2f}** | {paper} | "
                     f"{g['source']} |")
    q = _load("quality.json") or {}
    lines += ["", f"Ours from results/quality.json (`bench_quality.py --baseline`, on the "
              f"{len(q.get('test_fields') or [])} test fields of the models' cards; "
              f"{'offset-aligned' if q.get('checkpoints') else 'unaligned'}), or from bench_honest.py "
              "`--baseline` (on the held-out fields of its `--heldout` folders) where the source column names "
              "its command. A -noisy model is compared with the baseline of the optics it was fine-tuned from, its "
              "PSNR measured under noise. The stage-1 runs of lff-x64 and lff-x256 train the same filter at full "
              "resolution (the binning comes after it; their baselines measured alike, 16.80 / 17.02 dB, before the "
              "runs were lost with a machine), so one stage-1 run (b1-x64) is the all-optical baseline of both."]
    if missing:
        lines += ["", f"Not measured: {', '.join(missing)} (no stage-1-only run). To produce one: "
                  "`dmicro train --preset NAME --stages 1 --data /tmp/dmicro_bench_fields --out bench_runs/NAME-stage1` "
                  "(as `make bench-train`), then `python benchmarks/bench_honest.py --model NAME --baseline "
                  "bench_runs/NAME-stage1 --sections gain --update`."]
    return lines + [""]


def sections() -> list[str]:
    records = load_all()
    return (bands_section(records) + thick_section(records) + density_section(records) + measured_section(records)
            + invariance_section(records) + gains_section(records))
