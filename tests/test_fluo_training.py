"""Training the fluorescence microscope with the one Trainer: stages, presets, data splits, binary evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dmicro.io.checkpoints import load_checkpoint
from napari_dmicro.system import FluorescenceMicroscope


def _write_fields(folder, count, size_px, seed=3):
    from napari_dmicro.io.store import write_fluorescence
    from napari_dmicro.phantoms.fluorescence import make_fluorescence_field

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        f = make_fluorescence_field(seed, k, size_px=size_px, style="confluent")
        write_fluorescence(folder / f"nuclei_{k:04d}.zarr", f.image * 5.0 + 0.2, f.labels,
                           pixel_size_um=f.pixel_size_um, emission_wavelength_um=0.52)
    return folder


@pytest.fixture(scope="module")
def fluo_fields(tmp_path_factory):
    return _write_fields(tmp_path_factory.mktemp("fluo") / "fields", 5, 128)


def _tiny_config(stages=(1,), seg=False, **kw):
    from napari_dmicro.training import train_config
    from napari_dmicro.training.config import DataConfig

    preset = "fluo-seg-x256" if seg else "fluo-x64"
    steps = {s: n for s, n in {1: 120, 2: 6, 3: 6}.items() if s in stages}
    return train_config(preset, stages=stages, steps=steps, decoder="locality-seg" if seg else "locality-tiny",
                        data=DataConfig(patch_px=64), **kw)


def test_config_and_preset_rules():
    from napari_dmicro.training import train_config
    from napari_dmicro.training.config import StageConfig
    from napari_dmicro.training.presets import PRESETS

    for name, bin_px in (("fluo-x4", 4), ("fluo-x16", 8), ("fluo-x64", 16), ("fluo-x256", 32),
                         ("fluo-x1024", 64), ("fluo-seg-x256", 32), ("fluo-seg-x1024", 64)):
        cfg = train_config(name)
        assert cfg.system.encoder.detector.bin_px == bin_px and cfg.system.encoder.patterns.n_patterns == 4
        assert cfg.system.compression == bin_px ** 2 / 4 == int(name.rsplit("x", 1)[1])
        assert cfg.system.encoder.patterns.learnable and cfg.optics_init == "random"
        assert [s.name for s in cfg.stages] == (["reconstruct", "seg_head", "seg_joint"] if "seg" in name
                                                else ["reconstruct"])
        assert PRESETS[name].cpu_minutes <= 40
        # every compression has the same network: the refinement at 1/8 of the side whatever the bin
        assert cfg.system.decoder.model_copy(update={"upscale": 16}) == train_config(
            "fluo-seg-x256" if "seg" in name else "fluo-x64").system.decoder.model_copy(update={"upscale": 16})
    assert PRESETS["fluo-x4"].cpu_minutes <= 15 and PRESETS["fluo-x16"].cpu_minutes <= 15  # short: the curve
    # the full-resolution reference: the same locality-seg network fed one widefield frame on an unbinned camera
    full, seg = train_config("fluo-seg-full"), train_config("fluo-seg-x256")
    enc = full.system.encoder
    assert (enc.detector.bin_px, enc.patterns.n_patterns, enc.patterns.init) == (1, 1, "uniform")
    assert not enc.patterns.learnable and full.system.compression == 1 and full.optics_init == "uniform"
    assert full.system.decoder.model_copy(update={"in_chans": 4, "upscale": 32}) == seg.system.decoder
    # equal dose: one frame at T× the photons delivers what the T patterns deliver (each set: Σ_t mean = T·0.5)
    assert enc.detector.photons_per_unit * 1 * 0.5 == seg.system.encoder.detector.photons_per_unit * 4 * 0.5
    assert enc.detector.read_noise_e == seg.system.encoder.detector.read_noise_e
    # equal decoder budget: fluo-seg-x256's stages, with the patterns fixed (nothing to learn at one pixel)
    assert [(s.name, s.steps, s.batch_size, s.lr) for s in full.stages] == [
        (s.name, s.steps, s.batch_size, s.lr) for s in seg.stages]
    assert all(s.freeze_optics and s.sharpness is None for s in full.stages if s.name != "seg_head")
    assert full.data == seg.data
    frozen = train_config("fluo-x64", optics_init="hadamard", freeze_optics=True)
    assert frozen.system.encoder.patterns.init == "hadamard" and frozen.stages[0].freeze_optics
    assert train_config("fluo-x64", max_photons=1e3).system.encoder.detector.photons_per_unit == 1e3
    with pytest.raises(ValueError, match="random, hadamard or uniform"):
        train_config("fluo-x64", optics_init="dpc")
    with pytest.raises(ValueError, match="only become sharper"):
        StageConfig(name="reconstruct", steps=1, batch_size=1, lr=1e-3, sharpness=(8.0, 2.0))
    with pytest.raises(ValueError, match="do not belong"):
        type(frozen)(system=frozen.system, stages=(StageConfig(name="decoder", steps=1, batch_size=1, lr=1e-3),),
                     optics_init="hadamard")


def test_tiny_training_learns_patterns_validates_binary_and_round_trips(fluo_fields, tmp_path, monkeypatch):
    from napari_dmicro.fluorescence.patterns import IlluminationPatterns
    from napari_dmicro.training import Trainer
    from napari_dmicro.training.fluo_data import evaluate_fluorescence

    eval_patterns = []
    original = IlluminationPatterns.forward

    def spy(self, binary):
        out = original(self, binary)
        if not self.training:  # every measurement of validation and test runs in eval mode
            eval_patterns.append((binary, out.detach().clone()))
        return out

    monkeypatch.setattr(IlluminationPatterns, "forward", spy)
    torch.set_num_threads(1)
    config = _tiny_config()
    trainer = Trainer(config, fluo_fields, tmp_path / "run")
    events = list(trainer.run())
    losses = [e.loss for e in events if e.kind == "step"]
    vals = [e.metrics for e in events if e.kind == "validation"]
    assert len(losses) == 120 and np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10])
    assert vals[-1]["l1"] < vals[0]["l1"] and vals[0]["patterns"] == "binary"
    assert vals[0]["noise"] == "exact"
    # every pattern set used in evaluation is exactly {0, 1}·exposure
    assert eval_patterns and all(binary for binary, _ in eval_patterns)
    for _, pats in eval_patterns:
        values = torch.unique(pats)
        assert len(values) == 2 and float(values[0]) == 0.0
        assert abs(float(pats.mean(dim=(-2, -1)).sum()) - 0.5 * 4) < 1e-4  # equal dose: T·0.5
    # the patterns moved from their random start; the sharpness only rose
    final = trainer.model.encoder.illumination.logits.detach()
    from napari_dmicro.training.initial import initial_microscope

    start = initial_microscope(config.system, config.seed).encoder.illumination.logits
    assert float((final - start.detach()).abs().mean()) > 1e-3
    sharp = [e.terms["sharpness"] for e in events if e.kind == "step"]
    assert all(b >= a for a, b in zip(sharp, sharp[1:], strict=False)) and sharp[-1] > sharp[0]
    # the run recorded the patterns it started from; the card measures the movement against them
    import json

    from napari_dmicro.pretrained import unpack_patterns

    recorded = unpack_patterns(json.loads((tmp_path / "run" / "initial_patterns.json").read_text()))
    assert torch.equal(recorded, (start > 0).float())
    # the written model round-trips and scores what its card says on the test field
    model, info = load_checkpoint(tmp_path / "run" / "model.safetensors")
    report = info.card["optics_report"]
    assert report["init_source"] == "recorded at the start of the run"
    assert torch.equal(unpack_patterns(info.card["initial_patterns"]), recorded)
    final_binary = model.encoder.illumination.transmission(True)
    assert report["mirrors_flipped_fraction"] == pytest.approx(float((final_binary != recorded).float().mean()))
    assert report["duty_cycle"] == pytest.approx(float(final_binary.mean()))
    assert report["photons_per_pixel_per_acquisition"] == pytest.approx(100.0 * 4 * 0.5, rel=1e-5)
    assert isinstance(model, FluorescenceMicroscope) and info.config == config.system
    test = evaluate_fluorescence(model, trainer.test_set, config.seed, "cpu")
    assert abs(test["psnr_db"] - info.card["test"]["psnr_db"]) < 1e-3
    assert info.card["optics_report"]["init"].startswith("random")
    # splits are disjoint fields, every field used once
    splits = info.card["data"]["splits"]
    names = [n for v in splits.values() for n in v]
    assert len(names) == len(set(names)) == 5


def test_task_aware_steps_train_the_head_and_report_dice(fluo_fields, tmp_path, monkeypatch):
    import json

    import napari_dmicro.training.fluo_data as F
    from napari_dmicro.training import Trainer

    evaluated = []
    original = F.evaluate_fluorescence

    def spy(model, data, *args, **kwargs):
        evaluated.append(data)
        return original(model, data, *args, **kwargs)

    monkeypatch.setattr(F, "evaluate_fluorescence", spy)
    torch.set_num_threads(1)
    config = _tiny_config(stages=(1, 2, 3), seg=True)
    config = config.model_copy(update={"stages": tuple(s.model_copy(update={"steps": 4 if s.name == "reconstruct"
                                                                             else s.steps}) for s in config.stages)})
    trainer = Trainer(config, fluo_fields, tmp_path / "seg")
    events = list(trainer.run())
    # the authors' scripts never evaluated their test split: ours evaluates it exactly once, after every stage,
    # and model selection only ever sees the validation fields; the event log and the card record it
    kinds = [e.kind for e in events]
    assert kinds.count("test") == 1 and kinds.index("test") > max(i for i, k in enumerate(kinds) if k == "stage_end")
    assert evaluated[-1] is trainer.test_set and all(d is trainer.val_set for d in evaluated[:-1])
    assert len(evaluated) == kinds.count("validation") + 1
    logged = [json.loads(line)["kind"] for line in (tmp_path / "seg" / "events.jsonl").read_text().splitlines()]
    assert logged.count("test") == 1 and logged[-2:] == ["test", "done"]
    card = load_checkpoint(tmp_path / "seg" / "model.safetensors")[1].card
    assert card["test"]["dice"] == [e.metrics for e in events if e.kind == "test"][0]["dice"]
    assert card["test_protocol"].endswith("evaluated once")
    stage_vals = {e.stage: e.metrics for e in events if e.kind == "validation"}
    assert "dice" in stage_vals["seg_head"] and 0 <= stage_vals["seg_joint"]["f1"] <= 1
    test = [e.metrics for e in events if e.kind == "test"][0]
    assert 0 <= test["dice"] <= 1 and 0 <= test["f1"] <= 1
    # step 2 trains the head alone: patterns and reconstruction network as after step 1
    one, _ = load_checkpoint(tmp_path / "seg" / "stage1_reconstruct.safetensors")
    two, _ = load_checkpoint(tmp_path / "seg" / "stage2_seg_head.safetensors")
    s1, s2 = one.state_dict(), two.state_dict()
    head = [k for k in s1 if k.startswith("decoder.seg.")]
    assert head and any(not torch.equal(s1[k], s2[k]) for k in head)
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if k not in head)


def test_cli_trains_a_fluorescence_preset_with_frozen_hadamard_patterns(tmp_path):
    from napari_dmicro.cli import main
    from napari_dmicro.fluorescence import hadamard_patterns

    data = _write_fields(tmp_path / "fields", 5, 256, seed=5)
    out = tmp_path / "run"
    code = main(["train", "--preset", "fluo-x64", "--data", str(data), "--out", str(out), "--steps", "1=3",
                 "--decoder", "locality-tiny", "--optics-init", "hadamard", "--freeze-optics", "--quiet"])
    assert code == 0
    model, info = load_checkpoint(out / "model.safetensors")
    assert info.card["preset"] == "fluo-x64" and model.config.encoder.patterns.init == "hadamard"
    binary = model.encoder.illumination.transmission(True)
    assert torch.equal(binary, torch.from_numpy(hadamard_patterns(16, 4)))  # frozen: the designed set
    assert info.card["optics_report"]["mirrors_flipped_fraction"] == 0.0


def test_an_interrupted_run_resumes_to_the_same_patterns_and_decoder(fluo_fields, tmp_path):
    import threading

    from napari_dmicro.training import Trainer

    torch.set_num_threads(1)
    config = _tiny_config()
    config = config.model_copy(update={"stages": (config.stages[0].model_copy(update={"steps": 24,
                                                                                      "val_every": 12}),)})
    list(Trainer(config, fluo_fields, tmp_path / "whole").run())
    cancel = threading.Event()
    for event in Trainer(config, fluo_fields, tmp_path / "parts", cancel=cancel).run():
        if event.kind == "step" and event.step == 9:
            cancel.set()
    events = list(Trainer(config, fluo_fields, tmp_path / "parts", resume=True).run())
    assert events[-1].kind == "done"
    whole, _ = load_checkpoint(tmp_path / "whole" / "model.safetensors")
    parts, _ = load_checkpoint(tmp_path / "parts" / "model.safetensors")
    for key, value in whole.state_dict().items():
        assert torch.allclose(parts.state_dict()[key], value, atol=1e-5), key


def test_splits_are_disjoint_whole_fields_and_a_duplicated_field_is_refused(tmp_path):
    """The authors' O3: the same training grids saved 400 times and overlapping val/test pools. Ours splits whole
    fields (each in exactly one split, every one used), and refuses a folder where two stores hold one image."""
    import shutil
    from pathlib import Path

    from napari_dmicro.training import Trainer
    from napari_dmicro.training.data import split_by_field
    from napari_dmicro.training.trainer import TrainingError

    paths = [Path(f"nuclei_{k:04d}.zarr") for k in range(60)]
    for seed in (0, 1, 7):
        splits = split_by_field(paths, 0.1, 0.1, seed)
        assert sorted(p for v in splits.values() for p in v) == paths  # every field once, in one split
        assert [len(splits[k]) for k in ("train", "val", "test")] == [48, 6, 6]
    assert split_by_field(paths, 0.1, 0.1, 0)["test"] != split_by_field(paths, 0.1, 0.1, 1)["test"]
    data = _write_fields(tmp_path / "fields", 4, 64)
    shutil.copytree(data / "nuclei_0001.zarr", data / "nuclei_0004.zarr")  # a duplicated field
    with pytest.raises(TrainingError, match="hold the same image") as err:
        list(Trainer(_tiny_config(), data, tmp_path / "run").run())
    assert "nuclei_0001.zarr" in str(err.value) and "nuclei_0004.zarr" in str(err.value)


def test_the_full_resolution_reference_trains_through_the_three_steps(fluo_fields, tmp_path):
    """fluo-seg-full runs in the one Trainer: reconstruction → head → joint on the unbinned widefield frame,
    its fixed uniform pattern unchanged, tested once with Dice and matched F1."""
    from napari_dmicro.training import Trainer, train_config
    from napari_dmicro.training.config import DataConfig

    torch.set_num_threads(1)
    config = train_config("fluo-seg-full", steps={1: 3, 2: 2, 3: 2}, data=DataConfig(patch_px=64))
    events = list(Trainer(config, fluo_fields, tmp_path / "full").run())
    assert events[-1].kind == "done"
    model, info = load_checkpoint(tmp_path / "full" / "model.safetensors")
    assert info.config.compression == 1 and info.config.encoder.detector.bin_px == 1
    assert torch.equal(model.encoder.illumination.transmission(True), torch.ones(1, 1, 1))
    assert info.card["optics_report"]["mirrors_flipped_fraction"] == 0.0
    assert 0 <= info.card["test"]["dice"] <= 1 and 0 <= info.card["test"]["f1"] <= 1


def test_extra_data_folders_join_the_training_split_only_and_their_weight_is_honoured(fluo_fields, tmp_path):
    from napari_dmicro.training import Trainer
    from napari_dmicro.training.config import DataConfig
    from napari_dmicro.training.fluo_data import sample_crops

    extra = _write_fields(tmp_path / "hard", 2, 128, seed=11)
    cfg = _tiny_config().model_copy(update={"data": DataConfig(patch_px=64, extra_data=(str(extra),),
                                                               extra_data_weight=0.75)})
    trainer = Trainer(cfg, fluo_fields, tmp_path / "run")
    trainer._prepare()
    train, names = trainer.train_set, [p.name for p in trainer.train_set.paths]
    assert sum(p.parent == extra for p in train.paths) == 2  # extra fields are trained on …
    held_out = trainer.val_set.paths + trainer.test_set.paths
    assert all(p.parent == fluo_fields for p in held_out)  # … never validated or tested on
    assert len(names) == len(trainer.splits["train"]) + 2
    assert train.weights is not None and train.weights.sum() == pytest.approx(1.0)
    # crops follow the weights: 75 % from the two extra fields (each crop is a piece of one field)
    rng = np.random.default_rng(0)
    extra_fields = [f for p, f in zip(train.paths, train.fields, strict=True) if p.parent == extra]
    images, _ = sample_crops(train, rng, 400, 64, flips=False)

    def from_extra(crop):
        return any((crop == f[r:r + 64, c:c + 64]).all() for f in extra_fields
                   for r in range(0, 65) for c in range(0, 65) if f[r, c] == crop[0, 0])

    share = np.mean([from_extra(c) for c in images[:80]])
    assert 0.6 < share < 0.9  # binomial, 80 crops: 0.75 ± 0.05
