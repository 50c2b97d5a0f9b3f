"""dm.simulate / dm.reconstruct / dm.segment for fluorescence models (dispatch by the model's modality)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_dmicro.api as dm
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.io.fluorescence import FluorescenceImage
from napari_dmicro.phantoms.fluorescence import make_fluorescence_field


def test_simulate_returns_the_measurement_with_its_metadata_and_resamples_another_pixel_size(tiny_fluorescence):
    model = tiny_fluorescence(seg=False)
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
    with pytest.raises(ValueError, match="records a pixel size"):
        dm.simulate(img, model, pixel_size_um=0.5)
    with pytest.raises(ValueError, match="more than 16× apart"):
        dm.simulate(field.image, model, pixel_size_um=6.0)
    # another pixel size is resampled to the model's 0.325 µm (the record says so) and returned on its own grid
    coarse = dm.simulate(field.image, model, pixel_size_um=0.5)
    assert coarse.attrs["source_image_shape"] == [100, 76] and coarse.attrs["source_pixel_size_um"] == 0.5
    assert coarse.attrs["image_shape"] == [round(100 * 0.5 / 0.325), round(76 * 0.5 / 0.325)]
    assert "resampled 100×76 px at 0.5 µm" in coarse.attrs["grid_adaptation"]
    assert dm.reconstruct(coarse, model).shape == (100, 76)


def test_reconstruct_is_on_the_input_grid_and_tiles_exactly(tiny_fluorescence):
    from napari_dmicro.inference.fluorescence import decode_tiled

    model = tiny_fluorescence(seg=True, period_bins=2)
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


def test_segment_refuses_a_reconstruction_model_and_models_load_by_path(tmp_path, tiny_fluorescence):
    model = tiny_fluorescence(seg=False)
    path = save_checkpoint(tmp_path / "fluo.safetensors", model, {})
    field = make_fluorescence_field(3, size_px=64)
    meas = dm.simulate(field.image, str(path))
    assert meas.data.shape == (4, 8, 8)
    assert dm.reconstruct(meas, str(path)).shape == (64, 64)
    with pytest.raises(ValueError, match="segmentation head"):
        dm.segment(meas, model)
    with pytest.raises(ValueError, match="not by the microscope of"):
        dm.reconstruct(meas, tiny_fluorescence(seg=False, bin_px=16))


def test_tile_cores_grow_with_the_halo_so_small_bins_are_not_decoded_many_times_over():
    from napari_dmicro.inference.fluorescence import TILE_CAMERA_PX, tile_core_camera_px

    # a large-bin model keeps the least core; a small-bin one (receptive field of hundreds of camera px) gets a
    # core of at least four times its halo, in whole shift quanta, so a tile decodes ≤ 2.25x what it keeps
    assert tile_core_camera_px(halo_camera_px=8, quantum_camera_px=1) == TILE_CAMERA_PX
    for halo, quantum in ((95, 1), (376, 1), (50, 4), (33, 2)):
        core = tile_core_camera_px(halo, quantum)
        assert core >= 4 * halo and core % quantum == 0 and core < 4 * halo + quantum + TILE_CAMERA_PX
        assert ((core + 2 * halo) / core) ** 2 <= 2.25
