"""Optics that learn: designed starts, the joint stage-1 objective, frozen designed optics, and the
optics report (how far the optics moved, how much light they pass)."""

import json

import pytest
import torch

from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.optics.designed_filters import AMPLITUDE_TOLERANCE, designed_transmission
from napari_dmicro.optics.report import light_throughput, optics_movement
from napari_dmicro.pretrained import describe_model
from napari_dmicro.system import SystemConfig
from napari_dmicro.training import DataConfig, StageConfig, TrainConfig, Trainer
from napari_dmicro.training.initial import initial_microscope
from napari_dmicro.training.presets import PRESETS, train_config


@pytest.fixture(scope="module")
def tiny_data(phantom_folder):
    return phantom_folder(7)


def _config(stage1: StageConfig, **kw) -> TrainConfig:
    enc = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=DetectorConfig(compression=16))
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-dilated-tiny", 4))
    return TrainConfig(system=system, stages=(stage1,), data=DataConfig(patch_px=64, val_patches_per_side=1),
                       checkpoint_every_steps=50, **kw)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _moved(before, module) -> float:
    return max(float((a - b.detach()).abs().max()) for a, b in zip(before, module.parameters(), strict=True))


def test_existing_presets_keep_their_stages_and_random_optics():
    for name in ("lff-x64", "lff-x256", "d2nn-x64"):
        cfg = train_config(name)
        assert cfg.optics_init == "random"
        assert cfg.stages == PRESETS[name].cpu_stages
        assert all(s.optics_objective == "phase_intensity" and s.optics_lr_scale == 1 for s in cfg.stages)


def test_a_run_starts_from_the_designed_optics_it_names():
    cfg = train_config("lff-x64-v2")
    assert cfg.optics_init == "dpc" and cfg.system.decoder.family == "dilated"
    model = initial_microscope(cfg.system, cfg.seed, cfg.optics_init)
    optics = model.encoder.optics
    amp, _ = designed_transmission(optics.config, "dpc")
    assert torch.allclose(optics.transmission().abs(), (amp * optics.pupil).float(), atol=AMPLITUDE_TOLERANCE)
    assert train_config("lff-x64", optics_init="zernike").optics_init == "zernike"


def test_joint_stage1_trains_optics_and_decoder_together(tiny_data, tmp_path):
    stage = StageConfig(name="optics", steps=4, batch_size=2, lr=1e-3, optics_lr=0.05, optics_objective="joint",
                        val_every=4, select_on="psnr")
    trainer = Trainer(_config(stage, optics_init="knife_edge"), tiny_data, tmp_path / "run")
    events = trainer.run()
    next(events)
    optics, decoder = _params(trainer.model.encoder), _params(trainer.model.decoder)
    rest = list(events)
    assert _moved(optics, trainer.model.encoder) > 1e-3
    assert _moved(decoder, trainer.model.decoder) > 1e-5
    assert float(trainer.model.meas_scale) != 1.0  # the new decoder's input was normalised first
    validation = [e.metrics for e in rest if e.kind == "validation"]
    assert validation and "psnr_db" in validation[-1]  # the decoder's output is what is selected
    card = json.loads(json.dumps(read_card(tmp_path / "run")))
    assert card["train_config"]["optics_init"] == "knife_edge"
    report = card["optics_report"]  # the finished model's card says how far its optics moved
    assert report["init"] == "knife_edge (seed 0)" and 0 < report["mean_abs_damplitude"]
    lines = describe_model(trainer.model.config, card)
    assert any("knife_edge (seed 0) initialisation" in line for line in lines)
    assert any("light throughput" in line for line in lines)


def read_card(run):
    from napari_dmicro.io.checkpoints import read_checkpoint_info

    return read_checkpoint_info(run / "model.safetensors").card


