"""The three training stages on tiny data: losses fall, only the intended parameters move, runs resume
exactly, cancel is prompt, splits never leak, and checkpoints carry what a model card needs."""

import json
import threading

import numpy as np
import pytest
import torch

from napari_dmicro.config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.io.checkpoints import CheckpointError, load_checkpoint, read_checkpoint_info
from napari_dmicro.phantoms import make_fields
from napari_dmicro.system import SystemConfig
from napari_dmicro.training import DataConfig, StageConfig, TrainConfig, Trainer, TrainingError
from napari_dmicro.training.data import split_by_field
from napari_dmicro.training.stages import algorithm1_phase


@pytest.fixture(scope="module")
def tiny_data(phantom_folder):
    return phantom_folder(7)


def _lff_config(stages, noisy=False, per_side=1, **kw):
    det = DetectorConfig(compression=16, **({"max_photons": 1e4, "read_noise_e": 2.0} if noisy else {}))
    enc = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=det)
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 4))
    data = DataConfig(patch_px=64, val_patches_per_side=per_side)
    return TrainConfig(system=system, stages=stages, data=data, checkpoint_every_steps=3, **kw)


def _validation(events, key):
    return [e.metrics[key] for e in events if e.kind == "validation"]


def _run(cfg, data, out, **kw):
    return list(Trainer(cfg, data, out, **kw).run())


def _losses(events, stage):
    return [e.loss for e in events if e.kind == "step" and e.stage == stage]


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_stage1_lowers_the_optical_loss_and_touches_only_the_optics(tiny_data, tmp_path):
    cfg = _lff_config((StageConfig(name="optics", steps=30, batch_size=4, lr=0.1, val_every=30,
                                   select_on="l1"),))
    trainer = Trainer(cfg, tiny_data, tmp_path / "run")
    events = iter(trainer.run())
    next(events)  # start: the model now exists
    before = _snapshot(trainer.model)
    rest = list(events)
    losses = _losses(rest, "optics")
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("encoder.") for k in changed)
    assert any(k.startswith("encoder.optics.phase_rad") for k in changed)


def test_stage2_lowers_l1_with_noise_and_keeps_the_optics_fixed(tiny_data, tmp_path):
    cfg = _lff_config((StageConfig(name="decoder", steps=40, batch_size=4, lr=3e-3, val_every=40),),
                      noisy=True, per_side=2)
    trainer = Trainer(cfg, tiny_data, tmp_path / "run")
    events = iter(trainer.run())
    next(events)
    before = _snapshot(trainer.model)
    rest = list(events)
    l1 = _validation(rest, "l1")  # on fixed validation patches: before training and after 40 steps
    assert len(l1) == 2 and l1[-1] < 0.8 * l1[0]
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("decoder.") or k in ("meas_offset", "meas_scale") for k in changed)
    # the fresh decoder's input is normalised by the training measurements' statistics
    pool = trainer.stage.pool.all_measurements()
    assert float(trainer.model.meas_offset) == pytest.approx(float(pool.mean()), rel=1e-5)
    assert float(trainer.model.meas_scale) == pytest.approx(float(pool.std()), rel=1e-5)


def test_stage2_with_perceptual_and_adversarial_terms_trains_the_discriminator(tiny_data, tmp_path):
    cfg = _lff_config((StageConfig(name="decoder", steps=2, batch_size=2, lr=1e-3, val_every=2,
                                   loss="l1_perceptual_adversarial", perceptual_weight=1.0,
                                   adversarial_weight=0.1),))
    events = _run(cfg, tiny_data, tmp_path / "run")
    steps = [e for e in events if e.kind == "step"]
    assert {"discriminator"} <= set(steps[-1].terms) and len(steps[-1].terms) >= 3
    card = read_checkpoint_info(tmp_path / "run" / "model.safetensors").card
    assert "substitute" in (card["perceptual_source"] or "").lower()


