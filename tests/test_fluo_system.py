"""The fluorescence microscope as a second modality of the one engine: system config, model, checkpoints."""

from __future__ import annotations

import pytest
import torch

from napari_dmicro.decoders import decoder_config
from napari_dmicro.fluorescence import (
    FluorescenceDetectorConfig,
    FluorescenceEncoderConfig,
    PatternConfig,
    PSFConfig,
)
from napari_dmicro.io.checkpoints import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from napari_dmicro.system import (
    FluorescenceMicroscope,
    FluorescenceSystemConfig,
    SystemConfig,
    build_system,
    system_config_from_json,
)


def _encoder(bin_px=8, n_patterns=4, init="hadamard", photons=None) -> FluorescenceEncoderConfig:
    return FluorescenceEncoderConfig(
        patterns=PatternConfig(n_patterns=n_patterns, init=init),
        excitation=PSFConfig(kind="gaussian", na=0.75, wavelength_um=0.488),
        emission=PSFConfig(kind="gaussian", na=0.75, wavelength_um=0.52),
        detector=FluorescenceDetectorConfig(bin_px=bin_px, photons_per_unit=photons))


def _system(bin_px=8, seg=False, **kw) -> FluorescenceSystemConfig:
    return FluorescenceSystemConfig(encoder=_encoder(bin_px, **kw),
                                    decoder=decoder_config("locality-tiny", bin_px, in_chans=4, seg_head=seg))


def test_system_config_refuses_a_decoder_that_does_not_fit():
    with pytest.raises(ValueError, match="upscale"):
        FluorescenceSystemConfig(encoder=_encoder(8), decoder=decoder_config("locality-tiny", 16, in_chans=4))
    with pytest.raises(ValueError, match="in_chans"):
        FluorescenceSystemConfig(encoder=_encoder(8), decoder=decoder_config("locality-tiny", 8, in_chans=2))
    with pytest.raises(ValueError, match="period_bins"):
        FluorescenceSystemConfig(encoder=_encoder(8), decoder=decoder_config("locality-tiny", 8, in_chans=4,
                                                                             period_bins=2))
    with pytest.raises(ValueError, match="locality"):
        FluorescenceSystemConfig(encoder=_encoder(8), decoder=decoder_config("conv-tiny", 8))
    assert _system(8).compression == 16


def test_config_json_tells_the_modalities_apart():
    fluo = _system(8)
    assert system_config_from_json(fluo.model_dump_json()) == fluo
    qpm = SystemConfig(decoder=decoder_config("conv-tiny", 8))
    assert isinstance(system_config_from_json(qpm.model_dump_json()), SystemConfig)


def test_model_measures_decodes_and_starts_as_the_linear_inverse():
    torch.manual_seed(0)
    model = build_system(_system(8, seg=True)).eval()
    x = torch.rand(2, 64, 48)
    y = model.measure(x)
    assert y.shape == (2, 4, 8, 6)
    model.fit_measurement_normalization(y)
    assert abs(float(((y - model.meas_offset) / model.meas_scale).std()) - 1) < 1e-3
    model.init_decoder_from_patterns()
    image, logits = model.decode_all(y)
    assert image.shape == (2, 64, 48) and logits.shape == (2, 2, 64, 48)
    # a fresh decoder is the least-squares inverse: re-measuring its output gives the measurement back
    # (pinv is exact on the measured subspace; PSF-free encoder so that the forward model is the matrix)
    plain = FluorescenceSystemConfig(encoder=FluorescenceEncoderConfig(patterns=PatternConfig(init="hadamard"),
                                                                       detector=FluorescenceDetectorConfig(bin_px=8)),
                                     decoder=decoder_config("locality-tiny", 8, in_chans=4))
    m2 = build_system(plain).eval()
    y2 = m2.measure(x)
    m2.fit_measurement_normalization(y2)
    m2.init_decoder_from_patterns()
    with torch.no_grad():
        again = m2.measure(m2.decode(y2))
    assert float((again - y2).abs().max()) < 1e-3 * float(y2.abs().max())
    with pytest.raises(ValueError, match="patterns"):
        model.decode(torch.zeros(1, 3, 8, 8))


