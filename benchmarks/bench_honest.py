"""Honest evaluation of one model: errors by true-phase band, thick-cell sweep, dense vs sparse fields,
measured cells embedded in an empty field, invariance to illumination and global phase.

    python benchmarks/bench_honest.py --model lff-x64 [--data /tmp/dmicro_bench_fields] [--fresh 8]
    python benchmarks/bench_honest.py --model RUN_OR_CHECKPOINT --noisy     # at 10⁴ photons, σ 6 e⁻

Every section is a function of (model, condition) and works on any model (shipped name, run folder or
checkpoint). Models whose name ends in ``-noisy`` (or with ``--noisy``) are imaged at 10⁴ photons (brightest
camera pixel), read noise σ 6 e⁻, the noise seeded per field; the others noise free. Invariance is always
measured noise free (it isolates what the decoder does with the intensity scale).

Comparisons are made after aligning the global phase offset (unobservable by intensity optics): the
prediction minus the median of (prediction − reference) over the background (``honest_metrics.align_offset``).
The reference phase is never wrapped: the phantoms' generator phase (``make_phase_amplitude`` with the
field's seed, bit-identical to the field's phase), the analytic phase of the round-cell test objects, and
the measured cells' phase unwrapped relative to their background.

Sections (all written to ``benchmarks/results/honest_<model>.json`` with the command and machine):
- ``bands``: rms error (rad) by true phase above the background, 0–1, 1–2, 2–3, 3–4, 4–2π rad, on (a) the
  held-out test split of ``dmicro phantom --out DATA --count 80 --seed 1`` named in the model's card and
  (b) ``--fresh`` fields of the same generator with seed 2 (``dmicro phantom --seed 2``, never seen in
  training); each on the top-left 768² px; also offset-aligned patch / full-FoV PSNR and SSIM on φ/2π.
- ``thick``: fields of round spherical-cap cells φ(r) = P·sqrt(1 − r²/R²), diameters 9–20 µm, not touching,
  several per 512² field on a flat 0.15 rad background with 0.02 rad noise; P = 1…6 rad; decoded vs true
  core phase (mean above the background over r < 0.3 R); verdict: within max(0.25 rad, 10 %).
- ``density``: round-cell fields (peaks 1–5 rad) with cell cover < 30 % (random, not touching) and > 60 %
  (hexagonal packing, 3 px gaps): offset-aligned PSNR / SSIM (φ/2π) and rms error (rad) over the field.
- ``measured``: the HL60 cells of ../shared/realdata embedded in an EMPTY 256² field (background phase
  0.15 rad + the measured field's own background noise level, amplitude 1 + its amplitude noise level),
  scored on the cell region (phase > background + 0.3 rad, dilated 3 px); beside a matched phantom cell
  (a spherical cap of the same area and peak phase, same background noise, same pipeline).
- ``invariance``: field amplitude × 0.25 and × 4, field × e^{iθ} for θ = 1, 2 rad: rms change of the
  reconstruction (rad, all pixels, no alignment) on the first two fresh fields' top-left 512² px.
- ``gain`` (only with ``--baseline RUN``, a stage-1-only run of the same preset): the all-optical readout
  of that run (camera intensity at full resolution read as φ/2π, the paper's B1) and the model on the test
  split, patch and full-FoV PSNR; with ``--heldout`` both on the first held-out folder, offset-aligned, like
  for like; the report otherwise takes the baselines of results/quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import honest_metrics as hm  # noqa: E402
from bench_quality import NOISE, REGION, ensure_data, machine, test_fields, write_result  # noqa: E402

THICK_PEAKS_RAD = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
CELL_DIAMETER_UM = (9.0, 20.0)
SIZE_PX = 512


class Condition:
    """How a model images: noise free, or ``photons``/``read_noise`` with a seed per field."""

    def __init__(self, photons: float | None = None, read_noise: float = 0.0):
        self.photons, self.read_noise = photons, read_noise

    def as_dict(self) -> dict:
        return {"photons": self.photons, "read_noise_e": self.read_noise}

    def reconstruct(self, model, field: np.ndarray, seed: int = 0) -> np.ndarray:
        import napari_dmicro as dm

        meas = dm.simulate(field, model, photons=self.photons, read_noise=self.read_noise, seed=seed)
        return np.asarray(dm.reconstruct(meas, model), np.float64)


class BinnedPhaseCamera(Condition):
    """Not a model: a phase camera binned b×b. The field's background-referenced unwrapped phase
    (``phase_reference``) averaged over b×b pixels and bicubic upsampled back, the binned-phase reference of
    docs/benchmarks.md (what a quantitative phase camera with the model's pixel count reads; not achievable by
    intensity optics above ~π and not a bound for a learned decoder)."""

    def __init__(self, binning: int):
        super().__init__()
        self.binning = int(binning)

    def as_dict(self) -> dict:
        return {"binned_phase_camera": self.binning}

    def reconstruct(self, model, field: np.ndarray, seed: int = 0) -> np.ndarray:
        import torch.nn.functional as F

        b = self.binning
        ref = hm.reference_phase(np.asarray(field))
        padded = np.pad(ref, ((0, -ref.shape[0] % b), (0, -ref.shape[1] % b)), mode="edge")
        low = F.avg_pool2d(torch.from_numpy(padded)[None, None], b)
        up = F.interpolate(low, scale_factor=b, mode="bicubic", align_corners=False)[0, 0].numpy()
        return up[:ref.shape[0], :ref.shape[1]]



class AllOpticalReadout(Condition):
    """The paper's all-optical baseline (B1/B2) of a stage-1-only run: the camera intensity at full resolution
    (no binning, noise free) read as φ/2π — ``model`` here is that run."""

    def as_dict(self) -> dict:
        return {"all_optical_readout": True}

    def reconstruct(self, model, field: np.ndarray, seed: int = 0) -> np.ndarray:
        from bench_quality import all_optical_readout

        return all_optical_readout(model, field)

# ---- (a) errors by true-phase band on phantom fields ---------------------------------------------------

#: how dm.simulate padded fields smaller than the model's grid when these results were measured; results without
#: this key were measured before 2026-12-07, with empty background (pessimistic for the LFF: results/field_edges.json)
FIELD_PADDING = "the encoder's outside_field rule (mirrored)"


def phantom_truth(seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(field, reference phase) of phantom ``k`` of ``dmicro phantom --seed seed``, from the generator."""
    from napari_dmicro.phantoms import field_seed, make_phase_amplitude

    phase, amplitude = make_phase_amplitude(field_seed(seed, k))
    return (amplitude * np.exp(1j * phase)).astype(np.complex64), phase.astype(np.float64)


