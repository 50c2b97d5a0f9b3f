"""The one reader of safetensors headers: metadata, tensor names, shapes and dtypes, never a tensor.

Checkpoints, training states and VGG19 weight files are all read through :func:`open_safetensors`.
Before safetensors' own parser (``safe_open(path, "pt")``) sees a file, its first bytes are checked,
so a pickle or a ``torch.save`` zip (both can run code when loaded) is refused by name, without
interpreting a byte of it: nothing here ever unpickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: A header larger than this is refused before it is parsed (ours are a few hundred KB at most).
MAX_HEADER_BYTES = 16 * 1024 * 1024
_PICKLE_SUFFIXES = {".pth", ".pt", ".pkl", ".pickle", ".ckpt"}
_NEVER_UNPICKLES = "napari-dmicro never unpickles files, because a pickle can run arbitrary code"


class SafetensorsError(ValueError):
    """A file is not a readable safetensors file (a pickle, a zip, damaged, or too large a header)."""


@dataclass(frozen=True)
class SafetensorsHeader:
    """What a safetensors file declares: string metadata and, per tensor, its shape and dtype."""

    path: Path
    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]

    def numel(self) -> int:
        """Total number of tensor elements the file declares."""
        total = 0
        for shape in self.shapes.values():
            n = 1
            for side in shape:
                n *= side
            total += n
        return total


def _what_it_is(head: bytes) -> str:
    if head[:4] == b"PK\x03\x04":
        return "a zip archive: the torch.save format, with a pickle inside"
    if head[:1] == b"\x80":
        return "a pickle stream"
    return "no safetensors header; a pickle or a PyTorch .pt/.pth file, perhaps"


def _refusal(path: Path, error: type[Exception], hint: str) -> None:
    """Raise ``error`` unless ``path`` starts like a safetensors file (8-byte length, then a JSON object)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        raise error(f"{path} is a folder; give the .safetensors file inside it")
    tail = f". {hint}" if hint else ""
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise error(f"{path.name}: refusing to read a '{path.suffix}' file (a PyTorch/pickle checkpoint); "
                    f"{_NEVER_UNPICKLES}{tail}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        raise error(f"{path.name} is too short ({size} bytes) to be a safetensors file{tail}")
    (header_bytes,) = struct.unpack("<Q", head[:8])
    if head[8:9] != b"{" or header_bytes + 8 > size:  # safetensors: 8-byte length, then a JSON object
        raise error(f"{path.name} is not a safetensors file ({_what_it_is(head)}); it was not loaded: "
                    f"{_NEVER_UNPICKLES}{tail}")
    if header_bytes > MAX_HEADER_BYTES:
        raise error(f"{path.name} declares a {header_bytes / 2**20:.0f} MB safetensors header (more than "
                    f"{MAX_HEADER_BYTES // 2**20} MB); it was not read{tail}")


@contextlib.contextmanager
def open_safetensors(path, *, error: type[Exception] = SafetensorsError, hint: str = "") -> Iterator:
    """``safe_open(path, "pt")`` after refusing pickles, zips and oversized headers; errors are ``error``.

    ``hint`` (what to do instead) is appended to every refusal. Tensors are read only when the caller
    asks the handle for them (``get_tensor``); ``metadata()``, ``keys()`` and
    ``get_slice(k).get_shape()`` read the header alone.
    """
    from safetensors import safe_open

    p = Path(path)
    _refusal(p, error, hint)
    try:
        handle = safe_open(str(p), framework="pt", device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise error(f"{p.name} cannot be read as safetensors ({exc}){f'. {hint}' if hint else ''}") from None
    with handle as f:
        yield f


def read_safetensors_header(path, *, error: type[Exception] = SafetensorsError, hint: str = "") -> SafetensorsHeader:
    """Metadata, shapes and dtypes of every tensor in ``path``, from the header alone."""
    with open_safetensors(path, error=error, hint=hint) as f:
        shapes, dtypes = {}, {}
        for key in f.keys():
            info = f.get_slice(key)
            shapes[key] = tuple(int(s) for s in info.get_shape())
            dtypes[key] = str(info.get_dtype())
        return SafetensorsHeader(Path(path), dict(f.metadata() or {}), shapes, dtypes)


def file_sha256(path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
