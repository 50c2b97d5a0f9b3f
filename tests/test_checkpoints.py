"""Checkpoints are safetensors + JSON: exact round trips, device mapping, and no unpickling ever."""

import json
import pickle

import pytest
import torch

from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.io.checkpoints import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    load_train_state,
    read_checkpoint_info,
    save_checkpoint,
    save_train_state,
)
from napari_dmicro.system import Microscope, SystemConfig


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


def test_foreign_safetensors_and_damaged_files_get_clear_errors(tmp_path, tiny_microscope):
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
    model = tiny_microscope()
    bad_card = {"format": "napari-dmicro-checkpoint", "format_version": "1", "card": "{not json",
                "config": model.config.model_dump_json()}
    save_file(model.state_dict(), tmp_path / "bad_card.safetensors", metadata=bad_card)
    with pytest.raises(CheckpointError, match="model card is not valid JSON"):
        read_checkpoint_info(tmp_path / "bad_card.safetensors")
    huge_header = tmp_path / "huge_header.safetensors"  # declares a 64 MB JSON header (sparse: no disk)
    with open(huge_header, "wb") as fh:
        fh.write((64 * 2**20).to_bytes(8, "little") + b"{")
        fh.truncate(8 + 64 * 2**20)
    with pytest.raises(CheckpointError, match="64 MB safetensors header"):
        read_checkpoint_info(huge_header)
    save_file(model.state_dict(), tmp_path / "no_config.safetensors", metadata={**bad_card, "config": ""})
    with pytest.raises(CheckpointError, match="configuration is invalid"):
        read_checkpoint_info(tmp_path / "no_config.safetensors")


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


# ---- untrusted checkpoints: refused from the header, before any model is built ---------------------

_REFUSE_IN_A_SMALL_PROCESS = r"""
import json, resource, sys, time
import torch
from napari_dmicro.io.checkpoints import CheckpointError, load_checkpoint
honest, *crafted = sys.argv[1:]
load_checkpoint(honest)  # warm up: imports and one honest file
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
vm_bytes = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes + 3 * 2**30,) * 2)  # the old code built 100 GB models
for path in crafted:
    before, t0 = rss_mb(), time.perf_counter()
    try:
        load_checkpoint(path)
        outcome = "loaded"
    except CheckpointError as exc:
        outcome = "CheckpointError: " + str(exc)
    except BaseException as exc:
        outcome = type(exc).__name__ + ": " + str(exc)[:300]
    print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - t0, "extra_mb": rss_mb() - before}))
"""


def _write_raw_safetensors(path, shapes: dict, metadata: dict) -> None:
    """A safetensors file declaring ``shapes`` (float32) whose data is a sparse run of zeros: a file that
    claims a gigabyte while taking nothing on disk."""
    import struct

    header, offset = {"__metadata__": metadata}, 0
    for key, shape in shapes.items():
        n = 4 * int(torch.Size(shape).numel())
        header[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)


def _crafted_config(model, **decoder) -> str:
    config = json.loads(model.config.model_dump_json())
    config["decoder"].update(decoder)
    return json.dumps(config)