def test_stage3_minimises_negative_ssim_end_to_end(tiny_data, tmp_path):
    cfg = _lff_config((StageConfig(name="end_to_end", steps=30, batch_size=4, lr=3e-3, optics_lr=1e-2,
                                   loss="ssim", val_every=30, select_on="ssim"),), noisy=True, per_side=2)
    trainer = Trainer(cfg, tiny_data, tmp_path / "run")
    events = iter(trainer.run())
    next(events)
    before = _snapshot(trainer.model)
    rest = list(events)
    ssim = _validation(rest, "ssim")
    assert len(ssim) == 2 and ssim[-1] > ssim[0] + 0.05
    after = trainer.model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder", "decoder"}


def test_stage3_can_keep_a_built_microscope_fixed(tiny_data, tmp_path):
    cfg = _lff_config((StageConfig(name="end_to_end", steps=3, batch_size=2, lr=1e-3, loss="ssim",
                                   val_every=3, freeze_optics=True),))
    trainer = Trainer(cfg, tiny_data, tmp_path / "run")
    events = iter(trainer.run())
    next(events)
    before = _snapshot(trainer.model.encoder)
    list(events)
    assert all(torch.equal(before[k], v) for k, v in trainer.model.encoder.state_dict().items())


def _three_stages():
    return (StageConfig(name="optics", steps=4, batch_size=2, lr=0.1, val_every=4, select_on="l1"),
            StageConfig(name="decoder", steps=7, batch_size=2, lr=1e-3, val_every=4),
            StageConfig(name="end_to_end", steps=5, batch_size=2, lr=1e-4, optics_lr=1e-3, loss="l1_ssim",
                        val_every=5))


def test_resume_after_cancel_or_kill_continues_the_same_run(tiny_data, tmp_path):
    cfg = _lff_config(_three_stages(), noisy=True)
    _run(cfg, tiny_data, tmp_path / "straight")
    reference = load_checkpoint(tmp_path / "straight" / "model.safetensors")[0].state_dict()

    # cancel in the middle of stage 2: takes effect at the next step and keeps the best model
    cancel = threading.Event()
    trainer = Trainer(cfg, tiny_data, tmp_path / "cancelled", cancel=cancel)
    seen = []
    for event in trainer.run():
        seen.append(event)
        if event.kind == "step" and event.stage == "decoder" and event.step == 2:
            cancel.set()
    assert seen[-1].kind == "cancelled"
    assert [e.kind for e in seen[-2:]] == ["step", "cancelled"]
    assert (tmp_path / "cancelled" / "model.safetensors").exists()
    with pytest.raises(TrainingError, match="--resume"):
        _run(cfg, tiny_data, tmp_path / "cancelled")
    _run(cfg, tiny_data, tmp_path / "cancelled", resume=True)
    resumed = load_checkpoint(tmp_path / "cancelled" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)

    # a killed process: the generator simply stops (no cancel, nothing saved beyond the periodic state)
    gen = Trainer(cfg, tiny_data, tmp_path / "killed").run()
    for event in gen:
        if event.kind == "step" and event.stage == "end_to_end" and event.step == 2:
            break
    del gen
    _run(cfg, tiny_data, tmp_path / "killed", resume=True)
    killed = load_checkpoint(tmp_path / "killed" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(reference[k], killed[k]) for k in reference)


def _cancel_at(cfg, data, out, step, **kw):
    cancel = threading.Event()
    events = []
    for event in Trainer(cfg, data, out, cancel=cancel, **kw).run():
        events.append(event)
        if event.kind == "step" and event.step == step:
            cancel.set()
    assert events[-1].kind == "cancelled"
    return events


def test_resume_refuses_a_training_state_that_belongs_to_other_weights(tiny_data, tmp_path):
    import shutil

    cfg = _lff_config((StageConfig(name="optics", steps=12, batch_size=2, lr=0.1, val_every=12,
                                   select_on="l1"),))
    run = tmp_path / "run"
    _cancel_at(cfg, tiny_data, run, 4)
    shutil.copyfile(run / "train_state.safetensors", tmp_path / "state_at_step_4.safetensors")
    _cancel_at(cfg, tiny_data, run, 8, resume=True)  # a normal cancel + resume works
    # the state of step 4 beside the weights of step 8 (e.g. files restored from two backups)
    shutil.copyfile(tmp_path / "state_at_step_4.safetensors", run / "train_state.safetensors")
    with pytest.raises(TrainingError, match=r"run folder .*run is inconsistent: train_state\.safetensors "
                                            r"\(stage 1, step 4\) belongs to other weights.*new --out"):
        _run(cfg, tiny_data, run, resume=True)
    (run / "last.safetensors").unlink()
    with pytest.raises(TrainingError, match="last.safetensors is missing"):
        _run(cfg, tiny_data, run, resume=True)


