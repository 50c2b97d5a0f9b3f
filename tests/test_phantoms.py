"""Tests of the HeLa-like phantom generator (napari_dmicro.phantoms). CPU only, a few seconds in total."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage

from napari_dmicro.phantoms import (
    PHASE_MAX_RAD,
    PhantomConfig,
    field_seed,
    field_statistics,
    make_field,
    make_fields,
    make_phase_amplitude,
)

TWO_PI = 2 * math.pi
#: Cell-free fields: only the residual background and the noise.
EMPTY = PhantomConfig(cell_count_per_mm2=(0.0, 0.0), debris_count_per_mm2=(0.0, 0.0))


@pytest.fixture(scope="module")
def full_field():
    return make_field(11)


def _wrapped_angle(field):
    return np.mod(np.angle(field.astype(np.complex128)), TWO_PI)


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_bit_identical_different_seed_differs():
    a = make_field(3, size_px=256)
    b = make_field(3, size_px=256)
    c = make_field(4, size_px=256)
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    assert not np.array_equal(a, c)
    pa, aa = make_phase_amplitude(3, size_px=256)
    pb, ab = make_phase_amplitude(3, size_px=256)
    assert np.array_equal(pa, pb) and np.array_equal(aa, ab)


def test_make_fields_uses_seed_sequence_per_field():
    fields = list(make_fields(3, seed=7, size_px=128))
    assert len(fields) == 3
    for k, f in enumerate(fields):
        assert np.array_equal(f, make_field(field_seed(7, k), size_px=128))
    assert not np.array_equal(fields[0], fields[1])
    assert not np.array_equal(fields[0], next(make_fields(1, seed=8, size_px=128)))
    assert list(make_fields(0, size_px=64)) == []


def test_bad_seed_rejected():
    with pytest.raises(ValueError):
        make_field(-1, size_px=64)


# --- dtype, shape, range ----------------------------------------------------------------------------


def test_full_field_dtype_and_shape(full_field):
    assert full_field.dtype == np.complex64
    assert full_field.shape == (789, 789)
    assert np.isfinite(full_field).all()


@pytest.mark.parametrize("size", [256, (256, 256), (300, 200)])
def test_custom_size(size):
    f = make_field(1, size_px=size)
    expected = (size, size) if isinstance(size, int) else size
    assert f.shape == expected and f.dtype == np.complex64
    p, a = make_phase_amplitude(1, PhantomConfig(size_px=expected))
    assert p.shape == a.shape == expected


def test_phase_in_range_and_matches_field():
    # thick cells (clipping at 2π) and no background offset (clipping at 0) exercise both ends
    cfg = PhantomConfig(max_phase_rad=(6.0, 6.28), background_offset_rad=0.0, cell_count_per_mm2=(800, 800))
    p, a = make_phase_amplitude(2, cfg, size_px=256)
    assert p.dtype == np.float32 and a.dtype == np.float32
    assert p.min() == 0.0
    assert p.max() <= np.float32(PHASE_MAX_RAD) and float(p.max()) < TWO_PI
    assert float(p.max()) > 6.0  # the top is reached (clipped), not wrapped
    f = make_field(2, cfg, size_px=256)
    ang = _wrapped_angle(f)
    assert ang.min() >= 0.0 and ang.max() < TWO_PI
    diff = np.angle(np.exp(1j * (ang - p.astype(np.float64))))
    assert np.abs(diff).max() < 1e-5
    assert np.allclose(np.abs(f), a, rtol=1e-5)


def test_default_field_phase_range(full_field):
    ang = _wrapped_angle(full_field)
    assert ang.min() >= 0.0 and ang.max() < TWO_PI
    s = field_statistics(full_field)
    # clipping is rare with the default offset
    assert s["clipped_zero_fraction"] < 0.01
    assert s["clipped_two_pi_fraction"] < 0.01


# --- background -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_background_offset_slow_variation_and_noise(seed):
    cfg = EMPTY
    p, _ = make_phase_amplitude(seed, cfg, size_px=320)
    p = p.astype(np.float64)
    # mean near the configured offset (± jitter, + the mean of the slow field)
    tol = cfg.background_offset_jitter_rad + 0.6 * cfg.background_amplitude_rad
    assert abs(p.mean() - cfg.background_offset_rad) < tol
    # slow part spans about ±0.1 rad, residual is noise of the configured std
    smooth = ndimage.gaussian_filter(p, 8)[16:-16, 16:-16]
    assert 0.14 < np.ptp(smooth) < 0.22
    resid = (p - ndimage.gaussian_filter(p, 8)).std()
    assert 0.5 * cfg.noise_std_rad[0] < resid < 1.2 * cfg.noise_std_rad[1]
    assert 0.02 < p.std() < 0.09
    assert np.mean(p == 0) < 0.02


def test_background_statistics_of_cell_field(full_field):
    cfg = PhantomConfig()
    s = field_statistics(full_field)
    assert s["background_fraction"] > 0.05
    assert abs(s["background_mean_rad"] - cfg.background_offset_rad) < 0.08
    assert 0.01 < s["background_std_rad"] < 0.1


def test_no_background_variation_is_flat():
    cfg = PhantomConfig(
        cell_count_per_mm2=(0, 0), debris_count_per_mm2=(0, 0), background_amplitude_rad=0.0,
        background_offset_jitter_rad=0.0, noise_std_rad=(0.0, 0.0),
    )
    p, _ = make_phase_amplitude(0, cfg, size_px=64)
    assert np.allclose(p, cfg.background_offset_rad, atol=1e-6)


# --- amplitude --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_amplitude_nearly_flat_and_weakly_coupled(seed):
    cfg = PhantomConfig(cell_count_per_mm2=(1500, 1500))  # dense: the hardest case for leakage
    f = make_field(seed, cfg, size_px=400)
    s = field_statistics(f)
    assert s["cell_area_fraction"] > 0.4
    assert abs(s["amplitude_mean"] - 1) < 0.03
    assert s["amplitude_std"] / s["amplitude_mean"] < 0.03
    assert 0.9 < s["amplitude_min"] and s["amplitude_max"] < 1.1
    assert abs(s["amplitude_phase_corr"]) < 0.4


def test_strong_absorption_would_be_detected():
    # guards the test above: a phase-driven absorber shows up as a strong correlation
    cfg = PhantomConfig(cell_count_per_mm2=(1500, 1500), absorption=0.08, absorption_phase_coupling=1.0,
                        illumination_nonuniformity=0.0)
    s = field_statistics(make_field(0, cfg, size_px=400))
    assert s["amplitude_phase_corr"] < -0.9


# --- cells ------------------------------------------------------------------------------------------


def test_fields_vary_across_seeds():
    fractions = [field_statistics(f)["cell_area_fraction"] for f in make_fields(8, seed=0, size_px=400)]
    assert max(fractions) - min(fractions) > 0.2
    assert len({round(x, 4) for x in fractions}) == 8


def test_density_range_controls_cover():
    sparse = PhantomConfig(cell_count_per_mm2=(50, 50))
    dense = PhantomConfig(cell_count_per_mm2=(1500, 1500))
    def cover(cfg):
        fields = [make_field(s, cfg, size_px=320) for s in range(3)]
        return np.mean([field_statistics(f)["cell_area_fraction"] for f in fields])

    fs, fd = cover(sparse), cover(dense)
    assert fd > 0.5 and fs < 0.25 and fd > 2 * fs


def test_nuclei_present_and_cytoplasm_levels():
    cfg = PhantomConfig(cell_count_per_mm2=(400, 400), mitotic_fraction=0.0)
    p, _ = make_phase_amplitude(3, cfg, size_px=400)
    s = field_statistics(p)
    assert s["phase_max"] > 0.75 * cfg.max_phase_rad[0]
    assert np.mean(p > 2.5) > 0.005  # nuclei cover a visible fraction at high phase
    assert s["phase_p999"] > 3.0
    assert 0.8 < s["cell_phase_mean"] < 3.0  # mostly cytoplasm, ~1–2.5 rad


def test_max_phase_range_controls_peak():
    low = PhantomConfig(
        max_phase_rad=(2.0, 2.0), cytoplasm_phase_rad=(0.8, 1.0), cell_count_per_mm2=(400, 400)
    )
    p, _ = make_phase_amplitude(0, low, size_px=300)
    # peak ≤ nuclear peak + nucleolus + granule + background + noise
    assert 1.5 < p.max() < 2.0 + 0.6 + 0.4 + 0.4


def test_mitotic_cells_are_compact_and_high():
    cfg = PhantomConfig(mitotic_fraction=1.0, cell_count_per_mm2=(300, 300), debris_count_per_mm2=(0, 0))
    p, _ = make_phase_amplitude(1, cfg, size_px=400)
    lab, n = ndimage.label(p > 0.5)
    assert n >= 3
    sizes = ndimage.sum_labels(np.ones_like(p), lab, index=np.arange(1, n + 1))
    # a 20 µm sphere covers ≈ 3140 px at 0.3164 µm; doublets/merged pairs at most a few of those
    assert np.median(sizes) < 4000
    assert p.max() > 0.75 * cfg.max_phase_rad[0]


def test_edges_are_smooth_without_noise():
    cfg = PhantomConfig(noise_std_rad=(0.0, 0.0), cell_count_per_mm2=(800, 800), mitotic_fraction=0.3)
    p, _ = make_phase_amplitude(6, cfg, size_px=400)
    jump = max(np.abs(np.diff(p, axis=0)).max(), np.abs(np.diff(p, axis=1)).max())
    assert jump < 2.0  # a hard-edged nucleus would jump by its full height (~3–5 rad)


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size_px": (-5, 100)},
        {"size_px": (0, 0)},
        {"cell_diameter_um": (50.0, 20.0)},
        {"cell_count_per_mm2": (-1.0, 10.0)},
        {"max_phase_rad": (3.0, TWO_PI)},
        {"max_phase_rad": (3.0, 7.0)},
        {"noise_std_rad": (0.03, 0.01)},
        {"mitotic_fraction": 1.5},
        {"absorption": -0.01},
        {"pixel_size_um": 316.4e-9},
        {"not_a_parameter": 1},
    ],
)
def test_bad_config_raises_validation_error(kwargs):
    with pytest.raises(ValidationError):
        PhantomConfig(**kwargs)


def test_bad_size_override_raises_validation_error():
    with pytest.raises(ValidationError):
        make_field(0, size_px=-3)


def test_config_frozen_and_json_roundtrip():
    cfg = PhantomConfig(size_px=128)
    assert cfg.size_px == (128, 128)
    with pytest.raises(ValidationError):
        cfg.size_px = (64, 64)
    assert PhantomConfig.model_validate_json(cfg.model_dump_json()) == cfg


# --- statistics helper ------------------------------------------------------------------------------


def test_field_statistics_on_known_input():
    phase = np.full((100, 100), 0.1)
    phase[40:60, 40:60] = 3.0
    phase[0, 0] = 0.0
    phase[99, 99] = PHASE_MAX_RAD
    field = (np.exp(1j * phase)).astype(np.complex64)
    s = field_statistics(field)
    assert s["cell_area_fraction"] == pytest.approx(401 / 10000)
    assert s["background_mean_rad"] == pytest.approx(0.1, abs=1e-4)
    assert s["background_std_rad"] < 5e-3
    assert s["clipped_zero_fraction"] == pytest.approx(1e-4)
    assert s["clipped_two_pi_fraction"] == pytest.approx(1e-4)
    assert s["amplitude_mean"] == pytest.approx(1.0, abs=1e-5)
    sr = field_statistics(phase)  # a real phase map is accepted too
    assert sr["cell_area_fraction"] == s["cell_area_fraction"] and math.isnan(sr["amplitude_mean"])


# --- realistic specimens: round cells, dense fields, measured-like noise ----------------------------

from napari_dmicro.phantoms import STYLES, specimen_statistics  # noqa: E402

#: a plain sphere: no nucleus, no nucleoli
SPHERE = PhantomConfig(size_px=128, round_nucleus_phase_fraction=(0.0, 0.0), nucleolus_count=(0, 0))


def test_a_round_cell_is_a_spherical_cap_at_its_centre_and_half_radius():
    from napari_dmicro.phantoms.cells import _Scene

    scene = _Scene(SPHERE, np.random.default_rng(0))
    radius_px = 10.0 / SPHERE.pixel_size_um  # a 20 µm cell
    scene.round_cell(64.0, 64.0, 2 * radius_px, 4.0)
    cell = scene.round_phase
    assert cell[64, 64] == pytest.approx(4.0, abs=0.01)  # P at the centre
    yy, xx = np.indices(cell.shape)
    rho = np.hypot(yy - 64.0, xx - 64.0)
    # the cell is slightly elliptical (aspect ≤ 1.12): compare the azimuthal mean at ρ = R/2
    ring = np.abs(rho - radius_px / 2) < 0.7
    assert cell[ring].mean() == pytest.approx(4.0 * math.sqrt(1 - 0.25), abs=0.1)  # P·sqrt(1 − 1/4)
    assert cell[ring].min() > 4.0 * math.sqrt(1 - 0.53**2) - 0.05
    assert (cell > 0.5).sum() * SPHERE.pixel_size_um**2 == pytest.approx(math.pi * 10.0**2 * (1 - (0.5 / 4) ** 2),
                                                                         rel=0.1)
    assert cell[rho > 1.1 * radius_px].max() == 0.0  # nothing outside the (smoothed) rim


def test_styles_are_named_configs_and_unknown_styles_are_refused():
    assert PhantomConfig.style("classic") == PhantomConfig()
    assert PhantomConfig.realistic() == PhantomConfig.style("realistic")
    assert set(STYLES) == {"classic", "realistic", "round", "dense"}
    assert not PhantomConfig.realistic().clip_phase and PhantomConfig.realistic().has_round_cells
    with pytest.raises(ValueError, match="unknown phantom style"):
        PhantomConfig.style("fancy")
    with pytest.raises(ValidationError):
        PhantomConfig(field_kind_weights=(0.0, 0.0, 0.0))


@pytest.fixture(scope="module")
def round_stats():
    cfg = PhantomConfig.style("round", size_px=400, nominal_cover=(0.3, 0.3))
    return [specimen_statistics(*make_phase_amplitude(field_seed(1, k), cfg)) for k in range(4)]


def test_round_cell_fields_are_as_thick_as_measured_hl60(round_stats):
    # measured HL60 (../shared/realdata, 316.4 nm): 51–56 % of the cell pixels at 3–5 rad; classic phantoms ~7 %
    thick = np.mean([s["thick_fraction_3_5"] for s in round_stats])
    assert 0.42 < thick < 0.65
    classic = specimen_statistics(*make_phase_amplitude(field_seed(1, 0), PhantomConfig(size_px=400)))
    assert classic["thick_fraction_3_5"] < 0.25


def test_realistic_background_and_amplitude_statistics_are_in_the_measured_ranges(round_stats):
    for s in round_stats:
        assert 0.04 < s["background_phase_std_rad"] < 0.11  # measured 0.05 / 0.10 rad
        assert 0.035 < s["background_amplitude_std"] < 0.09  # measured 5.1 % / 8.4 %
        assert 0.05 < s["cell_amplitude_std"] < 0.16  # measured 11–15 %


def test_cell_amplitude_is_partly_independent_of_phase_and_rings_sit_at_edges():
    cfg = PhantomConfig.style("round", size_px=320, nominal_cover=(0.3, 0.3), background_amplitude_std=(0, 0),
                              cell_amplitude_std=(0, 0))
    p, a = make_phase_amplitude(3, cfg)
    mask = p > 1.0
    edge = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_erosion(mask, iterations=2)  # ±2 px rims
    inside = ndimage.binary_erosion(p > 1.0, iterations=6)
    assert np.abs(a[edge] - 1).max() > 0.2  # refraction rings at the rims
    assert a[edge].std() > 2 * a[inside].std()  # the variation sits at the rims, not inside
    textured = PhantomConfig.style("round", size_px=320, nominal_cover=(0.3, 0.3), edge_ring_defocus_um=(0, 0))
    p, a = make_phase_amplitude(3, textured)
    inside = ndimage.binary_erosion(p > 1.0, iterations=6)
    assert abs(np.corrcoef(a[inside], p[inside])[0, 1]) < 0.5  # amplitude does not just track the phase
    assert 0.04 < a[inside].std() / a[inside].mean() < 0.16


def test_dense_fields_reach_confluence_and_sparse_fields_exist():
    dense = [specimen_statistics(make_phase_amplitude(field_seed(2, k), PhantomConfig.style("dense", size_px=320))[0])
             for k in range(3)]
    assert max(s["cover"] for s in dense) > 0.8 and min(s["cover"] for s in dense) > 0.6
    assert max(s["above_two_pi_fraction"] for s in dense) < 1e-3  # stacked cells saturate below 2π
    sparse = PhantomConfig.realistic(size_px=320, nominal_cover=(0.03, 0.03))
    assert specimen_statistics(make_phase_amplitude(0, sparse)[0])["cover"] < 0.1


def test_the_soft_ceiling_is_monotonic_identity_below_its_knee_and_stays_below_the_ceiling():
    from napari_dmicro.phantoms.generate import soft_ceiling

    x = np.linspace(0, 20, 2001, dtype=np.float32)
    y = soft_ceiling(x, 6.1)
    assert np.array_equal(y[x <= 4.9], x[x <= 4.9])
    assert np.all(np.diff(y) >= 0) and y.max() <= 6.1 + 1e-5  # rad; tanh saturates in float32
    assert y[np.searchsorted(x, 5.5)] == pytest.approx(5.45, abs=0.02)  # a 5.5 rad cell barely changes


def test_realistic_phase_is_the_true_unclipped_phase():
    cfg = PhantomConfig.realistic(size_px=256)
    p, a = make_phase_amplitude(4, cfg)
    assert p.min() < 0.0  # noise below 0 is kept (not clipped), the background stays near 0.15 rad
    assert abs(float(np.median(p[p < 0.5])) - cfg.background_offset_rad) < 0.05
    f = make_field(4, cfg)
    np.testing.assert_allclose(np.angle(f * np.exp(-1j * p)), 0, atol=1e-5)  # the field is exp(i·true phase)
    np.testing.assert_allclose(np.abs(f), a, rtol=1e-5)


@pytest.mark.parametrize("style", ["realistic", "round", "dense"])
def test_every_style_reproduces_from_its_seed(style):
    cfg = PhantomConfig.style(style, size_px=160)
    a, b = make_field(field_seed(5, 2), cfg), make_field(field_seed(5, 2), cfg)
    assert np.array_equal(a, b) and not np.array_equal(a, make_field(field_seed(5, 3), cfg))


def test_the_classic_default_still_makes_the_shipped_sample_data():
    from pathlib import Path

    from napari_dmicro.io.fields import read_field

    stored = sorted((Path(__file__).resolve().parents[1] / "sample_data").glob("phantom_*.zarr"))
    assert len(stored) == 3
    for path, fresh in zip(stored, make_fields(3, seed=100, config=PhantomConfig.style("classic"), size_px=256),
                           strict=True):
        old = np.asarray(read_field(path).data)
        assert np.abs(np.angle(old * np.conj(fresh))).max() < 1e-4  # rad: float32 rounding only
        assert np.abs(np.abs(old) - np.abs(fresh)).max() < 1e-5 * np.abs(fresh).max()


def test_specimen_statistics_on_a_known_disk():
    phase = np.full((100, 100), 0.2)
    yy, xx = np.indices(phase.shape)
    disk = np.hypot(yy - 50, xx - 50) < 20
    phase[disk] = 3.5  # all cell pixels at 3.3 rad above the background
    s = specimen_statistics(phase, np.ones_like(phase))
    assert s["cover"] == pytest.approx(disk.mean())
    assert s["phase_hist"]["3-4"] == pytest.approx(1.0) and s["thick_fraction_3_5"] == pytest.approx(1.0)
    assert s["background_phase_std_rad"] < 1e-9 and s["background_amplitude_std"] < 1e-9
    with pytest.raises(ValueError, match="unwrapped"):
        specimen_statistics(np.exp(1j * phase))


def test_the_phantom_command_writes_the_chosen_style(tmp_path):
    from napari_dmicro.cli import main
    from napari_dmicro.io.fields import read_field

    assert main(["phantom", "--out", str(tmp_path), "--count", "2", "--size", "96", "--seed", "3",
                 "--style", "round"]) == 0
    stored = read_field(tmp_path / "phantom_0001.zarr")
    assert stored.attrs["style"] == "round"
    expected = make_field(field_seed(3, 1), PhantomConfig.style("round", size_px=96))
    assert np.abs(np.angle(np.asarray(stored.data) * np.conj(expected))).max() < 1e-4
    with pytest.raises(SystemExit):
        main(["phantom", "--out", str(tmp_path / "x"), "--style", "fancy"])