def test_crafted_checkpoints_are_refused_from_the_header_in_under_a_second_and_200_mb(tmp_path, tiny_microscope):
    import subprocess
    import sys

    model = tiny_microscope()
    honest = save_checkpoint(tmp_path / "honest.safetensors", model)
    meta = {"format": "napari-dmicro-checkpoint", "format_version": "1", "card": "{}",
            "config": model.config.model_dump_json()}
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    d2nn = json.loads(meta["config"])
    d2nn["encoder"]["optics"] = {"kind": "d2nn", "n_layers": 32, "n_neurons": 4096, "pad_factor": 8,
                                 "mode": "amplitude_phase"}
    crafts = {  # name: (metadata, shapes, what the refusal must name)
        # a field beyond its limit: 40000 channels
        "decoder_field": ({**meta, "config": _crafted_config(model, width=40000, n_blocks=2)}, shapes, "width"),
        # every field within its limit, but 6 G parameters in total
        "decoder_parameters": ({**meta, "config": _crafted_config(
            model, family="swinir", embed_dim=1024, depths=[32] * 16, num_heads=[16] * 16, window_size=8,
            upsampler="pixelshuffledirect")}, shapes, "parameters"),
        # a 32-layer 4096² PhaseD2NN that propagates on a 32768² grid
        "optics_size": ({**meta, "config": json.dumps(d2nn)}, shapes, "MB"),
        # 512 Swin layers within every limit, but not the tensors of the file
        "deep_decoder": ({**meta, "config": _crafted_config(
            model, family="swinir", embed_dim=64, depths=[32] * 16, num_heads=[2] * 16, window_size=32,
            upsampler="pixelshuffledirect")}, shapes, "does not match its own configuration"),
        # an honest small config, one tensor declared 1 GB
        "tensor_shape": (meta, {**shapes, "decoder.head.weight": (16384, 16384)}, "wrong shapes"),
    }
    for name, (metadata, declared, _) in crafts.items():
        _write_raw_safetensors(tmp_path / f"{name}.safetensors", declared, metadata)
    out = subprocess.run([sys.executable, "-c", _REFUSE_IN_A_SMALL_PROCESS, str(honest),
                          *(str(tmp_path / f"{name}.safetensors") for name in crafts)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = [json.loads(line) for line in out.stdout.strip().splitlines()]
    for (name, (_, _, message)), result in zip(crafts.items(), results, strict=True):
        assert result["outcome"].startswith("CheckpointError") and message in result["outcome"], (name, result)
        assert result["seconds"] < 1.0, (name, result)
        assert result["extra_mb"] < 200, (name, result)


def test_decoder_tensor_shapes_and_parameter_count_are_exact_arithmetic_of_the_config():
    from napari_dmicro.decoders import DECODER_PRESETS, build_decoder, count_parameters
    from napari_dmicro.decoders.limits import decoder_tensor_shapes

    variants = ({}, {"upsampler": "pixelshuffle", "num_feat": 8}, {"in_chans": 2, "out_chans": 3})
    configs = [decoder_config(name, 4, **overrides) for name in DECODER_PRESETS for overrides in variants]
    configs += [decoder_config("swinir-tiny", 2, resi_connection="3conv", mlp_ratio=1.5),
                decoder_config("conv-tiny", 32, n_blocks=0, upsampler="pixelshuffle", num_feat=4)]
    for config in configs:
        built = build_decoder(config)
        assert decoder_tensor_shapes(config) == {k: tuple(v.shape) for k, v in built.state_dict().items()}, config
        assert config.parameter_count() == count_parameters(built, trainable_only=False), config


def test_checkpoint_with_optics_of_another_size_is_refused_naming_the_fields(tmp_path, tiny_microscope):
    from napari_dmicro.config import DiffractiveConfig

    info = read_checkpoint_info(save_checkpoint(tmp_path / "m.safetensors", tiny_microscope()))
    wider = EncoderConfig(optics=FourierFilterConfig(filter_size_px=64), detector=DetectorConfig(compression=16))
    with pytest.raises(CheckpointError, match="filter_size_px 32 vs 64"):
        check_compatible(info, wider)
    check_compatible(info, EncoderConfig(optics=FourierFilterConfig(filter_size_px=32, pupil_na=0.8),
                                         detector=DetectorConfig(compression=16)))  # same shapes: compatible
    d2nn = EncoderConfig(optics=DiffractiveConfig(n_layers=2, n_neurons=32), detector=DetectorConfig(compression=16))
    d2nn_info = type(info)(info.path, SystemConfig(encoder=d2nn, decoder=info.config.decoder))
    deeper = EncoderConfig(optics=DiffractiveConfig(n_layers=3, n_neurons=32), detector=DetectorConfig(compression=16))
    with pytest.raises(CheckpointError, match="n_layers 2 vs 3"):
        check_compatible(d2nn_info, deeper)


def test_the_one_header_reader_gives_metadata_shapes_and_dtypes_without_reading_tensors(tmp_path):
    from safetensors.torch import save_file

    from napari_dmicro.io.safetensors_header import SafetensorsError, read_safetensors_header

    path = tmp_path / "t.safetensors"
    save_file({"a": torch.zeros(2, 3), "b": torch.zeros(4, dtype=torch.float16)}, path, metadata={"k": "v"})
    header = read_safetensors_header(path)
    assert header.metadata == {"k": "v"} and header.numel() == 10
    assert header.shapes == {"a": (2, 3), "b": (4,)} and header.dtypes == {"a": "F32", "b": "F16"}
    torch.save({"a": torch.zeros(2)}, tmp_path / "t.pt.safetensors")
    with pytest.raises(SafetensorsError, match="zip archive.*never unpickles"):
        read_safetensors_header(tmp_path / "t.pt.safetensors")
