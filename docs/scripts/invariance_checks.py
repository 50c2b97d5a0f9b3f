"""Numbers for docs/physics.md (issue 10, invariances), on the measured HL60 fields of ../shared/realdata.

    PYTHONPATH=src python docs/scripts/invariance_checks.py [REALDATA]

1. Phase convention: background phase found by `background_phase_rad` vs the frame median; pixels that
   the absolute convention (φ mod 2π) puts above 5.5 rad although they are background noise.
2. Illumination: how much the shipped lff-x64 reconstruction changes when the field's amplitude is scaled
   by 0.25 / 4 (no flat field: the shipped model), and how much its noise-free measurement changes with
   the flat field switched on for the same optics.
3. Offset alignment: lff-x64 on a measured cell embedded in 256² of background, scored unaligned
   (absolute reference) and aligned (background reference).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import napari_dmicro as dm
from napari_dmicro.io.resample import resample_field, set_background_phase
from napari_dmicro.phase_reference import background_phase_rad, referenced_phase_rad
from napari_dmicro.system import Microscope

TARGET_PX_UM = 0.3164


def measured_fields(root: Path) -> dict[str, np.ndarray]:
    qlsi = np.load(root / "nrefocus_hl60_qlsi_field" / "HL60_field_complex128.npy")
    oah = np.load(root / "qpimage_hl60_oah_hologram" / "hologram_cell_retrieved_field.npz")["field"]
    out = {}
    for name, field, px in (("HL60 QLSI", qlsi, 0.139), ("HL60 off-axis hologram", oah, 0.107)):
        out[name] = resample_field(field / np.median(np.abs(field)), px, TARGET_PX_UM).astype(np.complex64)
    return out


def embedded(cell: np.ndarray, side: int = 256) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The cell (background set to 0 rad) in the middle of ``side``² of unit background."""
    cell = set_background_phase(cell, 0.0)
    fov = np.ones((side, side), np.complex64)
    r0, c0 = (side - cell.shape[0]) // 2, (side - cell.shape[1]) // 2
    region = (slice(r0, r0 + cell.shape[0]), slice(c0, c0 + cell.shape[1]))
    fov[region] = cell
    return fov, region


def rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def main(root: Path) -> None:
    fields = measured_fields(root)
    print("## 1. phase convention (measured fields resampled to 0.3164 µm)")
    for name, field in fields.items():
        frame = float(np.angle(set_background_phase(field, 0.0)[0, 0] / field[0, 0]))
        bg = background_phase_rad(field)
        zeroed = field * np.exp(-1j * bg).astype(np.complex64)
        absolute = np.mod(np.angle(zeroed), 2 * np.pi)
        ref = referenced_phase_rad(field)
        background = np.abs(np.angle(zeroed)) < 0.5
        print(f"{name}: {field.shape[0]}×{field.shape[1]} px; background {bg:+.3f} rad (frame median "
              f"{-frame:+.3f}); background pixels {background.mean():.0%}; with the background at 0, φ mod 2π "
              f"puts {np.mean(absolute[background] > 5.5):.1%} of them above 5.5 rad; referenced: min "
              f"{ref[background].min():+.2f}, max {ref[background].max():+.2f} rad there, "
              f"{np.mean(ref[background] < 0):.0%} below 0; cell max {ref.max():.2f} rad")

    print("\n## 2. illumination (amplitude scale) — HL60 QLSI cell in 256² of background")
    fov, region = embedded(fields["HL60 QLSI"])
    model = dm.load_model("lff-x64")
    base = dm.reconstruct(dm.simulate(fov, model), model)
    for scale in (0.25, 4.0):
        other = dm.reconstruct(dm.simulate(fov * np.float32(scale), model), model)
        print(f"shipped lff-x64 (no flat field), amplitude ×{scale}: reconstruction changes by "
              f"{rms(other, base):.3f} rad rms (whole 256²), {rms(other[region], base[region]):.3f} on the cell")
    system = model.config
    detector = system.encoder.detector.model_copy(update={"flat_field": True})
    flat_system = system.model_copy(update={"encoder": system.encoder.model_copy(update={"detector": detector})})
    flat_model = Microscope(flat_system)
    flat_model.load_state_dict(model.state_dict())
    flat_model.eval()
    m0 = np.asarray(dm.simulate(fov, flat_model))
    for scale in (0.25, 4.0):
        m1 = np.asarray(dm.simulate(fov * np.float32(scale), flat_model))
        print(f"lff-x64 optics with the flat field, amplitude ×{scale}: measurement changes by at most "
              f"{np.abs(m1 / m0 - 1).max():.1e} (relative)")

    print("\n## 3. offset alignment — lff-x64 on the embedded HL60 QLSI cell, scored on the cell")
    cell_fov = set_background_phase(fov, 0.15)  # the phantoms' (and the shipped models') offset
    phase = dm.reconstruct(dm.simulate(cell_fov, model), model)
    truth = cell_fov[region]
    for label, kwargs in (("unaligned, φ mod 2π reference", dict(align_offset=False, reference_convention="absolute")),
                          ("aligned, background reference", dict())):
        r = dm.evaluate(phase[region], truth, keep_ssim_map=False, **kwargs)
        print(f"{label}: {r.psnr_db:.2f} dB, SSIM {r.ssim:.3f}, offset removed {r.offset_rad:+.3f} rad")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/realdata"))
