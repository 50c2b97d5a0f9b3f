"""Models shipped inside the package (``<name>.safetensors`` beside this file) and name resolution."""

from __future__ import annotations

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


def describe_model(config, card: dict) -> list[str]:
    """Lines of a model card for people (``dmicro models`` and the Reconstruct widget)."""
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
    if det.max_photons:
        lines.append(f"noise aware: {det.max_photons:g} photons, read noise {det.read_noise_e:g} e⁻")
    if card.get("data_description"):
        lines.append(f"data: {card['data_description']}")
    for i, command in enumerate(card.get("reproduce") or []):
        lines.append(("reproduce: " if i == 0 else "           ") + command)
    return lines