def test_frozen_designed_optics_stay_exactly_designed_in_a_joint_stage1(tiny_data, tmp_path):
    stage = StageConfig(name="optics", steps=2, batch_size=2, lr=1e-3, optics_objective="joint",
                        freeze_optics=True, val_every=2, select_on="psnr")
    trainer = Trainer(_config(stage, optics_init="zernike"), tiny_data, tmp_path / "run")
    events = trainer.run()
    next(events)
    optics, decoder = _params(trainer.model.encoder), _params(trainer.model.decoder)
    list(events)
    assert _moved(optics, trainer.model.encoder) == 0
    assert _moved(decoder, trainer.model.decoder) > 0


def test_train_config_freezes_a_joint_stage1_and_refuses_a_frozen_optics_only_stage1():
    cfg = train_config("lff-x64", optics_objective="joint", freeze_optics=True, optics_init="knife_edge")
    assert cfg.stages[0].freeze_optics and cfg.stages[0].optics_objective == "joint"
    assert cfg.stages[0].optics_lr == 0.1 and cfg.stages[0].lr == 1e-3  # the optics keep the preset's rate
    assert cfg.stages[2].freeze_optics
    with pytest.raises(ValueError, match="stages 2,3"):
        StageConfig(name="optics", steps=1, batch_size=1, lr=0.1, freeze_optics=True)


def test_optics_report_measures_movement_and_throughput():
    system = train_config("lff-x64").system
    start = initial_microscope(system, 0)
    same = optics_movement(start, initial_microscope(system, 0))
    assert same["phase_corr"] == pytest.approx(1.0) and same["mean_abs_dphase_rad"] == 0
    moved = initial_microscope(system, 0)
    with torch.no_grad():
        moved.encoder.optics.phase_rad.add_(0.3)
    m = optics_movement(moved, start)
    assert m["mean_abs_dphase_rad"] == pytest.approx(0.3, abs=1e-5)
    assert m["mean_abs_dphase_above_na_rad"] == pytest.approx(0.3, abs=1e-5)
    # a blank field through the filter: only the DC bin passes, |t(0)|² of the light
    optics = start.encoder.optics
    dc = optics.transmission().detach()[optics.config.filter_size_px // 2, optics.config.filter_size_px // 2]
    assert light_throughput(start.encoder) == pytest.approx(float(dc.abs() ** 2), rel=1e-3)
    all_pass = initial_microscope(system, 0, "all_pass")
    assert light_throughput(all_pass.encoder) == pytest.approx(1.0, abs=1e-4)


def test_optics_gradient_smoothing_spreads_a_bins_evidence_to_its_neighbours_and_keeps_its_sum():
    from napari_dmicro.training.stages import smooth_optics_gradients

    system = train_config("lff-x64").system
    model = initial_microscope(system, 0)
    phase = model.encoder.optics.phase_rad
    grad = torch.zeros_like(phase)
    grad[128, 100] = 1.0
    phase.grad = grad.clone()
    smooth_optics_gradients(model, 0.0)
    assert torch.equal(phase.grad, grad)  # off: untouched
    smooth_optics_gradients(model, 2.0)
    g = phase.grad
    assert float(g.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(g[128, 100]) == pytest.approx(1 / (2 * torch.pi * 4), rel=0.02)  # 2-D Gaussian peak, σ 2
    assert float(g[128, 102]) / float(g[128, 100]) == pytest.approx(float(torch.exp(torch.tensor(-0.5))), rel=0.02)
    with pytest.raises(ValueError, match="stages 1 and 3"):
        StageConfig(name="decoder", steps=1, batch_size=1, lr=1e-3, optics_grad_smoothing_px=2)


def test_the_d2nn_v2_recipe_starts_from_flat_layers_and_trains_them_jointly():
    cfg = train_config("d2nn-x64-v2")
    assert cfg.optics_init == "all_pass" and cfg.system.encoder.detector.flat_field
    assert cfg.stages[0].optics_objective == "joint" and not cfg.stages[0].progressive_layers
    model = initial_microscope(cfg.system, cfg.seed, cfg.optics_init)
    phases = [p for n, p in model.encoder.optics.named_parameters() if "power" not in n]
    assert phases and all(float(p.detach().abs().max()) == 0.0 for p in phases)  # flat: free space only
