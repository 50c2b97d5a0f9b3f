"""Models shipped inside the package (``<name>.safetensors`` beside this file) and name resolution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

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


def pack_patterns(binary) -> dict:
    """Binary patterns (T, P, P) of {0, 1} → a JSON-able record (shape + packed bits as hex: 2 KB at x1024)."""
    bits = np.asarray(torch.as_tensor(binary).detach().cpu()) > 0.5
    return {"shape": list(bits.shape), "bits_hex": np.packbits(bits.ravel()).tobytes().hex()}


def unpack_patterns(record: dict) -> torch.Tensor:
    """The (T, P, P) float32 {0, 1} patterns of a :func:`pack_patterns` record."""
    shape = [int(n) for n in record["shape"]]
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(record["bits_hex"]), np.uint8))[:math.prod(shape)]
    return torch.from_numpy(bits.reshape(shape).astype(np.float32))


def initial_patterns(model, card: dict) -> tuple[torch.Tensor, str]:
    """The binary patterns (T, P, P) a fluorescence model's training started from, and where they come from:
    the card's ``initial_patterns`` (recorded by the run at its start, also in the run folder's
    ``initial_patterns.safetensors``), else recomputed from the run's seed and pattern init (the draw of
    :func:`~napari_dmicro.training.initial.initial_microscope`; runs before the recording existed)."""
    if card.get("initial_patterns"):
        return unpack_patterns(card["initial_patterns"]), "recorded at the start of the run"
    from ..training.initial import initial_microscope

    train = card.get("train_config") or {}
    seed = int(train.get("seed") or 0)
    if train.get("init"):  # a fine-tune starts from its init's patterns, not from the seed's draw
        from ..io.checkpoints import load_checkpoint

        try:
            parent, _ = load_checkpoint(resolve_model(train["init"]), device="cpu")
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"the model was fine-tuned from {train['init']!r}, which is not here ({exc}); its "
                             "starting patterns cannot be recovered") from None
        with torch.no_grad():
            return parent.encoder.illumination.transmission(True).cpu(), f"its init {train['init']}"
    init = initial_microscope(model.config, seed, model.config.encoder.patterns.init)
    with torch.no_grad():
        return init.encoder.illumination.transmission(True).cpu(), f"recomputed from seed {seed}"


def patterns_report(model, card: dict, start: torch.Tensor | None = None) -> dict:
    """How far a fluorescence model's BINARY patterns moved from those its run started from (``start``, else
    :func:`initial_patterns`): the fraction of DMD mirrors flipped (overall and per pattern); their duty
    cycle (mean transmission, at the start and now), the equal-dose exposure factor e and the photons per
    specimen pixel of density 1 the acquisition delivers, K·Σ_t mean(e·H_t) (= K·T·0.5 for every set)."""
    train = card.get("train_config") or {}
    source = "given"
    if start is None:
        start, source = initial_patterns(model, card)
    ill = model.encoder.illumination
    with torch.no_grad():
        now = ill.transmission(True).cpu()
        exposure = float(ill.exposure(now))
    if tuple(start.shape) != tuple(now.shape):
        raise ValueError(f"initial patterns {tuple(start.shape)} do not match the model's {tuple(now.shape)}")
    photons = model.config.encoder.detector.photons_per_unit
    flipped = (now != start).float()
    return {"init": f"{model.config.encoder.patterns.init} (seed {int(train.get('seed') or 0)})",
            "init_source": source, "fine_tuned_from": train.get("init"),
            "mirrors_flipped_fraction": float(flipped.mean()),
            "mirrors_flipped_per_pattern": [float(v) for v in flipped.mean(dim=(-2, -1))],
            "duty_cycle": float(now.mean()), "duty_cycle_initial": float(start.mean()),
            "duty_cycle_per_pattern": [float(v) for v in now.mean(dim=(-2, -1))],
            "exposure": exposure, "sharpness": float(model.encoder.sharpness),
            "photons_per_pixel_per_acquisition": (None if photons is None
                                                  else float(photons * exposure * now.mean(dim=(-2, -1)).sum()))}


def model_report(model, card: dict) -> dict:
    """The card's report of what training did to the optics: :func:`patterns_report` (fluorescence; the one
    the run wrote when it ended, else recomputed) or :func:`optics_report` (QPM)."""
    if getattr(model.config, "modality", "qpm") == "fluorescence":
        report = card.get("optics_report")
        if report and "mirrors_flipped_fraction" in report:
            return report
        try:
            return patterns_report(model, card)
        except ValueError:  # a fine-tune whose init is not here: the card says what it can
            return None
    return optics_report(model, card)


def describe_patterns(report: dict, photons_per_unit: float | None) -> list[str]:
    """Card lines of a :func:`patterns_report`."""
    per = report.get("mirrors_flipped_per_pattern")
    moved = (f"patterns vs their {report['init']} start ({report.get('init_source', 'recomputed from the seed')}): "
             f"{100 * report['mirrors_flipped_fraction']:.1f} % of the binary mirrors flipped"
             + (" (per pattern " + "/".join(f"{100 * v:.0f}" for v in per) + " %)" if per else ""))
    duty = f"duty cycle {100 * report['duty_cycle']:.1f} %"
    if report.get("duty_cycle_initial") is not None:
        duty += f" (start {100 * report['duty_cycle_initial']:.1f} %)"
    dose = (f"dose: {duty}, exposure factor {report['exposure']:.3g} (every pattern set delivers "
            f"Σ_t mean(e·H_t) = T·0.5)")
    if report.get("photons_per_pixel_per_acquisition") is not None:
        dose += f", {report['photons_per_pixel_per_acquisition']:.0f} photons per pixel of density 1 per acquisition"
    return [moved, dose]


def describe_fluorescence(config, card: dict, report: dict | None = None) -> list[str]:
    """Lines of a fluorescence model card (see :func:`describe_model`)."""
    enc, dec = config.encoder, config.decoder
    pat, det = enc.patterns, enc.detector
    lines = [card["summary"]] if card.get("summary") else []
    compression = enc.compression
    lines.append(f"{enc.display_name}, x{compression:g} (C = d²/T = {det.bin_px}²/{pat.n_patterns}), "
                 f"{pat.n_patterns} {pat.parametrisation} patterns from a {pat.init} start"
                 f"{'' if pat.learnable else ' (fixed)'}, period {enc.period_px} px, decoder {dec.family}"
                 f"{' + segmentation head' if dec.seg_head else ''}, specimen pixel {enc.pixel_size_um:g} µm")
    lines += _trained_line(card)
    for key in ("validation", "test"):
        m = card.get(key) or {}
        if m.get("psnr_db") is not None:
            seg = (f", Dice {m['dice']:.3f}, matched F1 {m['f1']:.3f}" if m.get("dice") is not None else "")
            lines.append(f"{key} ({m.get('fields', '?')} whole fields, binary patterns, {m.get('noise', '?')} "
                         f"noise): PSNR {m['psnr_db']:.2f} dB, SSIM {m.get('ssim', float('nan')):.3f}{seg}")
    if card.get("test_rescored"):
        lines.append(f"validation and test re-evaluated {card['test_rescored']}")
    noise = (f"noise: Poisson at {det.photons_per_unit:g} photons per pixel of density 1 and frame, "
             f"background {det.background_photons:g} photons, read noise {det.read_noise_e:g} e⁻"
             if det.noisy else "noise free")
    lines.append(noise)
    report = report or card.get("optics_report")
    if report and "mirrors_flipped_fraction" in report:
        lines += describe_patterns(report, det.photons_per_unit)
    return lines + _data_lines(card)


def _trained_line(card: dict) -> list[str]:
    trained = [f"preset {card['preset']}" if card.get("preset") else None,
               f"{card['budget']} budget" if card.get("budget") else None,
               f"seed {card['train_config']['seed']}" if (card.get("train_config") or {}).get("seed") is not None
               else None,
               f"{card['wall_time_s'] / 60:.0f} min on the training machine" if card.get("wall_time_s") else None]
    trained = [t for t in trained if t]
    return ["trained: " + ", ".join(trained)] if trained else []


def _data_lines(card: dict) -> list[str]:
    lines = [f"data: {card['data_description']}"] if card.get("data_description") else []
    for i, command in enumerate(card.get("reproduce") or []):
        lines.append(("reproduce: " if i == 0 else "           ") + command)
    return lines


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


def describe_model(config, card: dict, report: dict | None = None) -> list[str]:
    """Lines of a model card for people (``dmicro models`` and the Reconstruct widget); ``report``: an
    :func:`optics_report` of the model (default: the card's ``optics_report``, if any)."""
    if getattr(config, "modality", "qpm") == "fluorescence":
        return describe_fluorescence(config, card, report)
    det, dec = config.encoder.detector, config.decoder
    optics = config.encoder.optics.display_name
    lines = []
    if card.get("summary"):
        lines.append(card["summary"])
    lines.append(f"{optics}, x{det.compression} ({det.binning}×{det.binning} binning), decoder {dec.family}, "
                 f"object pixel {config.encoder.optics.grid.pixel_size_um:g} µm")
    lines += _trained_line(card)
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
    return lines + _data_lines(card)


#: the held-out check field of shipped fluorescence models: generator stream and side (the training data
#: come from stream 1, ``dmicro phantom --modality fluorescence --seed 1``; this stream is never trained on)
FLUO_CHECK_SEED = 12345
FLUO_CHECK_FIELD_PX = 256


def fluorescence_check_psnr_db(model, *, seed: int = FLUO_CHECK_SEED, size_px: int = FLUO_CHECK_FIELD_PX,
                               noise_seed: int = 0) -> float:
    """PSNR (dB, data range 1) of a shipped fluorescence model on a held-out generated field: simulated through
    its binary patterns at the photons and read noise it was trained for (exact noise, ``noise_seed``),
    reconstructed on the field's grid; what tests/test_pretrained.py floors and ship_model.py prints."""
    from .. import api as dm
    from ..inference.fluorescence import simulate_fluorescence
    from ..metrics import psnr
    from ..phantoms.fluorescence import make_fluorescence_field
    from ..training.fluo_data import normalise_unit_range

    model = dm.load_model(model) if isinstance(model, (str, Path)) else model
    det = model.config.encoder.detector
    field = make_fluorescence_field(seed, 0, size_px=size_px)
    meas = simulate_fluorescence(field.image, model, photons=det.photons_per_unit, read_noise=det.read_noise_e,
                                 background_photons=det.background_photons, seed=noise_seed,
                                 pixel_size_um=field.pixel_size_um)
    truth = torch.from_numpy(normalise_unit_range(field.image))[None, None]
    recon = torch.from_numpy(np.asarray(dm.reconstruct(meas, model), np.float32))[None, None]
    return float(psnr(recon, truth)[0])
