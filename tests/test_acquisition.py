"""The one acquisition: every path (simulate, the training stages, evaluation) records the same camera
image of the same field, and a crop is exposed with the photons of the whole acquisition it is cut from."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_dmicro.config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.decoders import decoder_config
from napari_dmicro.inference import simulate_full_field
from napari_dmicro.optics import Detector, Encoder
from napari_dmicro.optics.acquisition import Acquisition
from napari_dmicro.optics.grids import crop_with_surroundings
from napari_dmicro.system import SystemConfig
from napari_dmicro.training import DataConfig, StageConfig, TrainConfig, Trainer
from napari_dmicro.training.data import FieldSet, FixedPatch
from napari_dmicro.training.evaluation import simulate_patches
from napari_dmicro.training.measurement_pool import MeasurementPool

PATCH = 32


def _field(shape, seed=0):
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.5, 1.0, shape)
    return (amp * np.exp(1j * rng.uniform(0, 2 * np.pi, shape))).astype(np.complex64)


def _encoder(tiled: bool) -> Encoder:
    optics = DiffractiveConfig(n_layers=2, n_neurons=PATCH, pad_factor=2) if tiled else \
        FourierFilterConfig(filter_size_px=16)
    return Encoder(EncoderConfig(optics=optics, detector=DetectorConfig(compression=16)),
                   generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("tiled", [False, True])
def test_simulate_stages_and_evaluation_record_the_same_camera_image(tiled):
    enc = _encoder(tiled).eval()
    b = 4
    field = _field((96, 128), seed=2)
    target = (np.angle(field) % (2 * np.pi) / (2 * np.pi)).astype(np.float32)
    camera, _ = simulate_full_field(field, enc)
    acq = Acquisition(enc)
    corners = [(0, 0), (32, 64), (64, 96)] if tiled else [(0, 0), (28, 40), (64, 96), (12, 0)]

    def whole(top, left):
        return camera[top // b:(top + PATCH) // b, left // b:(left + PATCH) // b]

    # stages 1 and 3: crops with their optical context through the differentiable batch path
    ctx = acq.context_px
    regions = np.stack([crop_with_surroundings(field, t - ctx, c - ctx, PATCH + 2 * ctx, PATCH + 2 * ctx,
                                               "reflect") for t, c in corners])
    with torch.no_grad():
        batch = acq.camera_image(torch.from_numpy(regions), ctx).numpy()
        stage1 = acq.bin(acq.detector_intensity(torch.from_numpy(regions), ctx)).numpy()
    # evaluation: fixed patches of the field
    fieldset = FieldSet(["f"], [field], [target])
    model = SimpleNamespace(encoder=enc)
    evaluated, _, _ = simulate_patches(model, fieldset, [FixedPatch(0, t, c) for t, c in corners], PATCH,
                                       seed=0, device="cpu")
    for j, (t, c) in enumerate(corners):
        expect = whole(t, c)
        scale = float(np.abs(expect).max())
        for got in (batch[j], stage1[j], evaluated[j].numpy()):
            np.testing.assert_allclose(got, expect, atol=1e-5 * scale)
    # stage 2: the pool of whole acquisitions (tiled: a bank of apertures, here a field of one aperture)
    pool_field = field if not tiled else field[:PATCH, :PATCH]
    pool_set = FieldSet(["f"], [pool_field], [target[:pool_field.shape[0], :pool_field.shape[1]]])
    trainer = SimpleNamespace(config=SimpleNamespace(data=DataConfig(patch_px=PATCH, flips=False,
                                                                     d2nn_bank_size=2), seed=0),
                              acquisition=acq, device="cpu", train_set=pool_set)
    pool = MeasurementPool(trainer)
    expect = camera if not tiled else whole(0, 0)
    for cam in pool.cameras:
        np.testing.assert_allclose(cam.numpy(), expect, atol=1e-5 * expect.max())


def test_crop_with_surroundings_is_one_rule_for_numpy_torch_and_lazy_arrays():
    import dask.array as da

    a = _field((7, 9), seed=4)
    for mode in ("reflect", "dark"):
        padded = np.pad(a, 20, mode="reflect" if mode == "reflect" else "constant")
        for top, left, rows, cols in [(-3, -4, 12, 15), (2, 3, 4, 4), (5, 7, 6, 8), (-20, -20, 30, 40)]:
            expect = padded[top + 20:top + 20 + rows, left + 20:left + 20 + cols]
            np.testing.assert_array_equal(crop_with_surroundings(a, top, left, rows, cols, mode), expect)
            got = crop_with_surroundings(torch.from_numpy(a), top, left, rows, cols, mode)
            np.testing.assert_array_equal(got.numpy(), expect)
            lazy = crop_with_surroundings(da.from_array(a, chunks=3), top, left, rows, cols, mode)
            np.testing.assert_array_equal(lazy, expect)
    with pytest.raises(ValueError, match="outside_field"):
        crop_with_surroundings(a, 0, 0, 2, 2, "wrap")


# ------------------------------------------------------------------------------ photon reference
def _spot_field(size=96) -> np.ndarray:
    """A bright disc on a dim background, symmetric under both flips (every flip is the same field)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    inside = y ** 2 + x ** 2 < (size / 8) ** 2
    amplitude = np.where(inside, 1.0, 0.15)
    phase = np.where(inside, 1.0 + 0.01 * (y ** 2 + x ** 2), 0.2)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


