"""Copy a trained run into the package as a shipped model, with its model card.

    python benchmarks/ship_model.py RUN_FOLDER --name lff-x64 \
        --reproduce "dmicro phantom --out fields --count 80 --seed 1" \
        --reproduce "dmicro train --preset lff-x64 --data fields --out runs/lff-x64"

Writes ``src/napari_dmicro/pretrained/<name>.safetensors``: the run's best model (weights unchanged)
with the card extended by ``name``, ``reproduce`` (the commands that retrain it from nothing on a
2-core CPU), a description of the data and the size of the file. Refuses a file over 10 MB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PRETRAINED = Path(__file__).resolve().parents[1] / "src" / "napari_dmicro" / "pretrained"
MAX_BYTES = 10 * 1024 * 1024
DATA_DESCRIPTION = ("80 phantom fields of 789² px at 316.4 nm (dmicro phantom --count 80 --seed 1), split by field "
                    "into 64 training, 8 validation and 8 test fields (seed 0); the test fields were never seen "
                    "in training or model selection")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder (model.safetensors inside) or a checkpoint file")
    parser.add_argument("--name", required=True)
    parser.add_argument("--reproduce", action="append", required=True, help="a command (repeat, in order)")
    parser.add_argument("--summary", default="", help="one line shown by `dmicro models`")
    parser.add_argument("--data-description", default=DATA_DESCRIPTION,
                        help="what the model was trained on (default: the 80 phantom fields of the first wave)")
    args = parser.parse_args(argv)

    from napari_dmicro.io.checkpoints import load_checkpoint, read_checkpoint_info, save_checkpoint
    from napari_dmicro.pretrained import resolve_model

    source = resolve_model(args.run)
    info = read_checkpoint_info(source)
    model, _ = load_checkpoint(source)
    card = dict(info.card)
    card["trained_with"] = card.pop("versions", None)  # save_checkpoint records the versions of this copy
    card.update(name=args.name, summary=args.summary, reproduce=args.reproduce, data_description=args.data_description)
    card.setdefault("data", {}).pop("folder", None)  # a path on the machine that trained it
    out = PRETRAINED / f"{args.name}.safetensors"
    save_checkpoint(out, model, card)
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out.name} is {size / 2**20:.1f} MB, over the 10 MB limit for shipped models")
    print(f"wrote {out} ({size / 2**20:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
