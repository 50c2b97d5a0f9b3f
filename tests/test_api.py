"""The public API contract (load_model, simulate, reconstruct, evaluate) and its CLI commands."""

import numpy as np
import pytest
import torch

import napari_dmicro as dm
from napari_dmicro.cli import main
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.io.fields import read_image
from napari_dmicro.phantoms import make_field
from napari_dmicro.system import Microscope


@pytest.mark.parametrize("kind,shape", [("lff", (203, 157)), ("d2nn", (150, 130))])
def test_simulate_reconstruct_evaluate_round_trip_keeps_the_field_shape(tiny_checkpoints, kind, shape):
    model = dm.load_model(tiny_checkpoints[kind])
    assert model.card["test"]["psnr_db"] == 12.5 and not model.training
    field = make_field(seed=2, size_px=shape)
    meas = dm.simulate(field, model, photons=1e4, read_noise=6.0, seed=3)
    assert isinstance(meas, np.ndarray) and meas.dtype == np.float32
    assert meas.attrs["field_shape"] == list(shape) or tuple(meas.attrs["field_shape"]) == shape
    assert np.array_equal(meas, dm.simulate(field, model, photons=1e4, read_noise=6.0, seed=3))
    phase = dm.reconstruct(meas, model)
    assert phase.shape == shape and phase.dtype == np.float32 and np.isfinite(phase).all()
    report = dm.evaluate(phase, field)
    assert report.ssim_map.shape == shape and -1 <= report.ssim <= 1 and report.psnr_db > 0
    if kind == "d2nn":
        assert "tiled" in meas.attrs["acquisition"]


def test_evaluate_uses_the_papers_convention_and_labels_patch_metrics():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 2 * np.pi, (512, 512)).astype(np.float32)
    perfect = dm.evaluate(truth, truth)
    assert perfect.ssim == pytest.approx(1.0, abs=1e-5) and perfect.n_patches == 4
    noisy = truth + rng.normal(0, 0.2, truth.shape).astype(np.float32)
    noisy[:256, :256] = truth[:256, :256]  # one perfect patch: patch mean PSNR > pooled PSNR (Jensen)
    report = dm.evaluate(noisy, np.exp(1j * truth))  # a complex reference works too
    assert report.patch_psnr_db > report.psnr_db + 3
    with pytest.raises(ValueError, match="shape"):
        dm.evaluate(truth[:10], truth)


def test_cli_simulate_reconstruct_evaluate_with_a_model(tiny_checkpoints, tmp_path, capsys):
    assert main(["phantom", "--out", str(tmp_path), "--size", "180x140", "--seed", "5"]) == 0
    field = tmp_path / "phantom_0000.zarr"
    assert main(["simulate", str(field), "-o", str(tmp_path / "m.zarr"), "--model", str(tiny_checkpoints["lff"]),
                 "--photons", "1e4"]) == 0
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "p.zarr"),
                 "--model", str(tiny_checkpoints["lff"]), "--overlap", "4"]) == 0
    phase = read_image(tmp_path / "p.zarr")
    assert phase.kind == "phase" and phase.shape == (180, 140) and phase.pixel_size_um == pytest.approx(0.3164)
    assert phase.attrs["overlap_px"] == 4
    assert main(["evaluate", str(tmp_path / "p.zarr"), "--reference", str(field),
                 "--ssim-map", str(tmp_path / "s.zarr")]) == 0
    assert '"psnr_db"' in capsys.readouterr().out
    assert read_image(tmp_path / "s.zarr").shape == (180, 140)
    # a model of another compression is refused with the reason
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "q.zarr"),
                 "--model", str(tiny_checkpoints["lff"]).replace("lff", "missing")]) == 2
    assert main(["reconstruct", str(field), "-o", str(tmp_path / "q.zarr"),
                 "--model", str(tiny_checkpoints["lff"])]) == 2
    assert "not a camera measurement" in capsys.readouterr().err
    assert main(["models"]) == 0


def test_a_measurement_is_reconstructed_only_by_a_model_of_its_own_optics(tiny_checkpoints, tmp_path):
    lff, d2nn = dm.load_model(tiny_checkpoints["lff"]), dm.load_model(tiny_checkpoints["d2nn"])
    field = make_field(seed=2, size_px=(96, 96))
    meas = dm.simulate(field, d2nn)
    with pytest.raises(ValueError, match="d2nn optics.*lff optics"):
        dm.reconstruct(meas, lff)
    # another trained model of the same kind has other learned optics: allowed, with a warning
    other = tmp_path / "other_lff.safetensors"
    torch.manual_seed(1)
    save_checkpoint(other, Microscope(lff.config), card={})
    with pytest.warns(UserWarning, match="simulated with model"):
        dm.reconstruct(dm.simulate(field, lff), dm.load_model(other))
    # a bare lab image carries no metadata: nothing to check
    assert np.isfinite(dm.reconstruct(np.asarray(meas), lff)).all()


def test_cli_refuses_an_existing_output_before_any_work(tiny_checkpoints, tmp_path, capsys):
    assert main(["phantom", "--out", str(tmp_path), "--size", "64", "--seed", "5"]) == 0
    field = tmp_path / "phantom_0000.zarr"
    out = tmp_path / "m.zarr"
    assert main(["simulate", str(field), "-o", str(out), "--model", str(tiny_checkpoints["lff"])]) == 0
    before = sorted(p.name for p in out.rglob("*"))
    assert main(["simulate", str(field), "-o", str(out), "--model", str(tiny_checkpoints["d2nn"])]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == before and read_image(out).attrs["optics"] == "lff"
    assert main(["reconstruct", str(out), "-o", str(tmp_path / "p.zarr"),
                 "--model", str(tiny_checkpoints["d2nn"])]) == 2
    assert "lff optics" in capsys.readouterr().err and not (tmp_path / "p.zarr").exists()
