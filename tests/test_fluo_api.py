"""dm.simulate / dm.reconstruct / dm.segment for fluorescence models (dispatch by the model's modality)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_dmicro.api as dm
from napari_dmicro.decoders import decoder_config
from napari_dmicro.fluorescence import FluorescenceDetectorConfig, FluorescenceEncoderConfig, PatternConfig, PSFConfig
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.io.fluorescence import FluorescenceImage
from napari_dmicro.phantoms.fluorescence import make_fluorescence_field
from napari_dmicro.system import FluorescenceSystemConfig, build_system


def _model(seg: bool, period_bins: int = 1, bin_px: int = 8):
    torch.manual_seed(0)
    enc = FluorescenceEncoderConfig(
        patterns=PatternConfig(n_patterns=4, period_bins=period_bins),
        emission=PSFConfig(kind="gaussian", na=0.75, wavelength_um=0.52),
        detector=FluorescenceDetectorConfig(bin_px=bin_px))
    cfg = FluorescenceSystemConfig(encoder=enc, decoder=decoder_config("locality-tiny", bin_px, in_chans=4,
                                                                       period_bins=period_bins, seg_head=seg))
    model = build_system(cfg).eval()
    model.fit_measurement_normalization(model.measure(torch.rand(2, 64, 64)))
    model.init_decoder_from_patterns()
    model.name = "test-fluo"
    return model


def test_simulate_returns_the_measurement_with_its_metadata_and_refuses_another_pixel_size():
    model = _model(seg=False)
    field = make_fluorescence_field(1, size_px=(100, 76))
    img = FluorescenceImage(field.image * 3 + 1, field.labels, field.pixel_size_um)
    meas = dm.simulate(img, model, photons=200.0, read_noise=2.0, seed=4)
    assert meas.data.shape == (4, 13, 10) and meas.data.dtype == np.float32  # mirrored to whole bins
    a = meas.attrs
    assert (a["modality"], a["n_patterns"], a["bin_px"], a["model"]) == ("fluorescence", 4, 8, "test-fluo")
    assert a["pixel_size_um"] == field.pixel_size_um and a["camera_pixel_size_um"] == 8 * field.pixel_size_um
    assert a["image_shape"] == [100, 76] and a["patterns"] == "binary" and a["pixel_size_source"] == "metadata"
    again = dm.simulate(img, model, photons=200.0, read_noise=2.0, seed=4)
    assert np.array_equal(again.data, meas.data)  # seeded
    clean = dm.simulate(img, model, seed=4)
    # exact Poisson at K = 200 photons: the noise of a camera pixel is ~ sqrt(y/K) in units of y
    resid = (meas.data - clean.data) / np.sqrt(clean.data / 200.0 + (2.0 / 200.0) ** 2)
    assert 0.8 < resid.std() < 1.2 and abs(resid.mean()) < 0.2
    with pytest.raises(ValueError, match="0.5 µm pixels"):
        dm.simulate(field.image, model, pixel_size_um=0.5)
    with pytest.raises(ValueError, match="records a pixel size"):
        dm.simulate(img, model, pixel_size_um=0.5)


def test_reconstruct_is_on_the_input_grid_and_tiles_exactly():
    from napari_dmicro.inference.fluorescence import decode_tiled

    model = _model(seg=True, period_bins=2)
    field = make_fluorescence_field(2, size_px=(150, 130))
    meas = dm.simulate(field.image, model)
    image = dm.reconstruct(meas, model)
    assert image.shape == (150, 130) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    # tiles with a receptive-field halo give the whole-image decode
    whole, whole_logits = model.decode_all(torch.from_numpy(meas.data)[None])
    tiled, tiled_logits = decode_tiled(model, meas.data, tile_camera_px=4)
    assert np.abs(tiled - whole[0].detach().numpy()).max() < 1e-4
    assert np.abs(tiled_logits - whole_logits[0].detach().numpy()).max() < 1e-4
    labels = dm.segment(meas, model)
    assert labels.shape == (150, 130) and labels.dtype == np.int32


def test_segment_refuses_a_reconstruction_model_and_models_load_by_path(tmp_path):
    model = _model(seg=False)
    path = save_checkpoint(tmp_path / "fluo.safetensors", model, {})
    field = make_fluorescence_field(3, size_px=64)
    meas = dm.simulate(field.image, str(path))
    assert meas.data.shape == (4, 8, 8)
    assert dm.reconstruct(meas, str(path)).shape == (64, 64)
    with pytest.raises(ValueError, match="segmentation head"):
        dm.segment(meas, model)
    with pytest.raises(ValueError, match="not made by this model"):
        dm.reconstruct(meas, _model(seg=False, bin_px=16))
