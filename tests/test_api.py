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
    assert isinstance(meas, dm.Measurement) and meas.dtype == np.float32 and meas.image.dtype == np.float32
    assert meas.record.field_shape == shape and meas.record.camera_shape == meas.shape
    assert np.array_equal(meas, dm.simulate(field, model, photons=1e4, read_noise=6.0, seed=3))
    phase = dm.reconstruct(meas, model)
    assert phase.shape == shape and phase.dtype == np.float32 and np.isfinite(phase).all()
    report = dm.evaluate(phase, field)
    assert report.ssim_map.shape == shape and -1 <= report.ssim <= 1 and report.psnr_db > 0
    if kind == "d2nn":
        assert "tiled" in meas.record.acquisition


def test_evaluate_uses_the_papers_convention_and_labels_patch_metrics():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 2 * np.pi, (512, 512)).astype(np.float32)
    perfect = dm.evaluate(truth, truth)
    assert perfect.ssim == pytest.approx(1.0, abs=1e-5) and perfect.n_patches == 4
    noisy = truth + rng.normal(0, 0.2, truth.shape).astype(np.float32)
    noisy[:256, :256] = truth[:256, :256]  # one perfect patch: patch mean PSNR > pooled PSNR (Jensen)
    # a complex reference works too (read mod 2π: uniform phase has no background; scored as given)
    report = dm.evaluate(noisy, np.exp(1j * truth), align_offset=False, reference_convention="absolute")
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


# ------------------------------------------------------------------------------------------ API edges
def test_simulate_takes_a_model_name_or_path_and_refuses_anything_else(tiny_checkpoints):
    field = make_field(seed=2, size_px=(64, 64))
    by_path = dm.simulate(field, str(tiny_checkpoints["lff"]), seed=1)
    assert np.array_equal(by_path, dm.simulate(field, dm.load_model(tiny_checkpoints["lff"]), seed=1))
    with pytest.raises(TypeError, match="model must be a model from dm.load_model"):
        dm.simulate(field, 42)


def test_reconstruct_refuses_a_complex_field_and_an_untrained_model(tiny_checkpoints):
    model = dm.load_model(tiny_checkpoints["lff"])
    field = make_field(seed=2, size_px=(64, 64))
    with pytest.raises(TypeError, match="that is a field, not a camera image"):
        dm.reconstruct(field, model)
    with pytest.raises(TypeError, match="no decoder"):
        dm.reconstruct(dm.simulate(field, model), dm.untrained_model(compression=16))


@pytest.mark.parametrize("which", ["phase map", "reference"])
def test_evaluate_refuses_nan_and_says_where(which):
    truth = np.full((300, 280), 1.0, np.float32)
    bad = truth.copy()
    bad[201, 17] = np.nan
    phase, reference = (bad, truth) if which == "phase map" else (truth, np.exp(1j * bad))
    with pytest.raises(ValueError, match=f"the {which} contains NaN.*first at row 201, col 17"):
        dm.evaluate(phase, reference)
    with pytest.raises(ValueError, match="phase map contains NaN"):
        dm.evaluate(np.full_like(truth, np.nan), truth)


def test_a_crop_of_a_measurement_does_not_keep_the_old_field_shape(tiny_checkpoints):
    model = dm.load_model(tiny_checkpoints["lff"])
    meas = dm.simulate(make_field(seed=2, size_px=(96, 96)), model)
    with pytest.raises(TypeError):
        meas[:12, :12]
    with pytest.raises(ValueError, match="belongs to another image"):
        dm.reconstruct(np.asarray(meas)[:12, :12], model, record=meas.record)
    assert dm.reconstruct(np.asarray(meas)[:12, :12], model).shape == (48, 48)  # bare: camera × binning


def test_measurement_metadata_inconsistent_with_its_image_is_refused(tiny_checkpoints, tmp_path, capsys):
    from napari_dmicro.io.fields import write_measurement

    model = dm.load_model(tiny_checkpoints["lff"])
    meas = dm.simulate(make_field(seed=2, size_px=(96, 96)), model)
    attrs = {**meas.to_attrs(), "field_shape": [1, 1]}
    write_measurement(tmp_path / "m.zarr", meas.image, pixel_size_um=meas.record.camera_pixel_size_um,
                      wavelength_um=meas.record.wavelength_um, attrs=attrs)
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "p.zarr"),
                 "--model", str(tiny_checkpoints["lff"])]) == 2
    assert f"field_shape [1, 1] does not fit camera_shape {list(meas.shape)}" in capsys.readouterr().err
    assert not (tmp_path / "p.zarr").exists()