def test_checkpoint_round_trip_and_compatibility(tmp_path):
    torch.manual_seed(1)
    model = build_system(_system(8, seg=True, photons=100.0))
    model.encoder.set_sharpness(5.0)
    with torch.no_grad():
        model.encoder.illumination.logits.add_(0.3 * torch.randn_like(model.encoder.illumination.logits))
    model.fit_measurement_normalization(torch.rand(100) * 7 + 3)
    path = save_checkpoint(tmp_path / "fluo.safetensors", model, {"note": "test"})
    loaded, info = load_checkpoint(path)
    assert isinstance(loaded, FluorescenceMicroscope) and info.card["note"] == "test"
    assert info.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert float(loaded.encoder.sharpness) == 5.0
    model.eval()
    x = torch.rand(1, 32, 32)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)
    check_compatible(read_checkpoint_info(path), model.config.encoder)
    with pytest.raises(CheckpointError, match="bin_px"):
        check_compatible(info, _encoder(16))
    with pytest.raises(CheckpointError, match="modality"):
        check_compatible(info, SystemConfig(decoder=decoder_config("conv-tiny", 8)).encoder)


def test_dm_load_model_loads_both_modalities(tmp_path):
    import napari_dmicro.api as dm
    from napari_dmicro.system import Microscope

    path = save_checkpoint(tmp_path / "fluo.safetensors", build_system(_system(8)), {})
    assert isinstance(dm.load_model(path), FluorescenceMicroscope)
    assert isinstance(dm.load_model("lff-x64"), Microscope)


def test_full_resolution_camera_is_the_same_network_fed_the_unbinned_widefield_image(tmp_path):
    """fluo-seg-full's microscope (bin 1, one fixed uniform pattern): the measurement is the widefield image
    itself (dose-normalised: exposure 0.5, emission blur), any field size decodes on its own grid although the
    refinement works in s×s cells (padded, cropped back), and tiles decode exactly as the whole field."""
    from napari_dmicro.inference.fluorescence import decode_tiled

    enc = FluorescenceEncoderConfig(patterns=PatternConfig(n_patterns=1, init="uniform", learnable=False),
                                    detector=FluorescenceDetectorConfig(bin_px=1))
    cfg = FluorescenceSystemConfig(encoder=enc, decoder=decoder_config("locality-tiny", 1, in_chans=1,
                                                                       seg_head=True))
    assert cfg.compression == 1 and cfg.decoder.refine_unshuffle == 4
    torch.manual_seed(0)
    model = build_system(cfg).eval()
    x = torch.rand(1, 70, 53)  # neither side a multiple of the refinement cell (4 px)
    y = model.measure(x)
    assert y.shape == (1, 1, 70, 53)
    assert torch.allclose(y[:, 0], 0.5 * x, atol=1e-6)  # no PSF: the image at the reference duty 0.5
    model.fit_measurement_normalization(y)
    model.init_decoder_from_patterns()
    with torch.no_grad():
        image, logits = model.decode_all(y)
    assert image.shape == (1, 70, 53) and logits.shape == (1, 2, 70, 53)
    assert torch.allclose(image, x, atol=1e-4)  # a fresh decoder divides by the dose: the linear inverse
    # with a non-trivial refinement, tiles with a receptive-field halo give the whole-field decode
    with torch.no_grad():
        for p in model.decoder.tail.parameters():
            p.normal_(0, 0.05)
        image, logits = model.decode_all(y)
    tiled, tiled_logits = decode_tiled(model, y[0].numpy(), tile_camera_px=16)
    assert abs(tiled - image[0].numpy()).max() < 1e-4 and abs(tiled_logits - logits[0].numpy()).max() < 1e-4
    # its checkpoint's shapes follow the same rule (refinement cell s, not the bin)
    from napari_dmicro.decoders import count_parameters

    assert count_parameters(model.decoder) == cfg.decoder.parameter_count()
    save_checkpoint(tmp_path / "full.safetensors", model, card={})
    loaded, _ = load_checkpoint(tmp_path / "full.safetensors")
    with torch.no_grad():
        assert torch.allclose(loaded.decode_all(y)[0], image, atol=1e-6)