def test_resume_refuses_other_options_and_finished_runs_report_done(tiny_data, tmp_path):
    cfg = _lff_config(_three_stages()[:1])
    _run(cfg, tiny_data, tmp_path / "run")
    other = _lff_config(_three_stages()[:1], seed=5)
    with pytest.raises(TrainingError, match="different configuration"):
        _run(other, tiny_data, tmp_path / "run", resume=True)
    events = _run(cfg, tiny_data, tmp_path / "run", resume=True)
    assert events[-1].kind == "done" and "already finished" in events[-1].message


def test_cards_record_data_splits_and_test_metrics_once(tiny_data, tmp_path):
    cfg = _lff_config(_three_stages())
    events = _run(cfg, tiny_data, tmp_path / "run", command="dmicro train …")
    assert [e.kind for e in events].count("test") == 1
    card = read_checkpoint_info(tmp_path / "run" / "model.safetensors").card
    splits = card["data"]["splits"]
    assert not set(splits["train"]) & set(splits["val"]) and not set(splits["train"]) & set(splits["test"])
    assert len(splits["train"]) + len(splits["val"]) + len(splits["test"]) == 7
    assert len(card["data"]["fingerprint"]) == 64 and card["command"] == "dmicro train …"
    assert {"psnr_db", "ssim", "optical_psnr_db"} <= set(card["test"])
    assert card["validation"]["psnr_db"] > 0 and card["stage"] == "end_to_end"
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["splits"] == splits
    # each stage's best model is kept: stage 1 alone is the all-optical baseline
    stage1 = load_checkpoint(tmp_path / "run" / "stage1_optics.safetensors")[0]
    final = load_checkpoint(tmp_path / "run" / "model.safetensors")[0]
    assert read_checkpoint_info(tmp_path / "run" / "stage1_optics.safetensors").card["stage"] == "optics"
    assert (tmp_path / "run" / "stage2_decoder.safetensors").exists()
    stage3 = load_checkpoint(tmp_path / "run" / "stage3_end_to_end.safetensors")[0]
    assert all(torch.equal(a, b)
               for a, b in zip(stage3.state_dict().values(), final.state_dict().values(), strict=True))
    assert not torch.equal(stage1.decoder.state_dict()[next(iter(stage1.decoder.state_dict()))],
                           final.decoder.state_dict()[next(iter(final.decoder.state_dict()))])


def test_split_is_by_field_of_view_and_seeded(tmp_path):
    paths = [tmp_path / f"f{k}.npy" for k in range(20)]
    a = split_by_field(paths, 0.1, 0.1, seed=0)
    assert [len(a[k]) for k in ("train", "val", "test")] == [16, 2, 2]
    assert a == split_by_field(paths, 0.1, 0.1, seed=0) and a != split_by_field(paths, 0.1, 0.1, seed=1)
    assert not set(a["val"]) & set(a["test"])


def test_algorithm1_visits_each_layer_alone_then_jointly():
    phases = [algorithm1_phase(s, 90, 5) for s in range(90)]
    order = list(dict.fromkeys(phases))
    assert order == [(1, False), (2, False), (2, True), (3, False), (3, True), (4, False), (4, True),
                     (5, False), (5, True)]