@pytest.mark.parametrize("tiled", [False, True])
def test_every_stage_and_evaluation_expose_a_crop_with_the_photons_of_its_whole_field(tmp_path, monkeypatch,
                                                                                      tiled):
    """Defect: stage 3 exposed each training crop to its own brightest pixel while stage 2 and the
    evaluation exposed it to the whole field's, so background crops trained with many times the photons.
    Now the photon scale (photons per intensity unit) of every exposure equals that of the whole
    acquisition: the field of view (full field), the aperture (tiled: here a field of one aperture)."""
    field = _spot_field(PATCH if tiled else 96)
    for k in range(4):  # identical fields: every crop's whole field is this one
        np.save(tmp_path / f"field_{k}.npy", field)
    max_photons = 1000.0
    det = DetectorConfig(compression=16, max_photons=max_photons, read_noise_e=1.0)
    optics = DiffractiveConfig(n_layers=2, n_neurons=PATCH, pad_factor=2) if tiled else \
        FourierFilterConfig(filter_size_px=16)
    enc = EncoderConfig(optics=optics, detector=det)
    system = SystemConfig(encoder=enc, decoder=decoder_config("conv-tiny", 4))
    stages = (StageConfig(name="decoder", steps=2, batch_size=4, lr=1e-3, val_every=2),
              StageConfig(name="end_to_end", steps=3, batch_size=4, lr=1e-4, optics_lr=1e-2, val_every=3))
    data = DataConfig(patch_px=PATCH, val_patches_per_side=1 if tiled else 2, d2nn_bank_size=8)
    cfg = TrainConfig(system=system, stages=stages, data=data)
    trainer = Trainer(cfg, tmp_path, tmp_path / "run")
    scales = []  # (stage, photon scale of each exposure, photon scale of the whole field)
    original = Detector.photon_scale

    def recording(self, binned, reference=None):
        scale = original(self, binned, reference)
        whole = Acquisition(trainer.model.encoder).acquire_field(field).camera.max()
        stage = getattr(getattr(trainer, "stage", None), "name", None)
        scales.append((stage, scale.detach().flatten().cpu().numpy(), max_photons / whole))
        return scale

    monkeypatch.setattr(Detector, "photon_scale", recording)
    list(trainer.run())
    seen = {stage for stage, _, _ in scales}
    assert {"decoder", "end_to_end"} <= seen
    for stage, got, whole in scales:
        np.testing.assert_allclose(got, whole, rtol=1e-4, err_msg=f"stage {stage}")
    assert sum(stage == "end_to_end" for stage, _, _ in scales) >= 4  # every training step and validation
