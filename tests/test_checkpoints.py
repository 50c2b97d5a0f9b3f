"""Checkpoints are safetensors + JSON: exact round trips, device mapping, and no unpickling ever."""

import json
import pickle

import pytest
import torch

from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.io.checkpoints import (CheckpointError, check_compatible, load_checkpoint,
                                          load_train_state, read_checkpoint_info, save_checkpoint,
                                          save_train_state)
from napari_dmicro.system import Microscope


def test_round_trip_is_exact_and_keeps_the_card(tmp_path, tiny_microscope):
    model = tiny_microscope()
    path = save_checkpoint(tmp_path / "m.safetensors", model, card={"metrics": {"psnr_db": 30.1}})
    loaded, info = load_checkpoint(path, device="cpu")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert info.card["metrics"]["psnr_db"] == 30.1
    assert info.card["versions"]["torch"] == torch.__version__
    assert info.config == model.config
    field = torch.polar(torch.ones(1, 32, 32), torch.rand(1, 32, 32))
    with torch.no_grad():
        assert torch.equal(model.eval()(field), loaded(field))
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_measurement_normalization_is_saved_and_older_files_load_as_identity(tmp_path, tiny_microscope):
    from napari_dmicro.io.checkpoints import save_safetensors

    model = tiny_microscope()
    model.fit_measurement_normalization(torch.tensor([0.02, 0.03, 0.04]))
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model), device="cpu")
    assert float(loaded.meas_offset) == pytest.approx(0.03) and float(loaded.meas_scale) == pytest.approx(0.01)
    # the decoder sees (camera − offset) / scale
    cam = torch.rand(1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.decode(cam), loaded.decoder(((cam - 0.03) / 0.01)[:, None])[:, 0], atol=1e-5)
    # a file written before the buffers existed: same weights, identity normalisation
    old = {k: v for k, v in model.state_dict().items() if k not in Microscope.OPTIONAL_BUFFERS}
    header = read_checkpoint_info(tmp_path / "m.safetensors")
    save_safetensors(tmp_path / "old.safetensors", old, {"format": "napari-dmicro-checkpoint", "format_version": "1",
                                                          "config": header.config.model_dump_json(), "card": "{}"})
    older, _ = load_checkpoint(tmp_path / "old.safetensors")
    assert float(older.meas_offset) == 0 and float(older.meas_scale) == 1


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {_Payload.sentinel}",))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_pickle_payload_is_refused_and_never_executed(tmp_path, suffix):
    sentinel = tmp_path / "pwned"
    _Payload.sentinel = sentinel
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps({"state": _Payload()}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(evil)
    torch.save({"w": torch.zeros(2)}, tmp_path / f"torch{suffix}")  # a PyTorch zip file
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(tmp_path / f"torch{suffix}")
    assert not sentinel.exists()


def test_foreign_safetensors_and_damaged_files_get_clear_errors(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a napari-dmicro-checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")
    (tmp_path / "short.safetensors").write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="too short"):
        load_checkpoint(tmp_path / "short.safetensors")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path)


def test_checkpoint_from_another_compression_is_refused(tmp_path, tiny_microscope):
    path = save_checkpoint(tmp_path / "x16.safetensors", tiny_microscope(compression=16))
    info = read_checkpoint_info(path)
    other = EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=DetectorConfig(compression=64))
    with pytest.raises(CheckpointError, match="compression x16 vs x64"):
        check_compatible(info, other)
    check_compatible(info, info.config.encoder)


def test_train_state_restores_adam_moments(tmp_path, tiny_microscope):
    model = tiny_microscope()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    field = torch.polar(torch.ones(2, 32, 32), torch.rand(2, 32, 32))
    for _ in range(2):
        opt.zero_grad()
        model(field).square().mean().backward()
        opt.step()
    save_train_state(tmp_path / "state.safetensors", {"all": opt}, {"stage": 2, "step": 2})
    opt2 = torch.optim.Adam(model.parameters(), lr=1e-3)
    progress = load_train_state(tmp_path / "state.safetensors", {"all": opt2})
    assert progress == {"stage": 2, "step": 2}
    a, b = opt.state_dict(), opt2.state_dict()
    for idx in a["state"]:
        for key in a["state"][idx]:
            assert torch.equal(torch.as_tensor(a["state"][idx][key]), torch.as_tensor(b["state"][idx][key]))
    assert json.dumps(a["param_groups"]) == json.dumps(b["param_groups"])