# ------------------------------------------------------------------------------- one rule, one home
def test_one_pixel_pitch_rule_refuses_in_the_api_the_cli_and_the_widget_task(tiny_checkpoints, tmp_path, capsys):
    # another pitch is resampled (tests/test_scale_resample.py); one too far from the model's is refused
    from napari_dmicro.io.fields import write_field
    from napari_dmicro.widgets.workers import SimulateRequest, reconstruct_task, simulate_task

    field = make_field(seed=2, size_px=(64, 64))
    with pytest.raises(ValueError, match=r"0.01 µm, 0.0316× the model's 0.3164 µm: more than 16× apart"):
        dm.simulate(field, tiny_checkpoints["lff"], pixel_size_um=0.01)
    write_field(tmp_path / "f.zarr", field, pixel_size_um=0.01, wavelength_um=0.6328)
    assert main(["simulate", str(tmp_path / "f.zarr"), "-o", str(tmp_path / "m.zarr"),
                 "--model", str(tiny_checkpoints["lff"])]) == 2
    assert "more than 16× apart" in capsys.readouterr().err
    task = simulate_task(SimulateRequest(field=field, pixel_size_um=0.01, wavelength_um=0.6328,
                                         model=str(tiny_checkpoints["lff"]), model_label="lff"))
    with pytest.raises(ValueError, match="more than 16× apart"):
        for _ in task:
            pass
    # the camera pitch of a measurement is checked the same way, in the API and in the widget's task
    meas = dm.simulate(field, tiny_checkpoints["lff"])
    with pytest.raises(ValueError, match="camera pixels .* reconstruct with the model that matches"):
        dm.reconstruct(np.asarray(meas), tiny_checkpoints["lff"], pixel_size_um=2.0)
    task = reconstruct_task(meas.image, {}, str(tiny_checkpoints["lff"]), "lff", camera_pixel_size_um=2.0)
    with pytest.raises(ValueError, match="reconstruct with the model that matches"):
        for _ in task:
            pass


def test_one_untrained_model_for_the_cli_and_the_widget(tmp_path):
    from napari_dmicro.io.fields import read_image, write_field
    from napari_dmicro.widgets.workers import UNTRAINED_LFF, SimulateRequest, simulate_task

    field = make_field(seed=2, size_px=(80, 72))
    write_field(tmp_path / "f.zarr", field, pixel_size_um=0.3164, wavelength_um=0.6328)
    assert main(["simulate", str(tmp_path / "f.zarr"), "-o", str(tmp_path / "m.zarr"), "--compression", "16",
                 "--optics-seed", "3", "--seed", "3"]) == 0
    from_cli = read_image(tmp_path / "m.zarr")
    task = simulate_task(SimulateRequest(field=field, pixel_size_um=0.3164, wavelength_um=0.6328,
                                         model=UNTRAINED_LFF, model_label="untrained", compression=16, seed=3))
    try:
        while True:
            next(task)
    except StopIteration as done:
        from_widget = done.value.measurement
    api = dm.simulate(field, dm.untrained_model("lff", compression=16, seed=3), seed=3)
    np.testing.assert_allclose(from_cli.data, api, rtol=0, atol=1e-6)  # plane-wave intensity units
    np.testing.assert_allclose(from_widget, api, rtol=0, atol=1e-6)
    d2nn = dm.untrained_model("d2nn", compression=16)
    assert d2nn.encoder.tile_px() is not None and dm.simulate(field, d2nn).record.tile_px == d2nn.encoder.tile_px()