def test_progressive_d2nn_stage1_changes_only_the_active_layer(tiny_data, tmp_path):
    det = DetectorConfig(compression=16)
    enc = EncoderConfig(optics=DiffractiveConfig(n_layers=2, n_neurons=64, pad_factor=2), detector=det)
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 4))
    stage = StageConfig(name="optics", steps=3, batch_size=2, lr=0.05, val_every=3, select_on="l1",
                        progressive_layers=True)  # 3 sub-steps: layer 1, layer 2, layers 1+2
    cfg = TrainConfig(system=system, stages=(stage,), data=DataConfig(patch_px=64, val_patches_per_side=1))
    trainer = Trainer(cfg, tiny_data, tmp_path / "run")
    events = trainer.run()
    snapshots = []
    for event in events:
        if event.kind == "start":
            snapshots.append(_snapshot(trainer.model.encoder.optics))
        if event.kind == "step":
            snapshots.append(_snapshot(trainer.model.encoder.optics))
    first, after1 = snapshots[0], snapshots[1]
    assert not torch.equal(first["phase_rad"][0], after1["phase_rad"][0])
    assert torch.equal(first["phase_rad"][1], after1["phase_rad"][1])  # layer 2 untouched while layer 1 trains
    assert not torch.equal(first["power_logit"][0], after1["power_logit"][0])
    assert torch.equal(first["power_logit"][1], after1["power_logit"][1])
    after2 = snapshots[2]
    assert torch.equal(after1["phase_rad"][0], after2["phase_rad"][0])  # layer 1 frozen while layer 2 trains
    assert not torch.equal(after1["phase_rad"][1], after2["phase_rad"][1])


def test_init_from_a_pickle_is_refused_and_from_another_compression_too(tiny_data, tmp_path):
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    cfg = _lff_config(_three_stages()[1:2], init=str(bad))
    with pytest.raises(CheckpointError, match="never unpickles"):
        _run(cfg, tiny_data, tmp_path / "run")
    _run(_lff_config(_three_stages()[:1]), tiny_data, tmp_path / "x16")
    det = DetectorConfig(compression=64)
    enc = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=det)
    other = TrainConfig(system=SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 8)),
                        stages=_three_stages()[1:2], data=DataConfig(patch_px=64, val_patches_per_side=1),
                        init=str(tmp_path / "x16" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="compression x16 vs x64"):
        _run(other, tiny_data, tmp_path / "run2")


def test_too_few_fields_for_a_split_is_a_clear_error(tmp_path):
    for k, field in enumerate(make_fields(2, seed=1, size_px=(96, 96))):
        np.save(tmp_path / f"f{k}.npy", field)
    with pytest.raises(TrainingError, match="at least 3"):
        _run(_lff_config(_three_stages()[:1]), tmp_path, tmp_path / "run")


@pytest.mark.parametrize("preset", ["lff-x64", "lff-x256", "d2nn-x64"])
def test_presets_build_both_budgets_with_the_papers_schedule(preset):
    from napari_dmicro.training import train_config

    cpu = train_config(preset, budget="cpu")
    paper = train_config(preset, budget="paper", max_photons=1e4, read_noise_e=6.0)
    assert [s.name for s in cpu.stages] == [s.name for s in paper.stages] == ["optics", "decoder", "end_to_end"]
    assert paper.system.decoder.embed_dim == 180 and paper.system.decoder.depths == (6,) * 6
    assert paper.system.decoder.upsampler == "pixelshuffle" and cpu.system.decoder.upsampler == "pixelshuffledirect"
    assert paper.system.encoder.detector.max_photons == 1e4 and paper.system.encoder.detector.read_noise_e == 6.0
    optics, decoder, end = paper.stages
    assert optics.batch_size == decoder.batch_size == end.batch_size == 32
    assert decoder.perceptual_weight == 1.0 and decoder.adversarial_weight == 0.1 and decoder.lr == 1e-4
    assert end.loss == "ssim" and end.lr == end.optics_lr == 5e-6
    # epochs resolve to steps on the paper's 401 training fields: 12 steps per epoch (drop_last)
    assert end.total_steps(401) == (24000 if preset.startswith("lff") else 3000) * 12
    if preset.startswith("lff"):
        assert optics.lr == 0.1 and optics.total_steps(401) == 1500 * 12
        assert [round(m * 1500) for m in optics.milestones] == [50, 400, 650, 1000, 1400]
    else:
        assert optics.progressive_layers and optics.lr == 1e-3 and optics.joint_lr == 5e-5
    assert cpu.stages[1].perceptual_weight == 0 and cpu.stages[1].loss == "l1"


