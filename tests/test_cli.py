"""The dmicro command line: help with examples, readable errors with exit codes, the demo's outputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

import napari_dmicro as dm
from napari_dmicro.cli import main
from napari_dmicro.io.fields import read_field, read_image
from napari_dmicro.model_grid import plan_grid
from napari_dmicro.phantoms import make_fields

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("demo", "phantom", "simulate", "info", "train", "examples:"):
        assert word in out


def test_phantom_simulate_info_round_trip(tmp_path, capsys):
    assert main(["phantom", "--out", str(tmp_path / "f"), "--count", "2", "--size", "96x80", "--seed", "4"]) == 0
    fields = sorted((tmp_path / "f").glob("*.zarr"))
    assert len(fields) == 2
    first = read_field(fields[0])
    assert first.shape == (96, 80) and first.attrs["seed"] == 4
    out = tmp_path / "m.zarr"
    assert main(["simulate", str(fields[0]), "-o", str(out), "--compression", "16", "--photons", "1000",
                 "--read-noise", "2", "--seed", "3"]) == 0
    meas = read_image(out)
    assert meas.kind == "measurement" and meas.shape == (24, 20)
    assert meas.pixel_size_um == pytest.approx(0.3164 * 4)
    assert meas.attrs["max_photons"] == 1000 and meas.attrs["compression"] == 16
    assert main(["info", str(out)]) == 0
    assert "measurement, 24×20 px" in capsys.readouterr().out


def test_errors_are_readable_with_nonzero_exit_codes(tmp_path, capsys):
    np.save(tmp_path / "real.npy", np.ones((64, 64), np.float32))
    assert main(["simulate", str(tmp_path / "real.npy"), "-o", str(tmp_path / "m.zarr")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "complex" in err and "Traceback" not in err
    np.save(tmp_path / "f.npy", np.ones((64, 64), np.complex64))
    scale = ["--pixel-size-um", "0.3164", "--wavelength-um", "0.6328"]
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr"), "--compression", "32",
                 *scale]) == 2
    assert "power of 4" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing.zarr"), "-o", str(tmp_path / "m.zarr")]) == 2
    # a bare .npy records no scale: never guessed, the flags are asked for
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr")]) == 2
    assert "does not record its pixel size; give pixel_size_um=… (µm; dmicro: --pixel-size-um)" in \
        capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr"), *scale]) == 0
    assert "64×64 px at 0.3164 µm (from --pixel-size-um), λ 0.6328 µm (from --wavelength-um)" in \
        capsys.readouterr().out
    assert main(["simulate", str(tmp_path / "f.npy"), "-o", str(tmp_path / "m.zarr"), *scale]) == 2
    assert "exists" in capsys.readouterr().err


def test_demo_simulates_reconstructs_and_evaluates_with_a_shipped_model(tmp_path):
    import json

    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "256"]) == 0
    field = read_field(tmp_path / "demo" / "field.zarr")
    meas = read_image(tmp_path / "demo" / "measurement.zarr")
    phase = read_image(tmp_path / "demo" / "phase.zarr")
    # the camera covers the field padded to the decoder's window (docs/lab-data.md)
    padded = plan_grid(np.asarray(field.data), dm.load_model("lff-x64-noisy")).padded_shape
    assert field.shape == (256, 256) and meas.shape == tuple(-(-n // 8) for n in padded) and phase.shape == (256, 256)
    assert meas.attrs["compression"] == 64 and meas.attrs["max_photons"] == 1e4 and meas.attrs["read_noise_e"] == 6
    assert meas.attrs["model"] == "lff-x64-noisy" and phase.attrs["model"] == "lff-x64-noisy"
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    recomputed = dm.evaluate(np.asarray(phase.data), np.asarray(field.data))  # aligned, background-referenced
    assert metrics["psnr_db"] == pytest.approx(recomputed.psnr_db, abs=1e-3) and metrics["psnr_db"] > 25
    png = (tmp_path / "demo" / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_the_demo_field_is_not_one_the_shipped_models_trained_on():
    from napari_dmicro.demo import DEMO_SEED

    demo_state = np.random.SeedSequence(DEMO_SEED).generate_state(4).tolist()
    for k in range(80):  # dmicro phantom --count 80 --seed 1: field k from SeedSequence([1, k])
        assert np.random.SeedSequence([1, k]).generate_state(4).tolist() != demo_state


# float32 phantoms differ across CPUs/BLAS builds by ~3e-5 rad (FFT and sums in another order); a real
# change to the generator (another seed, a rescaled phase) moves the phase by tenths of a radian
SAMPLE_PHASE_TOL_RAD = 1e-4
SAMPLE_AMPLITUDE_TOL_REL = 1e-5


def fields_match(stored: np.ndarray, fresh: np.ndarray) -> bool:
    """Same complex field within float32 noise: wrapped phase difference in rad, amplitude relative to its peak."""
    phase_diff_rad = np.abs(np.angle(stored * np.conj(fresh)))
    amplitude_diff = np.abs(np.abs(stored) - np.abs(fresh))
    return (stored.shape == fresh.shape and float(phase_diff_rad.max()) <= SAMPLE_PHASE_TOL_RAD
            and float(amplitude_diff.max()) <= SAMPLE_AMPLITUDE_TOL_REL * float(np.abs(fresh).max()))


def _shipped_sample_fields() -> list[np.ndarray]:
    stored = sorted((REPO / "sample_data").glob("phantom_*.zarr"))
    assert len(stored) == 3
    return [np.asarray(read_field(path).data) for path in stored]


def test_shipped_sample_data_is_what_its_command_regenerates():
    for stored, fresh in zip(_shipped_sample_fields(), make_fields(3, seed=100, size_px=(256, 256)), strict=True):
        assert fields_match(stored, fresh)


def test_sample_data_comparison_catches_another_seed_or_a_small_phase_change():
    stored = _shipped_sample_fields()
    for other, fresh in zip(stored, make_fields(3, seed=101, size_px=(256, 256)), strict=True):
        assert not fields_match(other, fresh)
    shifted = stored[0] * np.exp(1j * np.float32(1e-3) * (np.abs(stored[0]) > 0))  # 1 mrad more phase
    assert not fields_match(shifted.astype(np.complex64), stored[0])
    assert not fields_match(stored[0] * np.float32(1.001), stored[0])  # 0.1 % more amplitude


def test_train_command_runs_all_stages_with_progress_and_resumes(tmp_path, monkeypatch, capsys):
    """The CLI wiring of `dmicro train` end to end (a tiny stand-in for the lff-x64 preset's sizes)."""
    from napari_dmicro.io.checkpoints import read_checkpoint_info

    _tiny_train_preset(monkeypatch, tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lff-x64", "--data", str(tmp_path), "--out", str(out), "--quiet",
                 "--photons", "1e4", "--read-noise", "6"]) == 0
    text = capsys.readouterr().out
    assert "stage 1 (optics)" in text and "test (once, at the end)" in text and "model written" in text
    card = read_checkpoint_info(out / "model.safetensors").card
    assert card["stage"] == "end_to_end" and card["train_config"]["system"]["encoder"]["detector"]["max_photons"] == 1e4
    assert main(["train", "--preset", "lff-x64", "--data", str(tmp_path), "--out", str(out), "--quiet",
                 "--photons", "1e4", "--read-noise", "6", "--resume"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert main(["train", "--preset", "nope", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert "unknown preset" in capsys.readouterr().err



def _tiny_train_preset(monkeypatch, tmp_path, steps=3):
    """A tiny stand-in for the lff-x64 preset's sizes, and four 96² fields in ``tmp_path``."""
    from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
    from napari_dmicro.training import StageConfig, presets
    from napari_dmicro.training.config import DataConfig

    tiny = presets.TrainingPreset(
        name="lff-x64", description="tiny", cpu_minutes=0.1, cpu_decoder="conv-tiny", paper_decoder="conv-tiny",
        encoder=EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=DetectorConfig(compression=16)),
        cpu_stages=(StageConfig(name="optics", steps=steps, batch_size=2, lr=0.1, val_every=steps, select_on="l1"),
                    StageConfig(name="decoder", steps=steps, batch_size=2, lr=1e-3, val_every=steps),
                    StageConfig(name="end_to_end", steps=steps, batch_size=2, lr=1e-4, loss="ssim",
                                val_every=steps)),
        paper_stages=())
    monkeypatch.setitem(presets.PRESETS, "lff-x64", tiny)
    real_config = presets.TrainConfig  # small patches for 96² fields
    monkeypatch.setattr(presets, "TrainConfig", lambda **kw: real_config(
        **{**kw, "data": DataConfig(patch_px=64, val_patches_per_side=1)}))
    for k, field in enumerate(make_fields(4, seed=2, size_px=(96, 96))):
        np.save(tmp_path / f"f{k}.npy", field)


@pytest.mark.parametrize("presses", [1, 2])
def test_train_stopped_by_ctrl_c_names_only_files_that_exist_and_how_to_resume(tmp_path, monkeypatch, capsys,
                                                                             presses):
    import os
    import signal

    from napari_dmicro.training.trainer import Trainer

    _tiny_train_preset(monkeypatch, tmp_path, steps=6)
    real_step = Trainer._train_step

    def step_then_ctrl_c(self, stage, step, *args):
        out = real_step(self, stage, step, *args)
        if step == 3:  # before stage 1's only validation (step 6): no best model exists yet
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "_train_step", step_then_ctrl_c)
    out = tmp_path / "run"
    argv = ["train", "--preset", "lff-x64", "--data", str(tmp_path), "--out", str(out), "--quiet"]
    assert main(argv) == 130
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert not (out / "model.safetensors").exists() and "model.safetensors" not in text.replace(
        "no model.safetensors", "")
    assert "no best model was saved yet, so there is no model.safetensors" in text
    if presses == 1:  # stopped after the step: its weights and state are saved
        assert f"the latest weights are {out / 'last.safetensors'}" in text and "--resume" in text
        assert (out / "last.safetensors").exists() and (out / "train_state.safetensors").exists()
        monkeypatch.setattr(Trainer, "_train_step", real_step)
        assert main([*argv, "--resume"]) == 0
        assert (out / "model.safetensors").exists()
    else:  # aborted inside step 4: nothing was saved yet (periodic saves come every 25 steps)
        assert "aborted without saving" in text and "nothing to resume from was saved" in text
        assert not (out / "last.safetensors").exists()


def test_train_stopped_by_its_time_limit_names_only_files_that_exist(tmp_path, monkeypatch, capsys):
    from napari_dmicro.training.trainer import Trainer

    _tiny_train_preset(monkeypatch, tmp_path)
    real_elapsed = Trainer.invocation_elapsed_s
    monkeypatch.setattr(Trainer, "invocation_elapsed_s", property(lambda self: 3600.0))  # an hour at once
    out = tmp_path / "run"
    argv = ["train", "--preset", "lff-x64", "--data", str(tmp_path), "--out", str(out), "--quiet"]
    assert main([*argv, "--max-minutes", "1"]) == 130
    text = capsys.readouterr().out
    assert "time budget of 1 min reached at step 0" in text
    assert "no best model was saved yet" in text and not (out / "model.safetensors").exists()
    assert f"the latest weights are {out / 'last.safetensors'}" in text and (out / "last.safetensors").exists()
    # the budget limits one invocation: the run resumes with another (or no) limit and finishes
    monkeypatch.setattr(Trainer, "invocation_elapsed_s", real_elapsed)
    assert main([*argv, "--resume", "--max-minutes", "30"]) == 0
    assert (out / "model.safetensors").exists() and "model written to" in capsys.readouterr().out


def test_train_steps_override_replaces_the_budget_length_of_named_stages(capsys):
    import argparse

    from napari_dmicro.cli import parse_stage_steps
    from napari_dmicro.training import train_config

    assert parse_stage_steps("2=800, 3=400") == {2: 800, 3: 400}
    for bad in ("2:800", "4=10", "2=0", "x=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_stage_steps(bad)
    cfg = train_config("lff-x64", stages=(2, 3), steps={2: 800})
    assert [s.steps for s in cfg.stages] == [800, 400]
    paper = train_config("lff-x64", budget="paper", stages=(3,), steps={3: 7})
    assert paper.stages[0].steps == 7 and paper.stages[0].epochs is None
    with pytest.raises(ValueError, match="must name stages that run"):
        train_config("lff-x64", stages=(3,), steps={2: 10})
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "lff-x64", "--data", "x", "--out", "y", "--steps", "2:5"])
    assert exc.value.code == 2 and "stage=steps" in capsys.readouterr().err


def test_train_command_starts_from_designed_optics_and_keeps_them_frozen(tmp_path, monkeypatch):
    from napari_dmicro.io.checkpoints import load_checkpoint, read_checkpoint_info
    from napari_dmicro.optics.designed_filters import AMPLITUDE_TOLERANCE, designed_transmission

    _tiny_train_preset(monkeypatch, tmp_path, steps=2)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lff-x64", "--data", str(tmp_path), "--out", str(out), "--quiet",
                 "--optics-init", "knife_edge", "--stage1-objective", "joint", "--freeze-optics"]) == 0
    card = read_checkpoint_info(out / "model.safetensors").card
    stages = card["train_config"]["stages"]
    assert card["train_config"]["optics_init"] == "knife_edge"
    assert stages[0]["optics_objective"] == "joint" and stages[0]["freeze_optics"] and stages[2]["freeze_optics"]
    model, _ = load_checkpoint(out / "model.safetensors")
    optics = model.encoder.optics
    amp, _ = designed_transmission(optics.config, "knife_edge")
    assert torch.allclose(optics.transmission().abs(), (amp * optics.pupil).float(), atol=AMPLITUDE_TOLERANCE)
