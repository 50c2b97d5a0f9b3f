"""Copy a trained run into the package as a shipped model, with its model card.

    python benchmarks/ship_model.py RUN_FOLDER --name lff-x64 \
        --reproduce "dmicro phantom --out fields --count 80 --seed 1" \
        --reproduce "dmicro train --preset lff-x64 --data fields --out runs/lff-x64"

    python benchmarks/ship_model.py /work/runs/fluo-x256 --name fluo-x256     # fluorescence: one command

Writes ``src/napari_dmicro/pretrained/<name>.safetensors``: the run's best model (weights unchanged)
with the card extended by ``name``, ``reproduce`` (the commands that retrain it from nothing on a
2-core CPU), a description of the data and the size of the file. Refuses a file over 10 MB and a run
that did not finish (no test metrics).

Fluorescence runs need no --reproduce or --data-description: the data command is read from the training
stores' metadata (``dmicro phantom --modality fluorescence …``, recorded by the generator), the training
command from the run's card (paths made relative, --quiet and --max-minutes dropped: a scheduling choice,
not the recipe), the data description from run.json's splits. The card keeps the run's measured wall time,
its held-out test metrics (evaluated once at the end) and the patterns report (mirrors flipped relative to
the start, duty cycle, dose); the start comes from the run's ``initial_patterns.json`` or, for runs made
before it was recorded, is recomputed from the seed and pattern init (the card says which). Printed at
the end: the model's PSNR on the held-out check field of tests/test_pretrained.py, to set its floor.

``--rescore-test "WHY"`` (fluorescence) evaluates the run's validation and test splits again with the current
code (the best model's validation numbers too, which selected it by Dice and are otherwise stale) — the same
fields (the run's data fingerprint is checked), seed, binary patterns and exact noise; weights unchanged — for
when what turns the network's output into a result changed after training (e.g. the instance split). The card
keeps the numbers measured at training time under ``test_at_training`` / ``validation_at_training`` and says
why and when it was rescored.
"""

from __future__ import annotations

import argparse
import shlex
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
    parser.add_argument("--reproduce", action="append", help="a command (repeat, in order); required for QPM "
                        "runs, derived from the run for fluorescence runs")
    parser.add_argument("--summary", default="", help="one line shown by `dmicro models`")
    parser.add_argument("--rescore-test", default=None, metavar="WHY",
                        help="fluorescence: evaluate the validation and test splits again with the current code (say why)")
    parser.add_argument("--data-description", default=None,
                        help="what the model was trained on (default: QPM, the 80 phantom fields of the first "
                             "wave; fluorescence, derived from the run's data and splits)")
    args = parser.parse_args(argv)

    from napari_dmicro.io.checkpoints import load_checkpoint, read_checkpoint_info, save_checkpoint
    from napari_dmicro.pretrained import resolve_model

    source = resolve_model(args.run)
    info = read_checkpoint_info(source)
    model, _ = load_checkpoint(source)
    card = dict(info.card)
    fluorescence = getattr(info.config, "modality", "qpm") == "fluorescence"
    if fluorescence:
        card.update(fluorescence_card(model, card, source, args.name))
        if args.rescore_test:
            card.update(rescored_test(model, card, source, args.rescore_test))
    elif not args.reproduce:
        raise SystemExit("--reproduce is required for a QPM run (the commands that retrain it from nothing)")
    card["trained_with"] = card.pop("versions", None)  # save_checkpoint records the versions of this copy
    card.update(name=args.name, summary=args.summary or card.get("summary", ""),
                reproduce=args.reproduce or card["reproduce"],
                data_description=args.data_description or card.get("data_description") or DATA_DESCRIPTION)
    card.setdefault("data", {}).pop("folder", None)  # a path on the machine that trained it
    out = PRETRAINED / f"{args.name}.safetensors"
    save_checkpoint(out, model, card)
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out.name} is {size / 2**20:.1f} MB, over the 10 MB limit for shipped models")
    print(f"wrote {out} ({size / 2**20:.2f} MB)")
    if fluorescence:
        from napari_dmicro.pretrained import describe_model, fluorescence_check_psnr_db

        print("\n".join("    " + line for line in describe_model(info.config, card)))
        print(f"held-out check field (tests/test_pretrained.py): PSNR {fluorescence_check_psnr_db(args.name):.2f} dB; "
              "set the model's floor there a little under it")
    return 0


