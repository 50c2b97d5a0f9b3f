"""Training data options (issue 10): background-referenced targets, extra folders with a weight, 90°
rotations, amplitude and phase scaling, thick-crop sampling. All off by default: the same crops as before."""

import numpy as np
import pytest
import torch

from napari_dmicro.config import FourierFilterConfig
from napari_dmicro.optics.acquisition import Acquisition
from napari_dmicro.phase_reference import background_phase_rad
from napari_dmicro.training import DataConfig
from napari_dmicro.training import data as D

GRID = FourierFilterConfig().grid
LOAD = dict(pixel_size_um=GRID.pixel_size_um, wavelength_um=GRID.wavelength_um, min_side_px=32)


def _paths(folder):
    return D.discover_fields(folder)


def _cell_field(peak_rad: float, shape=(96, 96), background_rad=0.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    phase = peak_rad * np.sqrt(np.clip(1 - ((yy - 48) ** 2 + (xx - 48) ** 2) / 24.0 ** 2, 0, None))
    phase = phase + rng.normal(0, 0.06, shape) + background_rad
    return (np.exp(1j * phase) * (1 + rng.normal(0, 0.05, shape))).astype(np.complex64)


def test_defaults_draw_exactly_the_crops_of_before(phantom_folder):
    paths = _paths(phantom_folder(3))
    old = D.load_fieldset(paths, **LOAD)
    new = D.training_fieldset(paths, DataConfig(), **LOAD)
    assert new.weights is None and new.augment is None and new.paths == old.paths
    a = D.sample_training_patches(old, np.random.default_rng(7), 6, 32, 8)
    b = D.sample_training_patches(new, np.random.default_rng(7), 6, 32, 8)
    np.testing.assert_array_equal(a.regions, b.regions)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert a.sources == b.sources


def test_background_targets_keep_noise_below_zero_negative():
    field = _cell_field(5.5)
    absolute, background = D.phase_target(field, "absolute"), D.phase_target(field, "background")
    edge = np.s_[:10, :10]  # background only
    assert float(absolute[edge].max()) > 0.9          # mod 2π: noise below 0 became ~2π
    assert float(background[edge].max()) < 0.05 and float(background[edge].min()) < 0
    assert float(background[48, 48]) * 2 * np.pi == pytest.approx(5.5, abs=0.2)


def test_phase_and_amplitude_scale_keep_target_and_field_consistent():
    field = _cell_field(3.0, background_rad=1.2)
    fs = D.FieldSet(["f"], [field], [D.phase_target(field, "background")],
                    augment=D.Augment(amplitude_scale=(0.25, 4.0), phase_scale=(0.7, 1.4)))
    patches = D.sample_training_patches(fs, np.random.default_rng(3), 8, 64, 4, flips=True)
    for region, target in zip(patches.regions, patches.targets, strict=True):
        inner = region[4:-4, 4:-4]
        # the augmented field's background-referenced phase is the augmented target
        rel = inner * np.exp(-1j * background_phase_rad(inner))  # (the target is unwrapped: compare mod 2π)
        np.testing.assert_allclose(np.angle(rel * np.exp(-2j * np.pi * target)), 0, atol=0.03)
        scale = float(np.median(np.abs(inner)))
        assert 0.25 * 0.85 < scale < 4 * 1.15
    assert np.ptp([np.median(np.abs(r)) for r in patches.regions]) > 0.5  # the amplitude does vary


def test_phase_scale_needs_the_background_convention():
    with pytest.raises(ValueError, match="background"):
        DataConfig(phase_scale=(0.7, 1.4))
    with pytest.raises(ValueError, match="low"):
        DataConfig(amplitude_scale=(4.0, 0.25))


def test_rotated_crops_are_crops_of_the_rotated_fields_acquisition(tiny_microscope):
    """A crop of a transposed field (with flips: a 90° rotation) measured through the batch path equals
    the same region of the whole rotated field's one full-field image (LFF)."""
    enc = tiny_microscope("lff").encoder.eval()
    acq = Acquisition(enc)
    field = _cell_field(4.0, shape=(96, 128))
    fs = D.FieldSet(["f"], [field], [D.phase_target(field)])
    rotated = D.FieldSet(fs.paths + ["f (transposed)"], fs.fields + [field.T], fs.targets + [fs.targets[0].T])
    ctx, b = acq.context_px, acq.binning
    patches = D.sample_training_patches(rotated, np.random.default_rng(1), 6, 32, ctx, flips=True, align_px=b)
    assert any(k == 1 for k, _, _ in patches.sources)
    with torch.no_grad():
        cams = acq.camera_image(torch.from_numpy(patches.regions), ctx).numpy()
    rng = np.random.default_rng(1)  # replay the draws to know where each crop was cut
    for cam, (k, fr, fc) in zip(cams, patches.sources, strict=True):
        assert int(rng.integers(2)) == k
        f = rotated.fields[k]
        top = int(rng.integers((f.shape[0] - 32) // b + 1)) * b
        left = int(rng.integers((f.shape[1] - 32) // b + 1)) * b
        rng.integers(2), rng.integers(2)
        whole = acq.acquire_field(D.flip(f, fr, fc)).camera
        r0 = (f.shape[0] - top - 32) if fr else top
        c0 = (f.shape[1] - left - 32) if fc else left
        np.testing.assert_allclose(cam, whole[r0 // b:(r0 + 32) // b, c0 // b:(c0 + 32) // b], rtol=1e-4, atol=1e-5)


def test_training_fieldset_adds_transposed_views_and_extra_folders(phantom_folder):
    main, extra = _paths(phantom_folder(3)), phantom_folder(2, seed=9)
    fs = D.training_fieldset(main, DataConfig(rotations=True, extra_data=(str(extra),), extra_data_weight=0.8),
                             **LOAD)
    assert len(fs) == 10 and fs.fields[5].base is not None  # 5 fields + 5 transposed views
    np.testing.assert_array_equal(fs.fields[5], fs.fields[0].T)
    assert fs.weights.sum() == pytest.approx(1.0)
    patches = D.sample_training_patches(fs, np.random.default_rng(0), 400, 32)
    from_extra = np.mean([k % 5 >= 3 for k, _, _ in patches.sources])
    assert from_extra == pytest.approx(0.8, abs=0.06)


def test_thick_sampling_raises_the_thick_fraction():
    fields = [_cell_field(p, shape=(128, 128), seed=s) for s, p in enumerate((1.0, 1.5, 2.0, 5.0))]
    targets = [D.phase_target(f, "background") for f in fields]
    plain = D.FieldSet(["a", "b", "c", "d"], fields, targets)
    thick = D.FieldSet(plain.paths, fields, targets, augment=D.Augment(thick_weight=30.0))

    def fraction(fs):
        p = D.sample_training_patches(fs, np.random.default_rng(2), 200, 32)
        return float(np.mean([D.thick_fraction(t, 3.0) for t in p.targets]))

    assert fraction(thick) > 2 * fraction(plain)


def test_train_flags_set_the_data_options_and_the_flat_field():
    from argparse import Namespace

    from napari_dmicro.cli import _with_data_options
    from napari_dmicro.training import train_config

    base = train_config("lff-x64", budget="cpu")
    off = Namespace(phase_reference=None, extra_data=None, extra_data_weight=None, rotations=False,
                    amplitude_scale=None, phase_scale=None, thick_weight=None, flat_field=False)
    assert _with_data_options(base, off) is base
    on = Namespace(phase_reference="background", extra_data=["cells"], extra_data_weight=0.3, rotations=True,
                   amplitude_scale=(0.25, 4.0), phase_scale=(0.7, 1.4), thick_weight=2.0, flat_field=True)
    config = _with_data_options(base, on)
    assert config.data.phase_reference == "background" and config.data.extra_data == ("cells",)
    assert config.data.rotations and config.data.phase_scale == (0.7, 1.4) and config.data.thick_weight == 2.0
    assert config.system.encoder.detector.flat_field and not base.system.encoder.detector.flat_field
    assert config.stages == base.stages and config.data.patch_px == base.data.patch_px


def test_a_run_with_every_option_trains_and_resumes_bit_for_bit(phantom_folder, tmp_path):
    """Flat field, noise, background targets, extra folder, rotations, amplitude/phase scale and thick
    sampling through all three stages; a run cancelled in stage 2 and resumed gives the same weights."""
    import threading

    from napari_dmicro.config import DetectorConfig, EncoderConfig
    from napari_dmicro.decoders import decoder_config
    from napari_dmicro.io.checkpoints import load_checkpoint
    from napari_dmicro.system import SystemConfig
    from napari_dmicro.training import StageConfig, TrainConfig, Trainer

    det = DetectorConfig(compression=16, max_photons=1e4, read_noise_e=2.0, flat_field=True)
    system = SystemConfig(encoder=EncoderConfig(optics=FourierFilterConfig(filter_size_px=32), detector=det),
                          decoder=decoder_config("conv-tiny", 4))
    data = DataConfig(patch_px=64, val_patches_per_side=1, phase_reference="background", rotations=True,
                      extra_data=(str(phantom_folder(2, seed=9)),), extra_data_weight=0.3,
                      amplitude_scale=(0.25, 4.0), phase_scale=(0.7, 1.4), thick_weight=3.0)
    stages = (StageConfig(name="optics", steps=2, batch_size=2, lr=0.1, val_every=2, select_on="l1"),
              StageConfig(name="decoder", steps=4, batch_size=2, lr=1e-3, val_every=2),
              StageConfig(name="end_to_end", steps=2, batch_size=2, lr=1e-4, optics_lr=1e-3, val_every=2))
    cfg = TrainConfig(system=system, stages=stages, data=data, checkpoint_every_steps=2)
    folder = phantom_folder(5)
    events = list(Trainer(cfg, folder, tmp_path / "straight").run())
    assert all(np.isfinite(e.loss) for e in events if e.kind == "step")
    reference = load_checkpoint(tmp_path / "straight" / "model.safetensors")[0].state_dict()
    cancel = threading.Event()
    for event in Trainer(cfg, folder, tmp_path / "resumed", cancel=cancel).run():
        if event.kind == "step" and event.stage == "decoder" and event.step == 2:
            cancel.set()
    list(Trainer(cfg, folder, tmp_path / "resumed", resume=True).run())
    resumed = load_checkpoint(tmp_path / "resumed" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