def phantom_background_level(reference_rad: np.ndarray) -> float:
    """Background level of a phantom (rad): median of the pixels within 0.3 rad of the 2nd percentile."""
    low = float(np.percentile(reference_rad, 2))
    return float(np.median(reference_rad[reference_rad < low + hm.CELL_THRESHOLD_RAD]))


def score_phantoms(model, cond: Condition, fields: list[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """Band errors (pooled over fields) and offset-aligned patch/full PSNR, SSIM on the 768² region."""
    import napari_dmicro as dm

    parts, per_field = [], []
    for i, (name, field, ref) in enumerate(fields):
        pred = cond.reconstruct(model, field, seed=1000 + i)[:REGION, :REGION]
        ref = ref[:REGION, :REGION]
        level = phantom_background_level(ref)
        bg = hm.background_mask(ref, level)
        aligned = hm.align_offset(pred, ref, bg)
        rel = ref - level
        parts.append(hm.band_rms(aligned - ref, rel))
        r = dm.evaluate(aligned.astype(np.float32), ref.astype(np.float32), keep_ssim_map=False)
        raw = dm.evaluate(pred.astype(np.float32), ref.astype(np.float32), keep_ssim_map=False)
        per_field.append({"name": name, "full_psnr_db": r.psnr_db, "full_ssim": r.ssim,
                          "unaligned_full_psnr_db": raw.psnr_db, "unaligned_full_ssim": raw.ssim,
                          "background_fraction": float(bg.mean()),
                          "patch_psnr_db": r.patch_psnr_db, "patch_ssim": r.patch_ssim,
                          "rms_rad": hm.rms(aligned - ref), "offset_rad": float(np.median((pred - ref)[bg])),
                          "cell_cover": float(np.mean(rel > 0.5)), "bands": parts[-1]})
    return pooled(per_field)


def pooled(per_field: list[dict]) -> dict:
    """Scores of several fields: bands pooled over pixels, the other scores averaged over fields."""
    mean = {k: float(np.mean([f[k] for f in per_field])) for k in
            ("full_psnr_db", "full_ssim", "patch_psnr_db", "patch_ssim", "rms_rad", "unaligned_full_psnr_db",
             "unaligned_full_ssim")}
    return {"fields": len(per_field), "bands": hm.pool_bands([f["bands"] for f in per_field]), **mean,
            "per_field": per_field}


def band_errors(model, cond: Condition, data: Path, fresh: int) -> dict:
    """(a) on the model's held-out test split and on ``fresh`` new fields (seed 2)."""
    from napari_dmicro.io.fields import read_field

    out = {}
    test = []
    for p in test_fields(model, data):
        k = int(p.stem.split("_")[1])
        field, ref = phantom_truth(1, k)
        stored = np.asarray(read_field(p).data)
        if not np.allclose(stored, field, atol=1e-5):
            raise SystemExit(f"{p} differs from the generator's field {k} of seed 1: regenerate the data folder")
        test.append((p.name, stored, ref))
    out["test_split"] = score_phantoms(model, cond, test)
    out["fresh"] = score_phantoms(model, cond, [(f"seed2/{k}", *phantom_truth(2, k)) for k in range(fresh)])
    return out


def stored_phantom_truth(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, field, reference phase) of a field written by ``dmicro phantom`` (any style): the generator's
    unwrapped phase from the seed, index and style in the store's attributes, checked against the store."""
    from napari_dmicro.io.fields import read_field
    from napari_dmicro.phantoms import PhantomConfig, field_seed, make_phase_amplitude

    image = read_field(path)
    attrs = image.attrs
    if attrs.get("source") != "napari_dmicro.phantoms":
        raise SystemExit(f"{path} was not written by `dmicro phantom`: its true phase is unknown")
    stored = np.asarray(image.data)
    config = PhantomConfig.style(attrs.get("style", "classic"), size_px=stored.shape)
    phase, amplitude = make_phase_amplitude(field_seed(int(attrs["seed"]), int(attrs["index"])), config)
    field = (amplitude * np.exp(1j * phase)).astype(np.complex64)
    if not np.allclose(stored, field, atol=1e-5):
        raise SystemExit(f"{path} differs from the generator's field: was it written by another version?")
    return f"{Path(path).parent.name}/{Path(path).name}", stored, phase.astype(np.float64)


def heldout_errors(model, cond: Condition, folders: list[str]) -> dict:
    """(a') band errors and offset-aligned scores on held-out ``dmicro phantom`` folders of any style (e.g.
    realistic fields whose phase histogram matches the measured cells), per folder and pooled."""
    from napari_dmicro.training.data import discover_fields

    out = {}
    for folder in folders:
        out[Path(folder).name] = score_phantoms(model, cond, [stored_phantom_truth(p) for p in discover_fields(folder)])
    out["all"] = pooled([f for v in out.values() for f in v["per_field"]])
    return out


# ---- (b) thick-cell sweep ---------------------------------------------------------------------------------

def round_cell_diameters_px(rng, n: int, pixel_size_um: float) -> np.ndarray:
    return rng.uniform(*CELL_DIAMETER_UM, n) / pixel_size_um


def thick_sweep(model, cond: Condition, peaks=THICK_PEAKS_RAD, cells_per_field: int = 8, seed: int = 7) -> list[dict]:
    """(b) decoded vs true core phase of round cells, one 512² field per peak phase P."""
    px = model.config.encoder.optics.grid.pixel_size_um
    rows = []
    for j, peak in enumerate(peaks):
        rng = np.random.default_rng([seed, j])
        cells = hm.place_round_cells(SIZE_PX, np.sort(round_cell_diameters_px(rng, cells_per_field, px))[::-1] / 2,
                                     rng, gap_px=8)
        field, ref, foot = hm.cap_cell_field(SIZE_PX, cells, [peak] * len(cells), rng)
        pred = cond.reconstruct(model, field, seed=2000 + j)
        from scipy import ndimage

        bg = ~ndimage.binary_dilation(foot, iterations=3)
        aligned = hm.align_offset(pred, ref, bg)
        true = [hm.core_phase(ref, cy, cx, r, hm.BACKGROUND_RAD) for cy, cx, r in cells]
        got = [hm.core_phase(aligned, cy, cx, r, hm.BACKGROUND_RAD) for cy, cx, r in cells]
        t, g = float(np.mean(true)), float(np.mean(got))
        rows.append({"peak_rad": peak, "cells": len(cells), "diameters_um": [round(2 * r * px, 2) for _, _, r in cells],
                     "true_core_rad": t, "decoded_core_rad": g, "per_cell_true_rad": true, "per_cell_decoded_rad": got,
                     "worst_cell_error_rad": float(np.max(np.abs(np.subtract(got, true)))),
                     "tolerance_rad": max(0.25, 0.1 * t), "within": hm.within_target(g, t),
                     "cells_within": int(sum(hm.within_target(a, b) for a, b in zip(got, true, strict=True)))})
    return rows


# ---- (c) dense vs sparse -----------------------------------------------------------------------------------

def density(model, cond: Condition, fields_each: int = 3, seed: int = 11) -> dict:
    """(c) round-cell fields with cover < 30 % (sparse) and > 60 % (dense), peaks 1–5 rad."""
    from scipy import ndimage

    px = model.config.encoder.optics.grid.pixel_size_um
    out = {}
    for kind in ("sparse", "dense"):
        per_field = []
        for j in range(fields_each):
            rng = np.random.default_rng([seed, j, kind == "dense"])
            if kind == "sparse":
                cells = hm.place_round_cells(SIZE_PX, round_cell_diameters_px(rng, 14, px) / 2, rng, gap_px=6)
            else:
                cells = hm.packed_round_cells(SIZE_PX, rng.uniform(12.0, 16.0) / px, rng, gap_px=3)
            field, ref, foot = hm.cap_cell_field(SIZE_PX, cells, rng.uniform(1.0, 5.0, len(cells)), rng)
            pred = cond.reconstruct(model, field, seed=3000 + j)
            aligned = hm.align_offset(pred, ref, ~ndimage.binary_dilation(foot, iterations=1))
            per_field.append({"cover": float(foot.mean()), "cells": len(cells),
                              "psnr_db": hm.psnr_unit(aligned, ref), "ssim": hm.ssim_unit(aligned, ref),
                              "rms_rad": hm.rms(aligned - ref),
                              "bands": hm.band_rms(aligned - ref, ref - hm.BACKGROUND_RAD)})
        out[kind] = {k: float(np.mean([f[k] for f in per_field])) for k in ("cover", "psnr_db", "ssim", "rms_rad")}
        out[kind]["bands"] = hm.pool_bands([f["bands"] for f in per_field])
        out[kind]["per_field"] = per_field
    return out


# ---- (d) measured cells embedded in an empty field ------------------------------------------------------

def measured_cell(src: dict, pixel_size_um: float) -> dict:
    """A measured cell resampled to the model's grid: background-referenced unwrapped phase (rad, background
    0), amplitude / background median, and the background's phase and amplitude noise (std over a 4-px frame)."""
    from skimage.restoration import unwrap_phase

    from napari_dmicro.io.resample import resample_amplitude_phase

    phase = unwrap_phase(src["phase"].astype(np.float64)) if src["wrapped"] else src["phase"].astype(np.float64)
    amplitude, phase = resample_amplitude_phase(src["amplitude"].astype(np.float64), phase, src["pixel_size_um"],
                                                pixel_size_um)
    frame = np.zeros(phase.shape, bool)
    frame[:4], frame[-4:], frame[:, :4], frame[:, -4:] = True, True, True, True
    rel = phase - np.median(phase[frame])
    amp = amplitude / np.median(amplitude[frame])
    return {"relative_rad": rel, "amplitude": amp, "phase_noise_rad": float(np.std(rel[frame])),
            "amplitude_noise": float(np.std(amp[frame]))}


def embed(relative_rad: np.ndarray, amplitude: np.ndarray, phase_noise_rad: float, amplitude_noise: float,
          rng, side: int = 256) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """A cell pasted in the middle of an empty side² field: background 0.15 rad + noise of the given levels."""
    ref = hm.BACKGROUND_RAD + hm.background_noise((side, side), phase_noise_rad, rng)
    amp = 1.0 + hm.background_noise((side, side), amplitude_noise, rng)
    h, w = relative_rad.shape
    r0, c0 = (side - h) // 2, (side - w) // 2
    region = (slice(r0, r0 + h), slice(c0, c0 + w))
    ref[region] = hm.BACKGROUND_RAD + relative_rad
    amp[region] = amplitude
    return (amp * np.exp(1j * ref)).astype(np.complex64), ref, region


def score_cell(model, cond: Condition, field: np.ndarray, ref: np.ndarray, seed: int) -> dict:
    """Offset-aligned scores on the cell region (phase > background + 0.3 rad, dilated 3 px)."""
    pred = cond.reconstruct(model, field, seed=seed)
    bg = hm.background_mask(ref, hm.BACKGROUND_RAD)
    aligned = hm.align_offset(pred, ref, bg)
    cell = hm.cell_mask(ref, hm.BACKGROUND_RAD)
    rows, cols = np.nonzero(cell)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return {"cell_px": int(cell.sum()), "psnr_db": hm.psnr_unit(aligned, ref, cell),
            "ssim_box": hm.ssim_unit(aligned[box], ref[box]), "rms_rad": hm.rms((aligned - ref)[cell]),
            "bands": hm.band_rms((aligned - ref)[cell], (ref - hm.BACKGROUND_RAD)[cell]),
            "flat_psnr_db": hm.psnr_unit(np.full(ref.shape, hm.BACKGROUND_RAD), ref, cell)}


def realdata_root(given: str | None) -> Path:
    """The measured-data folder: ``given``, $DMICRO_REALDATA, ../shared/realdata or /work/shared/realdata."""
    here = Path(__file__).resolve().parents[2] / "shared" / "realdata"
    for c in (given, os.environ.get("DMICRO_REALDATA"), here, "/work/shared/realdata"):
        if c and (Path(c) / "nrefocus_hl60_qlsi_field").is_dir():
            return Path(c)
    raise SystemExit("no measured data found: give --realdata (the folder ../shared/realdata)")


def measured_cells(model, cond: Condition, realdata: Path, seed: int = 5) -> list[dict]:
    """(d) each HL60 cell embedded in an empty field, beside a matched spherical-cap phantom cell."""
    from bench_realdata import sources

    px = model.config.encoder.optics.grid.pixel_size_um
    rows = []
    for i, src in enumerate(sources(realdata)):
        rng = np.random.default_rng([seed, i])
        c = measured_cell(src, px)
        field, ref, _ = embed(c["relative_rad"], c["amplitude"], c["phase_noise_rad"], c["amplitude_noise"], rng)
        cell_pixels = c["relative_rad"] > hm.CELL_THRESHOLD_RAD
        peak = float(np.percentile(c["relative_rad"][cell_pixels], 99))
        radius = float(np.sqrt(cell_pixels.sum() / np.pi))
        # the matched phantom cell: a spherical cap whose footprint above 0.3 rad has the cell's area
        radius_cap = radius / np.sqrt(max(1.0 - (hm.CELL_THRESHOLD_RAD / peak) ** 2, 1e-6))
        side = 256
        yy, xx = np.mgrid[0:side, 0:side]
        cap = hm.spherical_cap_phase(np.hypot(yy - side / 2, xx - side / 2), radius_cap, peak)
        pfield, pref, _ = embed(np.zeros((0, 0)), np.zeros((0, 0)), c["phase_noise_rad"], c["amplitude_noise"], rng)
        pref = pref + cap
        pfield = (np.abs(pfield) * np.exp(1j * pref)).astype(np.complex64)
        rows.append({"name": src["name"], "shape": list(c["relative_rad"].shape),
                     "background_noise_rad": c["phase_noise_rad"], "amplitude_noise": c["amplitude_noise"],
                     "peak_rad": peak, "equivalent_diameter_um": 2 * radius * px,
                     "fraction_cell_px_3_to_5_rad": float(np.mean((c["relative_rad"][cell_pixels] >= 3)
                                                                  & (c["relative_rad"][cell_pixels] < 5))),
                     "cell": score_cell(model, cond, field, ref, 4000 + i),
                     "matched_phantom": score_cell(model, cond, pfield, pref, 4100 + i)})
    return rows


# ---- (f) invariance --------------------------------------------------------------------------------------

def invariance(model, fields: list[np.ndarray]) -> dict:
    """(f) rms change (rad) of the noise-free reconstruction when the field's amplitude is scaled or a global
    phase is added, over all pixels of each field (no alignment), pooled over fields."""
    clean = Condition()
    changes: dict[str, list[float]] = {}
    for field in fields:
        base = clean.reconstruct(model, field)
        for key, factor in (("amplitude_x0.25", 0.25), ("amplitude_x4", 4.0),
                            ("global_phase_1rad", np.exp(1j * 1.0)), ("global_phase_2rad", np.exp(1j * 2.0))):
            out = clean.reconstruct(model, (field * factor).astype(np.complex64))
            changes.setdefault(key, []).append(float(np.mean((out - base) ** 2)))
    return {k: float(np.sqrt(np.mean(v))) for k, v in changes.items()} | {"fields": len(fields)}


# ---- (e) gain over the model's own all-optical baseline -------------------------------------------------

def all_optical_gain(model, baseline, cond: Condition, data: Path) -> dict:
    """(e) patch and full-FoV PSNR of the model and of a stage-1-only run's all-optical readout (the paper's
    B1), on the model's test split, same metric as bench_quality.py (no offset alignment, as the paper)."""
    from bench_quality import all_optical, evaluate_model

    paths = test_fields(model, data)
    m = evaluate_model(model, paths, cond.photons, cond.read_noise)
    b = all_optical(baseline, paths)
    return {"model": {k: m[k] for k in ("patch_psnr_db", "full_psnr_db", "patch_ssim", "full_ssim")},
            "baseline": {k: b[k] for k in ("patch_psnr_db", "full_psnr_db", "patch_ssim", "full_ssim")},
            "gain_patch_db": m["patch_psnr_db"] - b["patch_psnr_db"],
            "gain_full_db": m["full_psnr_db"] - b["full_psnr_db"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--noisy", action="store_true", help="image at 10⁴ photons, σ 6 e⁻ (default for *-noisy)")
    parser.add_argument("--data", default="/tmp/dmicro_bench_fields")
    parser.add_argument("--fresh", type=int, default=8, help="fresh phantom fields (seed 2)")
    parser.add_argument("--realdata", default=None, help="default: $DMICRO_REALDATA, ../shared/realdata, "
                        "/work/shared/realdata")
    parser.add_argument("--baseline", default=None, help="a stage-1-only run of the same preset (section gain)")
    parser.add_argument("--heldout", action="append", default=[],
                        help="a folder of held-out `dmicro phantom` fields (any style; repeatable): section heldout")
    parser.add_argument("--sections", default="bands,thick,density,measured,invariance")
    parser.add_argument("--binned-reference", type=int, default=None, metavar="B",
                        help="score a phase camera binned B×B (the binned-phase reference) on --model's grid instead "
                             "of the model; results named binned-x<B²>")
    parser.add_argument("--tag", default="")
    parser.add_argument("--table", default=None, help="write results/<TABLE>/<model>.json instead (an experiment "
                        "table such as optics_table, kept apart from the shipped models' honest_*.json)")
    parser.add_argument("--update", action="store_true",
                        help="keep the other sections of an existing honest_<model>.json (e.g. to add --baseline)")
    args = parser.parse_args(argv)

    import napari_dmicro as dm

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model = dm.load_model(args.model)
    name = Path(args.model).name.replace(".safetensors", "")
    noisy = args.noisy or name.endswith("-noisy")
    cond = Condition(NOISE["photons"], NOISE["read_noise"]) if noisy else Condition()
    if args.binned_reference:
        cond, name = BinnedPhaseCamera(args.binned_reference), f"binned-x{args.binned_reference ** 2}"
    sections = set(args.sections.split(","))
    t0 = time.perf_counter()
    result = {"model": name, "condition": cond.as_dict(), "machine": machine(),
              "command": "python benchmarks/bench_honest.py " + " ".join(argv or sys.argv[1:]),
              "alignment": "prediction − median(prediction − reference) over the background pixels",
              "reference": "unwrapped true phase, background at 0.15 rad (phantom generator / analytic / measured "
                           "phase unwrapped relative to its background)",
              "field_padding": FIELD_PADDING}
    if "bands" in sections:
        ensure_data(Path(args.data))
        result["bands"] = band_errors(model, cond, Path(args.data), args.fresh)
        print("bands", json.dumps({k: v["bands"] for k, v in result["bands"].items()}), flush=True)
    if args.heldout:
        result["heldout"] = heldout_errors(model, cond, args.heldout)
        print("heldout", json.dumps({k: [round(b["rms_rad"], 3) for b in v["bands"]] + [
            round(v["patch_psnr_db"], 2), round(v["full_psnr_db"], 2), round(v["full_ssim"], 3)]
            for k, v in result["heldout"].items()}), flush=True)
    if "thick" in sections:
        result["thick"] = thick_sweep(model, cond)
        print("thick", [(r["peak_rad"], round(r["true_core_rad"], 2), round(r["decoded_core_rad"], 2))
                        for r in result["thick"]], flush=True)
    if "density" in sections:
        result["density"] = density(model, cond)
        print("density", {k: (v["cover"], v["psnr_db"], v["rms_rad"]) for k, v in result["density"].items()},
              flush=True)
    if "measured" in sections:
        result["measured"] = measured_cells(model, cond, realdata_root(args.realdata))
        print("measured", [(r["name"], r["cell"]["psnr_db"], r["matched_phantom"]["psnr_db"])
                           for r in result["measured"]], flush=True)
    if "invariance" in sections:
        fields = [phantom_truth(2, k)[0][:SIZE_PX, :SIZE_PX] for k in range(2)]
        result["invariance"] = invariance(model, fields)
        print("invariance", result["invariance"], flush=True)
    if args.baseline and args.heldout:  # like for like: the same held-out fields, the same alignment
        folder = args.heldout[0]
        base = heldout_errors(dm.load_model(args.baseline), AllOpticalReadout(), [folder])[Path(folder).name]
        mine = result["heldout"][Path(folder).name]
        keys = ("patch_psnr_db", "full_psnr_db", "patch_ssim", "full_ssim")
        result["gain"] = {"model": {k: mine[k] for k in keys}, "baseline": {k: base[k] for k in keys},
                          "gain_patch_db": mine["patch_psnr_db"] - base["patch_psnr_db"],
                          "gain_full_db": mine["full_psnr_db"] - base["full_psnr_db"],
                          "fields": f"{Path(folder).name} ({mine['fields']} held-out fields), offset-aligned",
                          "baseline_run": args.baseline}
        print("gain", {k: result["gain"][k] for k in ("gain_patch_db", "gain_full_db")}, flush=True)
    elif args.baseline:
        result["gain"] = all_optical_gain(model, dm.load_model(args.baseline), cond, Path(args.data))
        result["gain"]["baseline_run"] = args.baseline
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    file_name = f"{args.table}/{name}{args.tag}.json" if args.table else f"honest_{name}{args.tag}.json"
    previous = Path(__file__).resolve().parent / "results" / file_name
    if args.update and previous.exists():
        old = json.loads(previous.read_text())
        result["commands_before"] = old.get("commands_before", []) + [old["command"]]
        result = {**old, **result}
    write_result(file_name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
