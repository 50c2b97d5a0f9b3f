"""The background-referenced phase convention: the background phase is found within 0.02 rad on fields
whose truth is known, and referenced, unwrapped phase has no wrap artefacts."""

import math

import numpy as np
import pytest

from napari_dmicro.phantoms import make_fields
from napari_dmicro.phase_reference import background_phase_rad, referenced_phase_rad, wrap_referenced_rad


def _cells(shape=(256, 256), peaks=(1.0, 2.5, 4.0, 5.5), background_rad=0.0, noise_rad=0.08, seed=0):
    """Round cells (spherical caps, radius 30 px) on a noisy background; returns (field, true phase)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    phase = np.zeros(shape)
    centres = [(64, 64), (64, 192), (192, 64), (192, 192)]
    for (cy, cx), peak in zip(centres, peaks, strict=False):
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0 ** 2
        phase = np.maximum(phase, peak * np.sqrt(np.clip(1 - r2, 0, None)))
    true = phase + rng.normal(0, noise_rad, shape)
    field = np.exp(1j * (true + background_rad)) * (1 + rng.normal(0, 0.05, shape))
    return field.astype(np.complex64), true


def _circ(a, b):
    return abs(math.remainder(a - b, 2 * math.pi))


@pytest.mark.parametrize("background_rad", [0.0, 0.15, -0.3, 3.1, -2.0])
def test_background_phase_within_20_mrad_on_cell_fields(background_rad):
    field, _ = _cells(background_rad=background_rad)
    assert _circ(background_phase_rad(field), background_rad) < 0.02
    # a phase map (rad) works the same, and so does a dense field (cells over ~60 %)
    assert _circ(background_phase_rad(np.angle(field)), background_rad) < 0.02
    dense, _ = _cells(shape=(128, 128), peaks=(3.0, 4.0, 5.0, 2.0), background_rad=background_rad, seed=1)
    assert _circ(background_phase_rad(dense), background_rad) < 0.02


def test_background_phase_of_phantoms_follows_a_global_offset():
    fields = make_fields(2, seed=5, size_px=192)
    for field in fields:
        field = np.asarray(field)
        base = background_phase_rad(field)
        shifted = background_phase_rad(field * np.exp(1j * 0.7).astype(np.complex64))
        assert _circ(shifted, base + 0.7) < 0.02


def test_block_by_block_equals_whole():
    field, _ = _cells(background_rad=0.4)
    assert background_phase_rad(field, block_px=50) == pytest.approx(background_phase_rad(field), abs=1e-3)


def test_referenced_phase_has_no_wrap_artefacts():
    """Background noise dips below 0 and a 5.5 rad cell: both keep their values (no 2π jumps)."""
    field, true = _cells(background_rad=0.0, noise_rad=0.08)
    ref = referenced_phase_rad(field)
    background = true < 0.3  # the noisy background (and cell rims)
    assert float(ref[background].min()) > -0.6        # below 0 stays slightly negative, never ~2π
    assert float(np.mean(ref[background] < 0)) > 0.3  # and there are such pixels
    assert float(np.sqrt(np.mean((ref - true) ** 2))) < 0.02  # unwrapped everywhere, background at 0
    assert float(ref[192, 192]) == pytest.approx(float(true[192, 192]), abs=0.05)  # the 5.5 rad core
    # anchored whatever the field's absolute phase (here −2 rad: the background wraps under the old mod-2π rule)
    shifted = referenced_phase_rad(field * np.exp(-2j).astype(np.complex64))
    np.testing.assert_allclose(shifted, ref, atol=0.03)
    old = np.mod(np.angle(field), 2 * np.pi)
    assert float(old[background].max()) > 6.0  # what the absolute convention does to the same background


def test_wrapped_reference_keeps_negative_noise_negative():
    field, true = _cells(background_rad=1.0, peaks=(1.0, 2.0, 3.0, 4.0))
    out = wrap_referenced_rad(field, background_phase_rad(field))
    np.testing.assert_allclose(out, true, atol=0.03)
