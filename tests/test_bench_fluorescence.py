"""The fluorescence benchmark harness (benchmarks/bench_fluorescence.py, report_fluorescence.py) on a tiny untrained
task-aware model and two small generator fields: the results file's structure, metrics recomputable from the
recorded seeds, the run's initial patterns recovered, and the report's verdicts and missing models."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import napari_dmicro as dm
from napari_dmicro.decoders import decoder_config
from napari_dmicro.fluorescence import FluorescenceDetectorConfig, FluorescenceEncoderConfig, PatternConfig
from napari_dmicro.instances import classical_nuclei
from napari_dmicro.io.checkpoints import save_checkpoint
from napari_dmicro.io.store import write_fluorescence
from napari_dmicro.metrics import psnr
from napari_dmicro.phantoms.fluorescence import make_fluorescence_field
from napari_dmicro.segmentation_metrics import dice
from napari_dmicro.system import FluorescenceSystemConfig
from napari_dmicro.training.fluo_data import normalise_unit_range
from napari_dmicro.training.initial import initial_microscope

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_fluorescence as bf  # noqa: E402
import report_fluorescence as rf  # noqa: E402

SEED = 3


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("fluo_bench")
    enc = FluorescenceEncoderConfig(patterns=PatternConfig(n_patterns=4),
                                    detector=FluorescenceDetectorConfig(bin_px=8, photons_per_unit=100.0,
                                                                        read_noise_e=2.0))
    cfg = FluorescenceSystemConfig(encoder=enc, decoder=decoder_config("locality-tiny", 8, in_chans=4, seg_head=True))
    model = initial_microscope(cfg, SEED).eval()  # the run's start, as training draws it
    model.fit_measurement_normalization(model.measure(torch.rand(2, 64, 64)))
    model.init_decoder_from_patterns()
    run = root / "tiny-run"
    run.mkdir()
    card = {"preset": "tiny", "train_config": {"seed": SEED, "optics_init": "random",
                                               "stages": [{"name": "reconstruct", "steps": 5, "freeze_optics": False}]}}
    save_checkpoint(run / "model.safetensors", model, card)
    data = root / "fields"
    for k in range(2):
        f = make_fluorescence_field(7, k, size_px=96)
        write_fluorescence(data / f"nuclei_{k:04d}.zarr", f.image, f.labels, pixel_size_um=f.pixel_size_um,
                           emission_wavelength_um=0.461, attrs={"seed": f.seed, "index": f.index, "style": f.style})
    measured = root / "measured"
    measured.mkdir()
    f = make_fluorescence_field(8, 0, size_px=64, pixel_size_um=0.5)
    tifffile.imwrite(measured / "img2d.tif", (f.image * 200).astype(np.uint16))
    tifffile.imwrite(measured / "mask2d.tif", f.labels.astype(np.uint16))
    results = root / "results"
    argv = ["--model", f"tiny={run}", "--data", str(data), "--measured", str(measured), "--photon-curve", "tiny",
            "--photon-fields", "1", "--timing-threads", "1", "--results", str(results)]
    assert bf.main(argv) == 0
    return json.loads((results / "fluorescence_tiny.json").read_text()), data, run


def test_results_file_has_every_section_with_its_conditions(bench):
    r, _, _ = bench
    assert r["command"].startswith("python benchmarks/bench_fluorescence.py --model tiny=")
    assert {"date", "cpu", "load_average_start", "load_average_end"} <= set(r["machine"])
    assert r["model"]["compression"] == 16 and r["model"]["photons_per_unit"] == 100.0 and r["model"]["seg_head"]
    h = r["heldout"]
    assert h["fields"] == 2 and len(h["per_field"]) == 2
    assert {"task_aware", "classical"} <= set(h) and {"task_aware", "classical"} <= set(h["per_field"][0])
    assert set(h["by_brightness"]) == {"quartiles_true_mean", "dim", "bright", "all"}
    assert sum(s["fields"] for s in h["by_cover"].values()) == 2
    assert r["classical_on_truth"]["fields"] == 2
    m = r["measured"]
    # dm.simulate resamples 0.5 → 0.325 µm; the reconstruction is scored on the image's own grid and mask
    assert m["pixel_size_um_assumed"] == 0.5 and m["scored_on_pixel_size_um"] == 0.5 and m["shape"] == [64, 64]
    assert [p["photons_per_unit"] for p in r["photon_curve"]] == [10.0, 30.0, 100.0, 300.0, 1000.0, None]
    assert r["timing"]["threads"] == 1 and len(r["timing"]["walls_s"]) == 5
    assert r["training"]["arm"] == "learned" and r["training"]["seed"] == SEED
    assert h["generator_seeds"] == [7] and h["per_field"][1]["generator"]["index"] == 1


def test_patterns_of_the_runs_start_are_recovered(bench):
    r, _, _ = bench
    # the model was saved at its initialisation: no mirror moved
    assert r["patterns"]["mirrors_flipped_fraction"] == 0.0
    assert r["patterns"]["init"] == f"random (seed {SEED})"


def test_metrics_are_recomputable_from_the_recorded_seed(bench):
    r, data, run = bench
    row = r["heldout"]["per_field"][0]
    model = dm.load_model(run)
    fluo = bf.heldout_fields(data, 1).__next__()[1]
    det = model.config.encoder.detector
    meas = dm.simulate(fluo.image, model, photons=det.photons_per_unit, read_noise=det.read_noise_e, seed=row["seed"])
    pred = np.clip(dm.reconstruct(meas, model), 0, 1)
    truth = normalise_unit_range(fluo.image)
    assert float(psnr(torch.from_numpy(pred), torch.from_numpy(truth))[0]) == pytest.approx(row["psnr_db"], abs=1e-3)
    labels = classical_nuclei(pred, model.config.encoder.pixel_size_um)
    assert dice(labels, fluo.labels) == pytest.approx(row["classical"]["dice"], abs=1e-9)
    assert dice(dm.segment(meas, model), fluo.labels) == pytest.approx(row["task_aware"]["dice"], abs=1e-9)
    mean = np.mean([f["psnr_db"] for f in r["heldout"]["per_field"]])
    assert r["heldout"]["psnr_db"] == pytest.approx(mean, abs=1e-9)


def test_report_states_targets_and_names_missing_models(bench, monkeypatch, tmp_path):
    r, _, _ = bench
    import report_models

    monkeypatch.setattr(report_models, "IMAGES", tmp_path)
    x64 = json.loads(json.dumps(r))
    x64["name"], x64["model"]["compression"] = "fluo-x64", 64.0
    x64["heldout"]["psnr_db"], x64["model"]["seg_head"] = 28.5, False
    base = json.loads(json.dumps(x64))
    base["name"], base["training"]["arm"] = "fluo-x64-random-frozen", "random-frozen"
    base["heldout"]["psnr_db"] = 28.0
    from_design = json.loads(json.dumps(x64))
    from_design["name"], from_design["training"]["arm"] = "fluo-x64-hadamard-learned", "learned-from-hadamard"
    from_design["heldout"]["psnr_db"] = 29.5
    lines = "\n".join(rf.section({"fluo-x64": x64, "fluo-x64-random-frozen": base,
                                  "fluo-x64-hadamard-learned": from_design}))
    assert "learned-from-hadamard (fluo-x64-hadamard-learned" in lines and "29.50 dB, +1.50 dB over the best" in lines
    assert "x64 ≥ 30 dB: 28.50 dB (**missed by 1.50 dB**; fluo-x64 (run unfinished)" in lines
    assert "+0.50 dB over the best designed (random-frozen" in lines and "**missed by 0.50 dB**" in lines
    assert "fluo-x256" in lines and "not measured" in lines  # a model without results is named, never scored
    assert "fluo-x64-hadamard-frozen" in lines
    # a second seed: each learned run against the best design of its own seed, the verdict on their mean
    x64_s1, base_s1 = json.loads(json.dumps(x64)), json.loads(json.dumps(base))
    x64_s1["name"], base_s1["name"] = "fluo-x64-s1", "fluo-x64-random-frozen-s1"
    x64_s1["training"]["seed"] = base_s1["training"]["seed"] = x64["training"]["seed"] + 1
    x64_s1["heldout"]["psnr_db"], base_s1["heldout"]["psnr_db"] = 27.0, 25.0
    two = "\n".join(rf.section({"fluo-x64-s1": x64_s1, "fluo-x64": x64, "fluo-x64-random-frozen": base,
                                "fluo-x64-random-frozen-s1": base_s1}))
    assert "28.50 dB, +0.50 dB over the best designed (random-frozen; random-frozen 28.00 dB)" in two
    first = x64["training"]["seed"]
    assert f"seed {first} +0.50 dB" in two and f"seed {first + 1} +2.00 dB" in two and "mean +1.25 dB (met)" in two
    assert "x64 ≥ 30 dB: 28.50 dB" in two  # the shipped (first-seed) model is the one scored against the target
    # a wall time off 2 idle cores decides only when it is under the target anyway (an upper bound)
    for slow, verdict in ((0.5, "met — median 0.50 s on 1 thread(s)"), (1.5, "not decided — measured on 1 thread(s)")):
        x64["timing"].update(median_s=slow, threads=1, load_average_before=[5.0, 5.0, 5.0])
        assert verdict in "\n".join(rf.section({"fluo-x64": x64}))


def test_dsb_gap_pairs_each_x64_model_with_the_full_resolution_network_of_its_own_seed(bench):
    r, _, _ = bench
    assert "task_aware" in r["measured"]

    def seg(name, seed, dice, full=False):
        m = json.loads(json.dumps(r))
        m["name"], m["training"]["seed"], m["measured"]["task_aware"]["dice"] = name, seed, dice
        m["model"]["compression"], m["model"]["seg_head"] = (1.0 if full else 64.0), True
        if full:
            m["role"] = "full-resolution"
        return m

    records = {m["name"]: m for m in (seg("x64-s0", 0, 0.80), seg("full-s0", 0, 0.90, True),
                                      seg("x64-s1", 1, 0.83), seg("full-s1", 1, 0.86, True))}
    lines = "\n".join(rf.targets_lines(records))
    assert "x64-s0 0.800 vs full-s0 0.900 (**missed by 0.050**" in lines  # never against the other seed's network
    assert "x64-s1 0.830 vs full-s1 0.860 (met" in lines
    assert "over 2 seeds" in lines and "mean gap 0.065 (**missed by 0.015**)" in lines
