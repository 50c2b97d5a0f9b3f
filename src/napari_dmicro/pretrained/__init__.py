"""Models shipped inside the package (``<name>.safetensors`` beside this file) and name resolution."""

from __future__ import annotations

import math
from pathlib import Path

PRETRAINED_DIR = Path(__file__).parent


def shipped_models() -> dict[str, Path]:
    """Name → file of every model shipped in the package."""
    return {p.stem: p for p in sorted(PRETRAINED_DIR.glob("*.safetensors"))}


def resolve_model(name_or_path) -> Path:
    """A shipped model's name (e.g. ``lff-x64``) or a checkpoint path → the checkpoint file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_models()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    if path.is_dir() and (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    known = ", ".join(shipped) or "none shipped in this version"
    raise FileNotFoundError(f"no checkpoint file or shipped model called {name_or_path!r} "
                            f"(shipped models: {known}); give a .safetensors path or a run folder")


#: the "typical cell field" of the optics report: phantom field seed and side (object pixels)
REPORT_FIELD_SEED = 12345
REPORT_FIELD_PX = 256


def optics_report(model, card: dict) -> dict:
    """How far a model's optics moved from the initialisation its training started from (the optics of
    ``initial_microscope`` for the card's seed and ``optics_init``; for a fine-tuned model the random
    draw of the same seed, which is the root model's start when it used that seed), and its light
    throughput on a blank field and on a phantom cell field (:mod:`napari_dmicro.optics.report`)."""
    from ..optics.report import light_throughput, optics_movement
    from ..phantoms import make_field
    from ..training.initial import initial_microscope

    train = card.get("train_config") or {}
    seed = int(train.get("seed") or 0)
    start = train.get("optics_init") or "random"
    init = initial_microscope(model.config, seed, start).to(next(model.parameters()).device)
    tile = model.encoder.tile_px()
    cells = make_field(REPORT_FIELD_SEED, size_px=tile or REPORT_FIELD_PX)
    return {"init": f"{start} (seed {seed})", "fine_tuned_from": train.get("init"),
            **optics_movement(model, init), "throughput_blank": light_throughput(model.encoder),
            "throughput_cells": light_throughput(model.encoder, cells)}


def describe_optics(report: dict) -> list[str]:
    """Card lines of an :func:`optics_report`."""
    corr = report["phase_corr"]  # undefined (nan) when the initial phase is constant (a designed filter)
    corr_text = f"phase correlation {corr:.2f}, " if corr == corr else ""
    moved = (f"optics vs their {report['init']} initialisation: {corr_text}"
             f"mean |Δphase| {report['mean_abs_dphase_rad']:.2f} rad")
    if "mean_abs_dphase_above_na_rad" in report:
        moved += f" ({report['mean_abs_dphase_above_na_rad']:.2f} rad above NA 0.25)"
    if "mean_abs_damplitude" in report:
        moved += f", mean |Δamplitude| {report['mean_abs_damplitude']:.3f}"
    if report.get("layer_phase_corr") and all(math.isfinite(c) for c in report["layer_phase_corr"]):
        moved += ", per layer " + "/".join(f"{c:.2f}" for c in report["layer_phase_corr"])
    elif report.get("layer_mean_abs_dphase_rad"):  # from flat layers: a correlation is undefined
        moved += ", per layer mean |Δphase| " + "/".join(f"{d:.2f}" for d in report["layer_mean_abs_dphase_rad"]) \
            + " rad"
    light = (f"light throughput: {100 * report['throughput_blank']:.0f} % of a blank field's energy reaches "
             f"the camera, {100 * report['throughput_cells']:.0f} % of a phantom cell field's")
    return [moved, light]


def _describe_fluorescence(config, card: dict) -> list[str]:
    """:func:`describe_model` of a fluorescence model: patterns, camera, decoder, training, test numbers."""
    enc, dec = config.encoder, config.decoder
    pat, det = enc.patterns, enc.detector
    lines = [card["summary"]] if card.get("summary") else []
    lines.append(f"fluorescence, {pat.n_patterns} learned illumination patterns (period {enc.period_px} px, "
                 f"{pat.init} init), bin {det.bin_px} → x{enc.compression:g}, decoder {dec.family}"
                 + (" with segmentation head (task-aware)" if dec.seg_head else "")
                 + f", specimen pixel {enc.pixel_size_um:g} µm")
    if card.get("preset"):
        lines.append(f"trained: preset {card['preset']}" + (f", {card['wall_time_s'] / 60:.0f} min on the training "
                                                              "machine" if card.get("wall_time_s") else ""))
    for key in ("validation", "test"):
        m = card.get(key) or {}
        if m.get("psnr_db") is not None:
            seg = f", Dice {m['dice']:.3f}, F1 {m['f1']:.3f}" if m.get("dice") is not None else ""
            lines.append(f"{key} ({m.get('fields', '?')} fields, {m.get('patterns', '')} patterns, "
                         f"{m.get('noise', '')} noise): PSNR {m['psnr_db']:.2f} dB, "
                         f"SSIM {m.get('ssim', float('nan')):.3f}" + seg)
    if det.photons_per_unit:
        lines.append(f"trained at {det.photons_per_unit:g} photons per unit, read noise {det.read_noise_e:g} e⁻")
    return lines


def describe_model(config, card: dict, report: dict | None = None) -> list[str]:
    """Lines of a model card for people (``dmicro models`` and the Reconstruct widget); ``report``: an
    :func:`optics_report` of the model (default: the card's ``optics_report``, if any)."""
    if getattr(config, "modality", "qpm") == "fluorescence":
        return _describe_fluorescence(config, card)
    det, dec = config.encoder.detector, config.decoder
    optics = config.encoder.optics.display_name
    lines = []
    if card.get("summary"):
        lines.append(card["summary"])
    lines.append(f"{optics}, x{det.compression} ({det.binning}×{det.binning} binning), decoder {dec.family}, "
                 f"object pixel {config.encoder.optics.grid.pixel_size_um:g} µm")
    trained = [f"preset {card['preset']}" if card.get("preset") else None,
               f"{card['budget']} budget" if card.get("budget") else None,
               f"seed {card['train_config']['seed']}" if (card.get("train_config") or {}).get("seed") is not None
               else None,
               f"{card['wall_time_s'] / 60:.0f} min on the training machine" if card.get("wall_time_s") else None]
    trained = [t for t in trained if t]
    if trained:
        lines.append("trained: " + ", ".join(trained))
    for key in ("validation", "test"):
        metrics = card.get(key) or {}
        if metrics.get("psnr_db") is not None:
            lines.append(f"{key} (mean of {metrics.get('patches', '?')} 256² patches): PSNR "
                         f"{metrics['psnr_db']:.2f} dB, SSIM {metrics.get('ssim', float('nan')):.3f}")
    report = report or card.get("optics_report")
    if report:
        lines += describe_optics(report)
    if det.max_photons:
        lines.append(f"noise aware: {det.max_photons:g} photons, read noise {det.read_noise_e:g} e⁻")
    if card.get("data_description"):
        lines.append(f"data: {card['data_description']}")
    for i, command in enumerate(card.get("reproduce") or []):
        lines.append(("reproduce: " if i == 0 else "           ") + command)
    return lines
