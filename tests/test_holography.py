"""Off-axis holograms → fields: synthetic holograms of known fields, the measured HL60 hologram against its
qpimage retrieval, and ``dmicro import``."""


import numpy as np
import pytest

import napari_dmicro as dm
from napari_dmicro.cli import main
from napari_dmicro.io.fields import read_field
from napari_dmicro.phase_reference import referenced_phase_rad

INTERIOR = (slice(16, -16), slice(16, -16))  # away from the border's ringing


def _known_field(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude (0.9..1) and phase (three Gaussian bumps, peak 5 rad) of a known object."""
    yy, xx = np.indices((n, n), dtype=float)
    phase = np.zeros((n, n))
    for cy, cx, sigma, peak in [(90, 100, 14, 5.0), (160, 150, 18, 3.0), (120, 190, 10, 2.0)]:
        phase += peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    amplitude = 1 - 0.1 * np.exp(-((yy - 128) ** 2 + (xx - 128) ** 2) / (2 * 40 ** 2))
    return amplitude, phase


def _hologram(amplitude, phase, *, illumination_rad=0.0, cycles_per_px=0.22, angle_deg=35.0):
    """|object + reference|² with a tilted plane reference wave (the carrier)."""
    yy, xx = np.indices(amplitude.shape, dtype=float)
    angle = np.deg2rad(angle_deg)
    carrier = 2 * np.pi * cycles_per_px * (np.cos(angle) * xx + np.sin(angle) * yy)
    return np.abs(amplitude * np.exp(1j * (phase + illumination_rad)) + np.exp(1j * carrier)) ** 2


def _rms_after_offset(a, b) -> float:
    d = (a - b)[INTERIOR]
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


def test_a_synthetic_hologram_gives_back_its_phase_within_0_01_rad():
    amplitude, phase = _known_field()
    result = dm.field_from_hologram(_hologram(amplitude, phase), pixel_size_um=0.1, wavelength_um=0.5)
    assert result.field.dtype == np.complex64 and result.field.shape == phase.shape
    # measured: 0.0008 rad rms (smooth disk 1/2; disk 1/3: 0.0067); the carrier residue is removed as a tilt
    assert _rms_after_offset(result.phase_rad, phase) < 0.01
    assert result.phase_rad.max() == pytest.approx(5.0, abs=0.05)  # unwrapped: the 5 rad peak is not folded
    assert result.record.correction == "tilt" and result.record.background == "none"


def test_a_reference_hologram_removes_the_illuminations_own_slow_phase():
    amplitude, phase = _known_field()
    yy, xx = np.indices(phase.shape)
    slow = 0.8 * np.sin(xx / 60) + 0.01 * yy  # not a plane: only the reference can remove it
    holo = _hologram(amplitude, phase, illumination_rad=slow)
    reference = _hologram(np.ones_like(amplitude), np.zeros_like(phase), illumination_rad=slow)
    result = dm.field_from_hologram(holo, pixel_size_um=0.1, wavelength_um=0.5, background=reference,
                                    correct_background="offset")
    # measured: phase 0.0005 rad rms, amplitude 0.0006 rms
    assert _rms_after_offset(result.phase_rad, phase) < 0.01
    assert np.sqrt(np.mean((np.abs(result.field) - amplitude)[INTERIOR] ** 2)) < 0.01
    without = dm.field_from_hologram(holo, pixel_size_um=0.1, wavelength_um=0.5)
    assert _rms_after_offset(without.phase_rad, phase) > 0.1  # the slow phase stays without the reference
    assert result.record.to_attrs()["hologram_background"] == "reference hologram"


def test_refocus_propagates_by_the_given_distance_and_back_propagation_undoes_it():
    import torch

    from napari_dmicro.optics.propagation import propagate

    amplitude, phase = _known_field(128)
    holo = _hologram(amplitude, phase / 2)
    plain = dm.field_from_hologram(holo, pixel_size_um=0.1, wavelength_um=0.5, correct_background=None)
    there = dm.field_from_hologram(holo, pixel_size_um=0.1, wavelength_um=0.5, correct_background=None,
                                   refocus_um=2.0)
    assert there.record.refocus_um == 2.0
    assert np.abs(there.field - plain.field)[INTERIOR].mean() > 0.01  # it did propagate
    back = propagate(torch.from_numpy(there.field), -2.0, pixel_size_um=0.1, wavelength_um=0.5).numpy()
    err = np.abs(back - plain.field)[INTERIOR]
    # measured: 0.031 rms (0.10 max): light that leaves the 12.8 µm window and the band limit are lost
    assert np.sqrt(np.mean(err ** 2)) < 0.05


def test_a_background_mask_fits_the_tilt_where_there_is_no_specimen():
    amplitude, phase = _known_field()
    yy, xx = np.indices(phase.shape)
    tilt = 0.02 * yy - 0.015 * xx  # a tilted illumination, no reference
    result = dm.field_from_hologram(_hologram(amplitude, phase, illumination_rad=tilt), pixel_size_um=0.1,
                                    wavelength_um=0.5, background_mask=phase < 0.01)
    assert _rms_after_offset(result.phase_rad, phase) < 0.01
    assert result.record.correction_region.startswith("mask")
    assert abs(float(np.median(result.phase_rad[phase < 0.01]))) < 0.01  # background at 0 rad


@pytest.mark.parametrize("missing", ["pixel_size_um", "wavelength_um"])
def test_scale_is_required_and_the_error_names_the_argument_and_flag(missing):
    kwargs = {"pixel_size_um": 0.1, "wavelength_um": 0.5, missing: None}
    with pytest.raises(ValueError, match=f"{missing} is required \\(--{missing.replace('_', '-')}\\)"):
        dm.field_from_hologram(np.ones((64, 64)), **kwargs)


def test_bad_holograms_are_refused_clearly():
    with pytest.raises(ValueError, match="real 2-D image"):
        dm.field_from_hologram(np.ones((64, 64), complex), pixel_size_um=0.1, wavelength_um=0.5)
    with pytest.raises(ValueError, match="same camera frame"):
        dm.field_from_hologram(np.ones((64, 64)), background=np.ones((64, 60)), pixel_size_um=0.1,
                               wavelength_um=0.5)


@pytest.fixture(scope="module")
def hl60(realdata):
    root = realdata / "qpimage_hl60_oah_hologram"
    with np.load(root / "hologram_cell.npz") as npz:
        data, bg = npz["data"], npz["bg_data"]
    with np.load(root / "hologram_cell_retrieved_field.npz") as npz:
        reference_phase = npz["phase"]
    return root, data, bg, reference_phase


def test_the_measured_hl60_hologram_matches_qpimages_retrieval(hl60):
    _, data, bg, reference_phase = hl60
    result = dm.field_from_hologram(data, background=bg, pixel_size_um=0.107, wavelength_um=0.633)
    ours, theirs = referenced_phase_rad(result.phase_rad), referenced_phase_rad(reference_phase)
    cell = theirs > 0.5  # 13014 px
    diff = ours - theirs
    # measured (qpretrieve 0.7.0 here vs qpimage + qpretrieve 0.3.2, same smooth disk 1/2 filter and 5 px
    # border tilt fit): 0.0016 rad rms over the field, 0.0010 rad over the cell; peak 4.99 vs 4.97 rad
    assert np.sqrt(np.mean(diff ** 2)) < 0.005
    assert np.sqrt(np.mean(diff[cell] ** 2)) < 0.005
    assert result.phase_rad.max() == pytest.approx(reference_phase.max(), abs=0.05)


def test_dmicro_import_writes_the_hologram_field_with_its_scale(hl60, tmp_path, capsys):
    root = hl60[0]
    out = tmp_path / "cell.zarr"
    assert main(["import", str(root / "hologram_cell.npz"), "-o", str(out), "--pixel-size-um", "0.107",
                 "--wavelength-um", "0.633"]) == 0
    assert "reference" in capsys.readouterr().out  # bg_data in the same file is used as the reference
    field = read_field(out)
    assert field.shape == (200, 210) and field.pixel_size_um == pytest.approx(0.107)
    assert field.wavelength_um == pytest.approx(0.633)
    assert field.attrs["source_kind"] == "off-axis hologram"
    assert field.attrs["hologram_background"] == "reference hologram"


def test_dmicro_import_without_a_pixel_size_is_a_clear_error(hl60, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["import", str(hl60[0] / "hologram_cell.npz"), "-o", str(tmp_path / "c.zarr"),
              "--wavelength-um", "0.633"])
    assert exit_info.value.code == 2
    assert "required: --pixel-size-um" in capsys.readouterr().err
    assert not (tmp_path / "c.zarr").exists()


def test_dmicro_import_takes_phase_images_and_complex_arrays(tmp_path):
    phase = np.linspace(0, 3, 64 * 48, dtype=np.float32).reshape(64, 48)
    np.save(tmp_path / "phase.npy", phase)
    np.save(tmp_path / "amp.npy", np.full_like(phase, 0.5))
    assert main(["import", str(tmp_path / "phase.npy"), "-o", str(tmp_path / "p.zarr"), "--phase-amplitude",
                 "--amplitude", str(tmp_path / "amp.npy"), "--pixel-size-um", "0.2", "--wavelength-um", "0.5"]) == 0
    field = read_field(tmp_path / "p.zarr")
    assert np.allclose(np.angle(np.asarray(field.data)), phase, atol=1e-5)
    assert np.allclose(np.abs(np.asarray(field.data)), 0.5) and field.pixel_size_um == pytest.approx(0.2)
    np.save(tmp_path / "c.npy", (0.5 * np.exp(1j * phase)).astype(np.complex64))
    assert main(["import", str(tmp_path / "c.npy"), "-o", str(tmp_path / "c.zarr"), "--complex",
                 "--pixel-size-um", "0.3", "--wavelength-um", "0.6"]) == 0
    assert read_field(tmp_path / "c.zarr").wavelength_um == pytest.approx(0.6)
    assert main(["import", str(tmp_path / "c.npy"), "-o", str(tmp_path / "d.zarr"), "--pixel-size-um", "0.3",
                 "--wavelength-um", "0.6"]) == 2  # a complex array is not a hologram: one line, exit 2
