"""The same widgets for fluorescence (Xvfb): the modality follows the model; simulate → reconstruct (+ labels)
→ compare images (PSNR/SSIM) and masks (Dice, matched F1), checked against the dm functions called directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_dmicro.api as dm
from napari_dmicro._reader import image_layers
from napari_dmicro.io.images import ImageData
from napari_dmicro.phantoms.fluorescence import make_fluorescence_field

pytestmark = pytest.mark.gui

TIMEOUT_MS = 300_000  # a bound for a busy machine, not the expected time
BIN = 8
PHOTONS, READ_NOISE = 150.0, 2.0  # what the tiny model is "trained" at: Simulate starts from them


def _wait(qtbot, worker, timeout=TIMEOUT_MS):
    assert worker is not None
    qtbot.waitUntil(lambda: worker.done, timeout=timeout)


@pytest.fixture
def registry(monkeypatch):
    from napari_dmicro import model_registry

    fresh = model_registry.ModelRegistry()
    monkeypatch.setattr(model_registry, "_REGISTRY", fresh)
    return fresh


@pytest.fixture(scope="module")
def fluo_checkpoint(tmp_path_factory):
    """A tiny task-aware fluorescence model (4 patterns, bin 8, seg head; untrained but seeded)."""
    from napari_dmicro.decoders import decoder_config
    from napari_dmicro.fluorescence import (
        FluorescenceDetectorConfig,
        FluorescenceEncoderConfig,
        PatternConfig,
        PSFConfig,
    )
    from napari_dmicro.io.checkpoints import save_checkpoint
    from napari_dmicro.system import FluorescenceSystemConfig, build_system

    torch.manual_seed(0)
    enc = FluorescenceEncoderConfig(
        patterns=PatternConfig(n_patterns=4, period_bins=2),
        emission=PSFConfig(kind="gaussian", na=0.75, wavelength_um=0.52),
        detector=FluorescenceDetectorConfig(bin_px=BIN, photons_per_unit=PHOTONS, read_noise_e=READ_NOISE))
    cfg = FluorescenceSystemConfig(encoder=enc, decoder=decoder_config("locality-tiny", BIN, in_chans=4,
                                                                       period_bins=2, seg_head=True))
    model = build_system(cfg).eval()
    model.fit_measurement_normalization(model.measure(torch.rand(2, 64, 64)))
    model.init_decoder_from_patterns()
    root = tmp_path_factory.mktemp("fluo_ckpt")
    return save_checkpoint(root / "fluo-tiny.safetensors", model, card={"preset": "tiny test"})


def _add_nuclei(viewer, seed=3, size=(96, 80)):
    """A generated nuclei field as the reader shows a fluorescence store: the image (µm scale) + its true labels."""
    field = make_fluorescence_field(seed, size_px=size)
    img = ImageData(field.image * 500 + 20, "fluorescence", field.pixel_size_um, 0.52, {"seed": seed})
    (data, kwargs, _), = image_layers(img, name="nuclei", source=f"phantom {seed}")
    image_layer = viewer.add_image(data, **kwargs)
    labels_layer = viewer.add_labels(field.labels, name="nuclei labels", scale=(field.pixel_size_um,) * 2)
    return field, image_layer, labels_layer


def _shown(widget) -> bool:
    return not widget.isHidden()


def test_fluorescence_simulate_reconstruct_compare(make_napari_viewer, qtbot, registry, fluo_checkpoint,
                                                   notifications):
    from napari.layers import Image, Labels

    from napari_dmicro.segmentation_metrics import dice, matched_f1
    from napari_dmicro.widgets.compare import CompareWidget
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import PATTERN_PERIODS, SimulateWidget

    viewer = make_napari_viewer()
    field, image_layer, truth_labels = _add_nuclei(viewer)
    ps = field.pixel_size_um
    entry = registry.add_checkpoint(fluo_checkpoint)
    sim, rec, cmp_ = SimulateWidget(viewer), ReconstructWidget(viewer), CompareWidget(viewer)
    for w in (sim, rec, cmp_):
        viewer.window.add_dock_widget(w)

    # the modality follows the model: QPM controls for lff-x64, fluorescence ones for the fluorescence model
    assert sim.model_combo.currentText() == "lff-x64" and sim.modality() == "qpm"
    assert _shown(sim.phase_combo) and _shown(sim.compression) and not _shown(sim.fluo_combo)
    sim.model_combo.select(entry.name)
    assert sim.modality() == "fluorescence"
    assert _shown(sim.fluo_combo) and not any(_shown(w) for w in (sim.phase_combo, sim.amp_combo, sim.compression))
    assert sim.photons.value() == PHOTONS and sim.read_noise.value() == READ_NOISE  # the model's conditions
    assert sim.fluo_combo.current_layer() is image_layer and "pixel 0.325 µm" in sim.sampling.text()
    sim.model_combo.select("lff-x64")
    assert _shown(sim.phase_combo) and not _shown(sim.fluo_combo)
    sim.model_combo.select(entry.name)

    sim.seed.setValue(4)
    _wait(qtbot, sim.run())
    meas = sim.last_layer
    model = dm.load_model(fluo_checkpoint)
    expected = dm.simulate(np.asarray(image_layer.data), model, photons=PHOTONS, read_noise=READ_NOISE, seed=4,
                           pixel_size_um=ps)
    assert meas.data.shape == (4, 96 // BIN, 80 // BIN)
    np.testing.assert_allclose(np.asarray(meas.data), expected.data, atol=1e-6)  # same seed, same photons
    assert tuple(meas.scale) == pytest.approx((1.0, BIN * ps, BIN * ps))  # the camera pixel
    # camera pixel (0, 0) is centred over the image pixels [0, bin) it sums
    assert tuple(meas.translate[-2:]) == pytest.approx(((BIN - 1) / 2 * ps,) * 2)
    md = meas.metadata["napari_dmicro"]
    assert md["component"] == "measurement" and md["attrs"]["modality"] == "fluorescence"
    assert md["attrs"]["image_shape"] == [96, 80] and md["attrs"]["photons_per_unit"] == PHOTONS

    patterns = sim.patterns_layer  # the deployed binary patterns, tiled over PATTERN_PERIODS periods
    period = model.encoder.period_px
    one = (model.encoder.patterns(binary=True) > 0).numpy().astype(np.float32)
    assert patterns.data.shape == (4, period * PATTERN_PERIODS, period * PATTERN_PERIODS)
    np.testing.assert_array_equal(np.asarray(patterns.data), np.tile(one, (1, PATTERN_PERIODS, PATTERN_PERIODS)))
    assert set(np.unique(patterns.data)) <= {0.0, 1.0}
    assert tuple(patterns.scale) == pytest.approx((1.0, ps, ps))

    # reconstruct: the recorded model is chosen; image on the input grid and labels of the task-aware model
    assert rec.meas_combo.current_layer() is meas and rec.model_combo.currentText() == entry.name
    assert not _shown(rec.overlap)
    _wait(qtbot, rec.run())
    recon, labels = rec.last_layer, rec.labels_layer
    assert isinstance(recon, Image) and isinstance(labels, Labels)
    assert recon.data.shape == (96, 80) and labels.data.shape == (96, 80)
    assert tuple(recon.scale) == pytest.approx((ps, ps)) and tuple(labels.scale) == pytest.approx((ps, ps))
    assert tuple(recon.translate) == pytest.approx((0.0, 0.0))  # overlays the image it came from
    np.testing.assert_allclose(np.asarray(recon.data), dm.reconstruct(expected, model), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(labels.data), dm.segment(expected, model))

    # compare images: the truth image is the reference, the reconstruction ticked; PSNR/SSIM as dm computes them
    assert cmp_.ref_combo.current_layer() is image_layer and cmp_.mode() == "fluorescence"
    assert [layer.name for layer in cmp_.reconstructions()] == [recon.name]
    _wait(qtbot, cmp_.compare())
    report = cmp_.results[recon.name]
    direct = dm.evaluate_fluorescence(np.asarray(recon.data), np.asarray(image_layer.data))
    assert report.psnr_db == pytest.approx(direct.psnr_db, abs=1e-4) and report.ssim == pytest.approx(direct.ssim,
                                                                                                       abs=1e-5)
    truth01 = (field.image - field.image.min()) / np.ptp(field.image)  # data range 1 of the normalised image
    mse = np.mean((np.clip(np.asarray(recon.data), 0, 1) - truth01) ** 2)
    assert report.psnr_db == pytest.approx(10 * np.log10(1 / mse), abs=0.01)
    assert cmp_.table.item(0, 1).text() == f"{direct.psnr_db:.2f}"

    # compare masks: the true labels as reference, the segmentation scored by Dice and matched F1 at 0.5
    cmp_.set_reference(truth_labels)
    assert cmp_.mode() == "labels" and [layer.name for layer in cmp_.reconstructions()] == [labels.name]
    _wait(qtbot, cmp_.compare())
    scores = cmp_.results[labels.name]
    assert scores["dice"] == pytest.approx(dice(np.asarray(labels.data), field.labels), abs=1e-9)
    assert scores["f1"] == pytest.approx(matched_f1(np.asarray(labels.data), field.labels)["f1"], abs=1e-9)
    assert cmp_.table.horizontalHeaderItem(1).text() == "Dice"
    assert cmp_.table.item(0, 2).text() == f"{scores['f1']:.3f}"
    assert not notifications.errors()


def test_fluorescence_inputs_are_refused_with_the_fix(make_napari_viewer, qtbot, registry, fluo_checkpoint,
                                                      notifications):
    from napari_dmicro.widgets.reconstruct import ReconstructWidget
    from napari_dmicro.widgets.simulate import SimulateWidget

    viewer = make_napari_viewer()
    entry = registry.add_checkpoint(fluo_checkpoint)
    sim = SimulateWidget(viewer)
    sim.model_combo.select(entry.name)
    image = make_fluorescence_field(5, size_px=64).image
    viewer.add_image(image, name="no scale")  # a foreign layer without a pixel size: never guessed
    assert sim.run() is None
    assert any("records no pixel size" in m for m in notifications.errors())
    viewer.add_image(image, name="other pixel", scale=(0.5, 0.5))  # another pixel size: resampled by dm.simulate
    sim.fluo_combo.set_layer(viewer.layers["other pixel"])
    assert "resampled" in sim.sampling.text()
    _wait(qtbot, sim.run())
    assert sim.last_layer.metadata["napari_dmicro"]["attrs"]["source_pixel_size_um"] == 0.5
    assert len(notifications.errors()) == 1  # only the unscaled layer's
    rec = ReconstructWidget(viewer)
    rec.meas_combo.set_layer(sim.last_layer)
    rec.model_combo.select(entry.name)
    _wait(qtbot, rec.run())
    out = viewer.layers[-1]  # the reconstruction comes back on the 0.5 µm image's grid
    assert out.data.shape == image.shape and tuple(out.scale) == pytest.approx((0.5, 0.5))
    (data, kwargs, _), = image_layers(ImageData(image, "fluorescence", 0.325, 0.52, {}), name="store")
    layer = viewer.add_image(data, **kwargs)
    layer.scale = (0.4, 0.4)  # a scale that contradicts the file's pixel size
    sim.fluo_combo.set_layer(layer)
    assert sim.run() is None
    assert any("records 0.325 µm" in m for m in notifications.errors())

    # a fluorescence measurement with a phase model: refused, naming the modality
    layer.scale = (0.325, 0.325)
    _wait(qtbot, sim.run())
    rec = ReconstructWidget(viewer)
    rec.meas_combo.set_layer(sim.last_layer)
    rec.model_combo.select("lff-x64")
    assert rec.run() is None
    assert any("is a fluorescence measurement" in m and "phase (QPM) model" in m for m in notifications.errors())