def _train_command(command: str, data_name: str, name: str) -> str:
    """The run's ``dmicro train`` command with relative paths and without scheduling options."""
    words, out, skip = shlex.split(command), [], 0
    for i, w in enumerate(words):
        if skip:
            skip -= 1
            continue
        if w == "--quiet":
            continue
        if w == "--max-minutes":
            skip = 1
            continue
        if w in ("--data", "--out") and i + 1 < len(words):
            out += [w, data_name if w == "--data" else f"runs/{name}"]
            skip = 1
            continue
        out.append(w)
    return shlex.join(out)


def rescored_test(model, card: dict, source: Path, why: str) -> dict:
    """The run's validation and test splits evaluated again with the current code, on exactly its data."""
    import json
    import time

    from napari_dmicro import __version__
    from napari_dmicro.training import fluo_data as F

    record = json.loads((source.parent / "run.json").read_text())
    data_dir, enc = Path(record["data_dir"]), model.config.encoder
    patch = (card.get("train_config") or {}).get("data", {}).get("patch_px", enc.period_px)
    sets = [F.load_fluorescence_set([data_dir / n for n in record["splits"][k]], pixel_size_um=enc.pixel_size_um,
                                    min_side_px=patch) for k in ("train", "val", "test")]
    if F.fingerprint(*sets) != record["data_fingerprint"]:
        raise SystemExit(f"the fields in {data_dir} are not the data {source.parent.name} was trained on "
                         "(fingerprint differs): cannot rescore its test split")
    seed = int((card.get("train_config") or {}).get("seed", 0))
    validation, test = (F.evaluate_fluorescence(model, s, seed, "cpu") for s in sets[1:])
    when = time.strftime("%Y-%m-%d", time.gmtime())
    return {"test": test, "test_at_training": card.get("test"),
            "validation": validation, "validation_at_training": card.get("validation"),
            "test_rescored": f"{when}, napari_dmicro {__version__}: {why} (same fields, seed, binary patterns and "
                             "noise; weights unchanged)",
            "test_protocol": (card.get("test_protocol") or "") + f"; re-evaluated {when} (see test_rescored)",
            "data_description": (card.get("data_description") or "").replace(
                "were evaluated once, at the end", "were evaluated at the end of training and once more when the "
                "post-processing changed (weights unchanged)")}


def fluorescence_card(model, card: dict, source: Path, name: str) -> dict:
    """What a fluorescence run's card needs to ship: reproduce commands, data description, patterns report."""
    import json

    from napari_dmicro.pretrained import initial_patterns, pack_patterns, patterns_report

    if card.get("test") is None:
        raise SystemExit(f"{source} is not a finished run (no test metrics): finish it (--resume) before shipping")
    run = source.parent / "run.json"
    record = json.loads(run.read_text()) if run.exists() else {}
    splits = record.get("splits") or (card.get("data") or {}).get("splits") or {}
    data_dir = Path(record.get("data_dir") or (card.get("data") or {}).get("folder") or "")
    stores = sorted(data_dir.glob("*.zarr")) if data_dir.is_dir() else []
    if not stores:
        raise SystemExit(f"the run's data folder {data_dir} is not here, so its generator command cannot be read; "
                         "pass --reproduce and --data-description")
    import zarr

    from napari_dmicro.io.fluorescence import read_fluorescence

    meta = dict(zarr.open_group(str(stores[0]), mode="r").attrs.get("napari_dmicro", {}))
    data_command = meta.get("command")
    if not data_command:
        raise SystemExit(f"{stores[0]} does not record the command that made it; pass --reproduce")
    data_name = shlex.split(data_command)[shlex.split(data_command).index("--out") + 1]
    shape = read_fluorescence(stores[0]).image.shape
    start, start_source = initial_patterns(model, card)
    report = patterns_report(model, card, start)
    report["init_source"] = start_source
    n = {k: len(v) for k, v in splits.items()}
    description = (f"{len(stores)} generated fluorescence nuclei fields"
                   + f" of {shape[0]}×{shape[1]} px"
                   + f" at {meta.get('pixel_size_um'):g} µm ({data_command}), split by field (seed "
                   f"{(card.get('train_config') or {}).get('seed', 0)}) into {n.get('train')} training, "
                   f"{n.get('val')} validation and {n.get('test')} test fields; the test fields were never seen in "
                   "training or model selection and were evaluated once, at the end")
    return {"reproduce": [data_command, _train_command(card.get("command") or "", data_name, name)],
            "data_description": description, "initial_patterns": pack_patterns(start), "optics_report": report}


if __name__ == "__main__":
    sys.exit(main())
