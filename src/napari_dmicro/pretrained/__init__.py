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
