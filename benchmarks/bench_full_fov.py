"""Full field of view: one continuous measurement + blended windows vs the paper's tiled patches.

    python benchmarks/bench_full_fov.py --model RUN_OR_CHECKPOINT --data FIELDS_DIR [--split test|all] [--fields N]

For every field of the run's test split (from the checkpoint's card) or of ``--data`` (``--split all``: a
held-out folder such as /work/data/real-test), the first ``--fields`` of them if given:

- **ours**: ``dm.simulate`` of the whole field (one image) then ``dm.reconstruct`` with overlapping,
  blended decoder windows;
- **tiled patches**: the field cut into non-overlapping 256² patches, each simulated and
  reconstructed on its own (its own measurement), the reconstructions tiled back. ``--tiles`` says
  what a patch imaged on its own sees beyond its edges: ``reflect`` (the specimen mirrored: the
  strongest per-patch protocol, no microscope can realise it), ``dark`` (a 256² field stop: what
  acquiring patches one at a time means physically) or ``circular`` (the periodic convolution of the
  authors' code, i.e. the paper's protocol). The decoder is the same model's in every case; it was
  trained on continuous measurements, so for ``dark`` and ``circular`` it also meets patch edges it
  never saw in training (the paper's decoder was trained on its own protocol);

and, on the same pixels (the region the 256² tiles cover), the PSNR of the pooled error over all
fields (φ/2π, data range 1, clipped) for both, the mean of per-patch PSNRs for both (to show how much
of the paper's patch-vs-full gap is Jensen's inequality), and the seam ratio of ours: mean absolute
error within ±4 px of a decoder window boundary divided by the mean absolute error elsewhere (``null``
when one decoder window covers every field, e.g. 512² fields at x64: there is no seam to measure).
Writes ``benchmarks/results/full_fov_<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _unit(phase_rad: np.ndarray) -> np.ndarray:
    return np.clip(phase_rad / (2 * np.pi), 0, 1)


def _psnr(sse: float, n: int) -> float:
    return float(10 * np.log10(1.0 / max(sse / n, 1e-20)))


def window_boundaries(length_obj: int, window_cam: int, overlap_cam: int, binning: int) -> list[int]:
    """Object-pixel positions where a decoder window starts or ends (inside the image)."""
    from napari_dmicro.inference.blending import window_starts

    length_cam = length_obj // binning
    if length_cam <= window_cam:  # one window covers the field: no boundary inside it
        return []
    w = window_cam
    edges = set()
    for s in window_starts(length_cam, w, w - overlap_cam):
        edges.update({s * binning, (s + w) * binning})
    return sorted(e for e in edges if 0 < e < length_obj)


def tile_protocol_model(model, tiles: str):
    """The model with the optics' edge rule of the tiled protocol (same weights)."""
    from napari_dmicro.system import Microscope

    if tiles == "reflect" or model.encoder.tile_px() is not None:
        return model
    enc = model.config.encoder
    if tiles == "dark":
        enc = enc.model_copy(update={"outside_field": "dark"})
    else:
        enc = enc.model_copy(update={"optics": enc.optics.model_copy(update={"convolution": "circular"})})
    copy = Microscope(model.config.model_copy(update={"encoder": enc}), init="all_pass")
    copy.load_state_dict(model.state_dict())
    return copy.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="folder of fields (the run's data folder)")
    parser.add_argument("--split", default="test", help="test|val|all: which fields of the run's card")
    parser.add_argument("--photons", type=float, default=None)
    parser.add_argument("--read-noise", type=float, default=0.0)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--tiles", choices=("reflect", "dark", "circular"), default="reflect",
                        help="what an independently imaged patch sees beyond its edges (reflect)")
    parser.add_argument("--fields", type=int, default=None, help="only the first N fields (sorted by name)")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)

    import napari_dmicro as dm
    from bench_quality import checkpoint_sha256, phantom_command  # this folder is on sys.path (script)
    from napari_dmicro.io.fields import read_field

    model = dm.load_model(args.model)
    tile_model = tile_protocol_model(model, args.tiles)
    b = model.config.encoder.detector.binning
    window = model.config.decoder.img_size
    overlap = window // 2 if args.overlap is None else args.overlap
    names = None
    if args.split != "all":
        names = (model.card.get("data") or {}).get("splits", {}).get(args.split)
    paths = sorted(Path(args.data).iterdir())
    paths = [p for p in paths if p.suffix in (".zarr", ".npy", ".npz") and (names is None or p.name in names)]
    paths = paths[: args.fields]
    if not paths:
        raise SystemExit("no fields found for that split")
    patch = 256
    sse = {"ours": 0.0, "tiled": 0.0}
    per_patch = {"ours": [], "tiled": []}
    near, far = [0.0, 0], [0.0, 0]
    n_pix = 0
    seconds = {"ours": 0.0, "tiled": 0.0}
    for path in paths:
        field = np.asarray(read_field(path).data)
        truth = np.mod(np.angle(field), 2 * np.pi) / (2 * np.pi)
        t0 = time.perf_counter()
        meas = dm.simulate(field, model, photons=args.photons, read_noise=args.read_noise, seed=1)
        ours = _unit(dm.reconstruct(meas, model, overlap=overlap))
        seconds["ours"] += time.perf_counter() - t0
        rows, cols = (field.shape[0] // patch) * patch, (field.shape[1] // patch) * patch
        tiled = np.zeros((rows, cols), np.float32)
        t0 = time.perf_counter()
        for r in range(0, rows, patch):
            for c in range(0, cols, patch):
                sub = field[r:r + patch, c:c + patch]
                if args.tiles == "circular":  # the authors' model images exactly one 256² patch
                    if args.photons is not None:
                        raise SystemExit("--tiles circular is implemented for noise-free comparisons only")
                    with torch.no_grad():
                        m = tile_model.encoder(torch.from_numpy(np.ascontiguousarray(sub))).numpy()
                else:
                    m = dm.simulate(sub, tile_model, photons=args.photons, read_noise=args.read_noise, seed=1)
                tiled[r:r + patch, c:c + patch] = _unit(dm.reconstruct(m, model, overlap=overlap))
        seconds["tiled"] += time.perf_counter() - t0
        region = (slice(0, rows), slice(0, cols))
        t = truth[region]
        for name, pred in (("ours", ours[region]), ("tiled", tiled)):
            err = (pred - t) ** 2
            sse[name] += float(err.sum())
            for r in range(0, rows, patch):
                for c in range(0, cols, patch):
                    per_patch[name].append(_psnr(float(err[r:r + patch, c:c + patch].sum()), patch * patch))
        n_pix += rows * cols
        abs_err = np.abs(ours - truth)
        mask = np.zeros(truth.shape, bool)
        for e in window_boundaries(truth.shape[0], window, overlap, b):
            mask[max(e - 4, 0):e + 4, :] = True
        for e in window_boundaries(truth.shape[1], window, overlap, b):
            mask[:, max(e - 4, 0):e + 4] = True
        near[0] += float(abs_err[mask].sum())
        near[1] += int(mask.sum())
        far[0] += float(abs_err[~mask].sum())
        far[1] += int((~mask).sum())
        print(f"{path.name}: done", flush=True)
    result = {
        "model": args.model, "tiles": args.tiles, "fields": [p.name for p in paths], "overlap_camera_px": overlap, "window_camera_px": window,
        "photons": args.photons, "read_noise_e": args.read_noise,
        "pooled_psnr_db": {k: _psnr(v, n_pix) for k, v in sse.items()},
        "mean_patch_psnr_db": {k: float(np.mean(v)) for k, v in per_patch.items()},
        "seam_ratio": (near[0] / near[1]) / max(far[0] / max(far[1], 1), 1e-20) if near[1] else None,
        "data_dir": args.data, "data_command": phantom_command(paths), "field_px": list(np.shape(field)), "checkpoint_sha256": checkpoint_sha256(args.model),
        "seconds": seconds, "command": "python benchmarks/bench_full_fov.py " + " ".join(argv or sys.argv[1:]),
    }
    result["gain_db"] = result["pooled_psnr_db"]["ours"] - result["pooled_psnr_db"]["tiled"]
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = Path(args.model).name.replace(".safetensors", "")
    (RESULTS / f"full_fov_{name}{args.tag}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
