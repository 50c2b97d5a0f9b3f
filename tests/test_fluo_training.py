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

    for name, bin_px in (("fluo-x64", 16), ("fluo-x256", 32), ("fluo-x1024", 64), ("fluo-seg-x256", 32),
                         ("fluo-seg-x1024", 64)):
        cfg = train_config(name)
        assert cfg.system.encoder.detector.bin_px == bin_px and cfg.system.encoder.patterns.n_patterns == 4
        assert cfg.system.compression == bin_px ** 2 / 4
        assert [s.name for s in cfg.stages] == (["reconstruct", "seg_head", "seg_joint"] if "seg" in name
                                                else ["reconstruct"])
        assert PRESETS[name].cpu_minutes <= 40
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
    # the written model round-trips and scores what its card says on the test field
    model, info = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert isinstance(model, FluorescenceMicroscope) and info.config == config.system
    test = evaluate_fluorescence(model, trainer.test_set, config.seed, "cpu")
    assert abs(test["psnr_db"] - info.card["test"]["psnr_db"]) < 1e-3
    assert info.card["optics_report"]["init"].startswith("random")
    # splits are disjoint fields, every field used once
    splits = info.card["data"]["splits"]
    names = [n for v in splits.values() for n in v]
    assert len(names) == len(set(names)) == 5


def test_task_aware_steps_train_the_head_and_report_dice(fluo_fields, tmp_path):
    from napari_dmicro.training import Trainer

    torch.set_num_threads(1)
    config = _tiny_config(stages=(1, 2, 3), seg=True)
    config = config.model_copy(update={"stages": tuple(s.model_copy(update={"steps": 4 if s.name == "reconstruct"
                                                                             else s.steps}) for s in config.stages)})
    events = list(Trainer(config, fluo_fields, tmp_path / "seg").run())
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