def test_algorithm1_validates_the_active_layers_and_selects_only_the_complete_network(tiny_data, tmp_path):
    det = DetectorConfig(compression=16)
    enc = EncoderConfig(optics=DiffractiveConfig(n_layers=2, n_neurons=64, pad_factor=2), detector=det)
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 4))
    stage = StageConfig(name="optics", steps=6, batch_size=2, lr=0.05, val_every=2, select_on="l1",
                        progressive_layers=True)  # sub-steps: layer 1 (steps 1-2), layer 2 (3-4), joint (5-6)
    cfg = TrainConfig(system=system, stages=(stage,), data=DataConfig(patch_px=64, val_patches_per_side=1))
    vals = [e for e in _run(cfg, tiny_data, tmp_path / "run") if e.kind == "validation"]
    assert [v.metrics["active_layers"] for v in vals] == [1, 2, 2]
    assert vals[0].metrics["improved"] is False  # one layer is not the network the run delivers
    card = read_checkpoint_info(tmp_path / "run" / "model.safetensors").card
    assert card["validation"]["active_layers"] == 2


def test_a_new_decoder_trains_on_a_built_microscope_keeping_its_optics(tiny_data, tmp_path):
    _run(_lff_config(_three_stages()[:2]), tiny_data, tmp_path / "built")
    built, _ = load_checkpoint(tmp_path / "built" / "model.safetensors")
    # the same architecture but another decoder is refused unless a new decoder is asked for
    base = _lff_config(_three_stages()[1:2], init=str(tmp_path / "built" / "model.safetensors"))
    other = base.system.model_copy(update={"decoder": decoder_config("conv-tiny", 4, width=8)})
    with pytest.raises(TrainingError, match="pass --decoder"):
        _run(base.model_copy(update={"system": other}), tiny_data, tmp_path / "refused")
    events = _run(base.model_copy(update={"system": other, "init_decoder": False}), tiny_data, tmp_path / "new")
    assert events[-1].kind == "done"
    new, info = load_checkpoint(tmp_path / "new" / "model.safetensors")
    assert info.config.decoder.width == 8
    for k, v in built.encoder.state_dict().items():  # stage 2 never moves the optics
        assert torch.equal(new.encoder.state_dict()[k], v), k
    # its decoder input normalisation was fitted to the measurements, not left at the identity
    assert float(new.meas_scale) != 1.0
    stage3_only = {**base.model_dump(), "init_decoder": False,
                   "stages": [s.model_dump() for s in _three_stages()[2:]]}
    with pytest.raises(ValueError, match="include stage 2"):
        TrainConfig.model_validate(stage3_only)


def test_train_config_decoder_option_keeps_only_the_init_optics():
    from napari_dmicro.training import train_config

    cfg = train_config("d2nn-x64", stages=(2,), init="d2nn-x64", decoder="conv")
    assert cfg.system.decoder.family == "conv" and cfg.init_decoder is False and cfg.init == "d2nn-x64"
    assert train_config("d2nn-x64", stages=(2,), init="d2nn-x64").init_decoder is True
    with pytest.raises(KeyError, match="unknown decoder"):
        train_config("lff-x64", decoder="no-such-decoder")


def test_the_engine_counts_epochs_in_its_step_events(tiny_data, tmp_path):
    """An epoch is one patch from every training field: 5 training fields at batch 2 → 2 steps per epoch."""
    cfg = _lff_config((StageConfig(name="optics", epochs=2, batch_size=2, lr=0.1, val_every=10,
                                   select_on="l1"),))
    steps = [e for e in _run(cfg, tiny_data, tmp_path / "run") if e.kind == "step"]
    assert [(e.epoch, e.epochs, e.epoch_step, e.steps_per_epoch) for e in steps] == [
        (1, 2, 1, 2), (1, 2, 2, 2), (2, 2, 1, 2), (2, 2, 2, 2)]
    assert "epoch 2/2" in steps[-1].describe()
