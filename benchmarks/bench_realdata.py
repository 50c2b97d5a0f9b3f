"""Real measured fields (../shared/realdata) through a model: a real-data check, not a training set.

    python benchmarks/bench_realdata.py --model RUN_OR_CHECKPOINT [--realdata ../shared/realdata]

Each measured complex field (HL60 cells by off-axis holography and by QLSI) is prepared the same way:
1. amplitude normalised by its median;
2. phase unwrapped where the source is wrapped, then amplitude and phase resampled separately with
   anti-aliasing to the model's grid (316.4 nm) by ``napari_dmicro.io.resample.resample_amplitude_phase``;
3. given the model's background convention: a global phase offset is unobservable in intensity, so
   the background (median of the border pixels) is set to 0.15 rad, the phantoms' background level;
   the phase is then clipped to [0, 2π) as in the paper's data.
The prepared field goes through ``dm.simulate`` (noise free) and ``dm.reconstruct``; ``dm.evaluate``
compares with the prepared phase (φ/2π, data range 1, full field). The fields are small (one cell);
they are also placed in the middle of a 256² field of view of empty background and evaluated on the
cell's region ("in FoV"), which is how a microscope with a larger field would see them; on that
region a flat guess (background phase everywhere) and the binned-phase reference of the model's
compression (true phase binned to the camera grid, bicubic upsampled: a phase camera, not a bound) are
scored as references. Superseded for scoring measured cells by bench_honest.py (section ``measured``):
here the first columns image the small crop alone, and beyond its edge ``dm.simulate`` mirrors the
specimen (a lattice of copies of the same cell); the phase is also clipped to [0, 2π) and not unwrapped
relative to the background. The wavelength differs from the
model's 632.8 nm for some sources (647 nm QLSI): recorded, not corrected.
Writes ``benchmarks/results/realdata_<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BACKGROUND_RAD = 0.15


def sources(root: Path) -> list[dict]:
    out = []
    p = root / "qpimage_hl60_oah_hologram" / "hologram_cell_retrieved_field.npz"
    if p.exists():
        d = np.load(p)
        out.append({"name": "HL60 off-axis holography (qpimage)", "amplitude": d["amplitude"],
                    "phase": d["phase"], "pixel_size_um": 0.107, "wavelength_um": 0.633, "wrapped": False})
    p = root / "nrefocus_hl60_qlsi_field" / "HL60_field_complex128.npy"
    if p.exists():
        f = np.load(p)
        out.append({"name": "HL60 QLSI (nrefocus)", "amplitude": np.abs(f), "phase": np.angle(f),
                    "pixel_size_um": 0.139, "wavelength_um": 0.647, "wrapped": True})
    return out


def prepare(src: dict, pixel_size_um: float) -> np.ndarray:
    from skimage.restoration import unwrap_phase

    from napari_dmicro.io.resample import resample_amplitude_phase, set_background_phase

    phase = unwrap_phase(src["phase"].astype(np.float64)) if src["wrapped"] else src["phase"].astype(np.float64)
    amplitude = src["amplitude"].astype(np.float64)
    amplitude, phase = resample_amplitude_phase(amplitude / np.median(amplitude), phase, src["pixel_size_um"],
                                                pixel_size_um)
    field = set_background_phase(amplitude * np.exp(1j * phase), BACKGROUND_RAD)
    # as the paper's data: the phase above the background in [0, 2π) (the cells stay below 2π)
    relative = np.unwrap(np.unwrap(np.angle(field), axis=0), axis=1)
    return (amplitude * np.exp(1j * np.clip(relative, 0, 2 * np.pi - 1e-5))).astype(np.complex64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--realdata", default=str(Path(__file__).resolve().parents[2] / "shared" / "realdata"))
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)

    import napari_dmicro as dm
    from bench_quality import binned_phase_reference, checkpoint_sha256  # this folder is on sys.path (script)

    model = dm.load_model(args.model)
    grid = model.config.encoder.optics.grid
    rows = []
    for src in sources(Path(args.realdata)):
        field = prepare(src, grid.pixel_size_um)
        meas = dm.simulate(field, model)
        phase = dm.reconstruct(meas, model)
        report = dm.evaluate(phase, field)
        # the same cell in the middle of a 256² field of view of empty background (0.15 rad, unit amplitude)
        side = max(256, *field.shape)
        fov = np.full((side, side), np.exp(1j * BACKGROUND_RAD), np.complex64)
        r0, c0 = (side - field.shape[0]) // 2, (side - field.shape[1]) // 2
        fov[r0:r0 + field.shape[0], c0:c0 + field.shape[1]] = field
        fov_phase = dm.reconstruct(dm.simulate(fov, model), model)
        region = (slice(r0, r0 + field.shape[0]), slice(c0, c0 + field.shape[1]))
        cell = dm.evaluate(fov_phase[region], field)
        # references on the same region: a flat guess (the background phase everywhere) and the
        # binned-phase reference of this compression (true phase binned to the camera grid, bicubic upsampled)
        flat = dm.evaluate(np.full(field.shape, BACKGROUND_RAD, np.float32), field)
        binned = dm.evaluate(binned_phase_reference(fov, model.config.encoder.detector.binning)[region], field)
        rows.append({"name": src["name"], "source_pixel_um": src["pixel_size_um"],
                     "source_wavelength_um": src["wavelength_um"], "shape": list(field.shape),
                     "psnr_db": report.psnr_db, "ssim": report.ssim,
                     "in_fov_psnr_db": cell.psnr_db, "in_fov_ssim": cell.ssim,
                     "flat_psnr_db": flat.psnr_db, "flat_ssim": flat.ssim,
                     "binned_reference_psnr_db": binned.psnr_db, "binned_reference_ssim": binned.ssim,
                     "phase_range_rad": [float(np.mod(np.angle(field), 2 * np.pi).min()),
                                         float(np.mod(np.angle(field), 2 * np.pi).max())]})
        print(json.dumps(rows[-1]), flush=True)
    result = {"model": args.model, "checkpoint_sha256": checkpoint_sha256(args.model),
              "background_rad": BACKGROUND_RAD, "fields": rows,
              "command": "python benchmarks/bench_realdata.py " + " ".join(argv or sys.argv[1:])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = Path(args.model).name.replace(".safetensors", "")
    (RESULTS / f"realdata_{name}{args.tag}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