# ------------------------------------------------------------------ memory bounded by the block, not the field
def _noisy_pair(shape=(1100, 1000), seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.2, 6.0, shape).astype(np.float32)
    truth[:, : shape[1] // 3] = 3.0  # flat and textured regions
    return truth + rng.normal(0, 0.3, shape).astype(np.float32), np.exp(1j * truth).astype(np.complex64)


def test_blockwise_evaluation_equals_the_whole_field_computation():
    from napari_dmicro.inference.evaluate import evaluate_field
    from napari_dmicro.metrics import psnr, ssim_map

    phase, reference = _noisy_pair()
    p = torch.from_numpy(np.clip(phase / (2 * np.pi), 0, 1))
    t = torch.from_numpy(np.mod(np.angle(reference), 2 * np.pi).astype(np.float32) / (2 * np.pi))
    whole = ssim_map(p, t)[0, 0].numpy()  # the in-memory computation, one image
    q = evaluate_field(phase, reference, block_px=512, align_offset=False,  # 3 × 2 blocks, each read with a
                       reference_convention="absolute")                    # 5-px halo; the mod-2π reference
    np.testing.assert_allclose(q.ssim_map, whole, rtol=0, atol=1e-5)
    assert q.ssim == pytest.approx(float(whole.mean(dtype=np.float64)), abs=1e-6)
    assert q.psnr_db == pytest.approx(float(psnr(p, t)[0]), abs=1e-4)  # dB
    assert len(q.patch_psnrs_db) == 4 * 3
    lazy = dm.ssim_map_lazy(phase, reference, chunk_px=450, align_offset=False,  # chunks not on the block grid
                            reference_convention="absolute")
    np.testing.assert_allclose(lazy.compute(), whole, rtol=0, atol=1e-5)


def test_evaluation_without_the_map_holds_one_block_not_the_field():
    import tracemalloc

    from napari_dmicro.inference.evaluate import evaluate_field

    phase, reference = _noisy_pair((1536, 1536))
    field_bytes = phase.nbytes  # 9 MiB; the whole-field computation allocates several of these
    tracemalloc.start()
    try:
        quality = evaluate_field(phase, reference, block_px=256, keep_ssim_map=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert quality.ssim_map is None and np.isfinite(quality.ssim) and len(quality.patch_ssims) == 36
    assert peak < field_bytes / 3, f"numpy peak {peak / 2**20:.1f} MiB"


def test_cli_streams_reconstruction_and_ssim_map_with_the_in_memory_results(tiny_checkpoints, tmp_path, capsys):
    import json

    from napari_dmicro.io.fields import write_field

    field = make_field(seed=3, size_px=(1100, 1060))  # 2 × 2 chunks of the scratch and of the stores
    write_field(tmp_path / "f.zarr", field, pixel_size_um=0.3164, wavelength_um=0.6328)
    assert main(["simulate", str(tmp_path / "f.zarr"), "-o", str(tmp_path / "m.zarr"),
                 "--model", str(tiny_checkpoints["lff"])]) == 0
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "p.zarr"),
                 "--model", str(tiny_checkpoints["lff"])]) == 0
    model = dm.load_model(tiny_checkpoints["lff"])
    in_memory = dm.reconstruct(dm.simulate(field, model), model)
    streamed = read_image(tmp_path / "p.zarr").data
    np.testing.assert_allclose(streamed, in_memory, rtol=0, atol=1e-5)  # radians
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr", "m.zarr", "p.zarr"]  # scratch removed
    assert main(["reconstruct", str(tmp_path / "m.zarr"), "-o", str(tmp_path / "q.zarr"),
                 "--model", str(tiny_checkpoints["d2nn"])]) == 2  # refused inside the streaming block
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr", "m.zarr", "p.zarr"]  # nothing left behind
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "p.zarr"), "--reference", str(tmp_path / "f.zarr"),
                 "--ssim-map", str(tmp_path / "s.zarr")]) == 0
    printed = json.loads(capsys.readouterr().out.split("wrote")[0])
    report = dm.evaluate(in_memory, field)
    assert printed["psnr_db"] == pytest.approx(report.psnr_db, abs=1e-3)
    assert printed["ssim"] == pytest.approx(report.ssim, abs=1e-3)
    np.testing.assert_allclose(read_image(tmp_path / "s.zarr").data, report.ssim_map, rtol=0, atol=1e-5)
