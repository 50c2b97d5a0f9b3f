"""Full-field inference: blockwise LFF simulation, tiled PhaseD2NN, blended reconstruction, memory."""

import json
import tracemalloc

import dask.array as da
import numpy as np
import pytest
import torch
import zarr
from torch import nn

from napari_dmicro.config import DetectorConfig, EncoderConfig, FourierFilterConfig
from napari_dmicro.inference import blend_weights, reconstruct_full_field, simulate_full_field, window_starts
from napari_dmicro.inference.blending import axis_weight_sum
from napari_dmicro.optics.grids import crop_with_surroundings


def _field(shape, seed=0):
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.5, 1.0, shape)
    return (amp * np.exp(1j * rng.uniform(0, 2 * np.pi, shape))).astype(np.complex64)


def _whole_field_reference(field, encoder):
    """Camera image computed in one go: the field extended by the outside rule far enough for the
    rounded-up camera and the PSF, one linear convolution, crop, |E|², bin."""
    b = encoder.config.detector.binning
    rows, cols = field.shape
    R, C = -(-rows // b) * b, -(-cols // b) * b
    m = encoder.context_px() + b
    with torch.no_grad():
        ext = crop_with_surroundings(torch.from_numpy(field), -m, -m, rows + 2 * m, cols + 2 * m,
                                     encoder.config.outside_field)
        det = encoder.detector_field(ext)[m:m + R, m:m + C]
        return encoder.detector.demagnify((det.real ** 2 + det.imag ** 2)[None])[0].numpy()


# ------------------------------------------------------------------------------- LFF simulation
@pytest.mark.parametrize("outside", ["reflect", "dark"])
@pytest.mark.parametrize("shape,block", [((300, 418), 64), ((97, 130), 32), ((45, 61), 2048), ((5, 3), 4)])
def test_blockwise_lff_simulation_equals_the_whole_field_computation(outside, shape, block, tiny_microscope):
    enc = tiny_microscope(outside_field=outside).encoder
    field = _field(shape, seed=shape[0])
    cam, attrs = simulate_full_field(field, enc, block_px=block)
    b = 4
    assert cam.dtype == np.float32 and cam.shape == (-(-shape[0] // b), -(-shape[1] // b))
    assert attrs["covered_object_px"] == [cam.shape[0] * b, cam.shape[1] * b]
    ref = _whole_field_reference(field, enc)
    np.testing.assert_allclose(cam, ref, rtol=1e-4, atol=2e-5 * ref.max())


def test_blocks_must_be_whole_camera_pixels(tiny_microscope):
    with pytest.raises(ValueError, match="multiple of the binning"):
        simulate_full_field(_field((40, 40)), tiny_microscope().encoder, block_px=30)


def test_noise_is_reproducible_seed_dependent_and_set_by_the_arguments(tiny_microscope):
    enc = tiny_microscope().encoder
    field = _field((120, 90))
    clean, _ = simulate_full_field(field, enc)
    a, attrs = simulate_full_field(field, enc, max_photons=1e3, read_noise_e=5.0, seed=3, block_px=32)
    b, _ = simulate_full_field(field, enc, max_photons=1e3, read_noise_e=5.0, seed=3, block_px=32)
    c, _ = simulate_full_field(field, enc, max_photons=1e3, read_noise_e=5.0, seed=4, block_px=32)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # another block size changes the clean image by float rounding only (~1 ulp); the Poisson sampler
    # may then consume its random stream differently (CPU kernels differ), so the draws need not match:
    # both are the same exposure, with Poisson + read-noise statistics around the same clean image
    clean_d, _ = simulate_full_field(field, enc)
    np.testing.assert_allclose(clean_d, clean, rtol=1e-5, atol=1e-6 * clean.max())
    d, _ = simulate_full_field(field, enc, max_photons=1e3, read_noise_e=5.0, seed=3)
    one_photon = clean.max() / 1e3  # intensity of one photon (the brightest pixel gets 1000)
    for noisy in (a, d):
        photons = clean / one_photon
        z = (noisy - clean) / one_photon / np.sqrt(photons + 5.0 ** 2)  # standardised residual
        assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15, (z.mean(), z.std())
    assert np.abs(a - c).max() > 3 * one_photon
    rel = np.abs(a - clean).mean() / clean.max()
    assert 1e-3 < rel < 0.1  # ~ 1/sqrt(1000) at the brightest pixel
    assert attrs["max_photons"] == 1e3 and attrs["read_noise_e"] == 5.0 and attrs["seed"] == 3
    assert enc.config.detector.max_photons is None  # the encoder is not modified
    with pytest.raises(ValueError, match="max_photons"):
        simulate_full_field(field, enc, read_noise_e=2.0)


def test_attrs_are_complete_and_json_serialisable(tiny_microscope):
    _, attrs = simulate_full_field(_field((50, 70)), tiny_microscope().encoder, max_photons=100.0)
    for key in ("field_shape", "covered_object_px", "compression", "binning", "camera_pixel_size_um",
                "object_pixel_size_um", "wavelength_um", "max_photons", "read_noise_e", "photon_reference",
                "seed", "optics", "acquisition", "outside_field"):
        assert key in attrs, key
    assert attrs["field_shape"] == [50, 70] and attrs["covered_object_px"] == [52, 72]
    assert attrs["optics"] == "lff" and attrs["acquisition"] == "single full-field image"
    assert attrs["camera_pixel_size_um"] == pytest.approx(4 * attrs["object_pixel_size_um"])
    assert json.loads(json.dumps(attrs)) == attrs


def test_dask_and_zarr_inputs_give_the_numpy_result(tmp_path, tiny_microscope):
    enc = tiny_microscope().encoder
    field = _field((150, 110), seed=5)
    ref, _ = simulate_full_field(field, enc, block_px=48, max_photons=500.0, seed=1)
    lazy, _ = simulate_full_field(da.from_array(field, chunks=(40, 70)), enc, block_px=48,
                                  max_photons=500.0, seed=1)
    np.testing.assert_array_equal(lazy, ref)
    z = zarr.open_array(store=str(tmp_path / "f.zarr"), mode="w", shape=field.shape, chunks=(64, 64),
                        dtype="complex64")
    z[:] = field
    from_zarr, _ = simulate_full_field(z, enc, block_px=48, max_photons=500.0, seed=1)
    np.testing.assert_array_equal(from_zarr, ref)


@pytest.mark.parametrize("bad,match", [
    (np.ones((8, 8), np.float32), "real dtype"),
    (np.ones((2, 8, 8), np.complex64), "2-D"),
    (np.ones((0, 8), np.complex64), "empty"),
    (np.full((8, 8), np.nan + 0j, np.complex64), "NaN"),
])
def test_bad_fields_are_refused_with_a_clear_message(bad, match, tiny_microscope):
    with pytest.raises(ValueError, match=match):
        simulate_full_field(bad, tiny_microscope().encoder)


def test_non_finite_values_in_a_lazy_field_are_found_blockwise(tiny_microscope):
    field = _field((64, 64))
    field[50, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        simulate_full_field(da.from_array(field, chunks=32), tiny_microscope().encoder, block_px=32)


def test_progress_is_reported_per_block(tiny_microscope):
    calls = []
    simulate_full_field(_field((70, 40)), tiny_microscope().encoder, block_px=32,
                        progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, 6) for k in range(1, 7)]


# ------------------------------------------------------------------------------ PhaseD2NN tiles
def test_phase_d2nn_acquires_the_field_tile_by_tile(tiny_microscope):
    model = tiny_microscope("d2nn")
    enc = model.encoder
    field = _field((300, 520), seed=2)
    cam, attrs = simulate_full_field(field, enc)
    assert cam.shape == (5 * 16, 9 * 16)  # ceil(300/64) × ceil(520/64) tiles of 16 camera pixels
    assert attrs["acquisition"] == "tiled 64x64 apertures, 45 acquisitions"
    assert attrs["n_acquisitions"] == 45 and attrs["tile_px"] == 64 and attrs["optics"] == "d2nn"
    assert attrs["covered_object_px"] == [320, 576] and attrs["field_shape"] == [300, 520]
    json.dumps(attrs)
    with torch.no_grad():
        tile = enc(torch.from_numpy(field[128:192, 64:128])).numpy()  # an interior tile
        np.testing.assert_allclose(cam[32:48, 16:32], tile, rtol=1e-5, atol=1e-6)
        # the last tile row is completed by mirroring the field beyond its edge
        edge = np.pad(field[256:300, 0:64], ((0, 20), (0, 0)), mode="reflect")
        np.testing.assert_allclose(cam[64:80, 0:16], enc(torch.from_numpy(edge)).numpy(),
                                   rtol=1e-5, atol=1e-6)
    # each tile is its own exposure: reproducible, seed dependent
    small = field[:100, :128]
    a, _ = simulate_full_field(small, enc, max_photons=200.0, seed=1)
    b, _ = simulate_full_field(small, enc, max_photons=200.0, seed=1)
    c, _ = simulate_full_field(small, enc, max_photons=200.0, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # every tile is exposed so that its own brightest pixel gets max_photons
    clean = cam[:16, :32]  # the first tile row lies inside the 100×128 field
    for ti in range(1):
        for tj in range(2):
            sl = np.s_[ti * 16:(ti + 1) * 16, tj * 16:(tj + 1) * 16]
            counts = a[sl] * 200.0 / clean[sl].max()
            assert np.allclose(counts, np.round(counts), atol=1e-3)  # whole photon counts per tile
    rec = reconstruct_full_field(cam, model)
    assert rec.shape == (320, 576) and rec.dtype == np.float32
    with torch.inference_mode():
        one = model.decode(torch.from_numpy(cam[16:32, 48:64])).numpy()
    np.testing.assert_allclose(rec[64:128, 192:256], one, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mosaic"):
        reconstruct_full_field(cam[:, :20], model)


# ------------------------------------------------------------------------------------- blending
@pytest.mark.parametrize("length", [1, 7, 32, 33, 50, 64, 100, 257])
@pytest.mark.parametrize("window,overlap", [(32, 0), (32, 16), (32, 5), (32, 31), (16, 8), (8, 7)])
def test_blend_weights_form_a_smooth_partition_of_unity(length, window, overlap):
    win = min(window, length)
    stride = min(window - overlap, win)
    starts = window_starts(length, win, stride)
    assert starts[0] == 0 and starts[-1] + win == length
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:], strict=False))
    for scale in (1, 4):
        total, weights = axis_weight_sum(length, starts, win, overlap, scale)
        assert total.min() > 0.0  # covered everywhere, never divided by ~0
        parts = np.zeros((len(starts), length * scale))
        for k, (s, wk) in enumerate(zip(starts, weights, strict=True)):
            parts[k, s * scale:(s + win) * scale] = wk / total[s * scale:(s + win) * scale]
        np.testing.assert_allclose(parts.sum(0), 1.0, atol=1e-12)
        if (length - win) % stride == 0 and 2 * overlap <= win:  # evenly spaced windows: the ramps alone sum to 1
            np.testing.assert_allclose(total, 1.0, atol=1e-12)
        assert total[0] == pytest.approx(1.0) and total[-1] == pytest.approx(1.0)  # border not down-weighted
        if overlap >= 5 and len(starts) > 1:  # smooth: no jumps (a seam would jump by ~0.5–1)
            # an evenly spaced raised cosine changes by at most π/(2·ramp) per pixel; the end-aligned
            # last window (and ramps longer than half a window) make some transitions a little steeper
            assert np.abs(np.diff(parts, axis=1)).max() < 4.0 / (overlap * scale)


def test_blend_weight_shape():
    w = blend_weights(16, 6, at_start=False, at_end=True)
    assert w.shape == (16,) and (w > 0).all() and (w[6:] == 1).all() and np.all(np.diff(w[:6]) > 0)
    np.testing.assert_allclose(w[:6] + w[:6][::-1], 1.0)
    assert (blend_weights(16, 6, at_start=True, at_end=True) == 1).all()


class _PixelDecoder(nn.Module):
    """Maps each camera pixel to a b×b block (1×1 conv + PixelShuffle): exactly translation equivariant."""

    def __init__(self, b):
        super().__init__()
        self.conv = nn.Conv2d(1, b * b, 1)
        self.shuffle = nn.PixelShuffle(b)

    def forward(self, x):
        return self.shuffle(torch.tanh(self.conv(x)))


@pytest.mark.parametrize("shape,overlap", [((75, 105), None), ((40, 33), 5), ((20, 90), 31), ((9, 7), None)])
def test_blended_stitching_is_exact_for_a_local_decoder(shape, overlap, tiny_microscope):
    model = tiny_microscope(img_size=32)
    model.decoder = _PixelDecoder(4)
    meas = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    rec = reconstruct_full_field(meas, model, overlap=overlap, batch_size=5)
    with torch.inference_mode():
        whole = model.decode(torch.from_numpy(meas)).numpy()
    assert rec.shape == (shape[0] * 4, shape[1] * 4) and rec.dtype == np.float32
    np.testing.assert_allclose(rec, whole, atol=1e-5)


def test_real_decoder_uses_the_overlap_and_validates_it(tmp_path, tiny_microscope):
    model = tiny_microscope(img_size=16)
    field = _field((200, 260), seed=1)
    meas, _ = simulate_full_field(field, model.encoder)
    assert meas.shape == (50, 65)
    calls = []
    half = reconstruct_full_field(meas, model, progress=lambda d, t: calls.append((d, t)))
    assert half.shape == (200, 260) and np.isfinite(half).all()
    assert calls[-1][0] == calls[-1][1] == len(window_starts(50, 16, 8)) * len(window_starts(65, 16, 8))
    none = reconstruct_full_field(meas, model, overlap=0)
    assert np.isfinite(none).all() and not np.allclose(none, half, atol=1e-4)
    z = zarr.open_array(store=str(tmp_path / "o.zarr"), mode="w", shape=(200, 260), chunks=(64, 64),
                        dtype="float32")
    assert reconstruct_full_field(da.from_array(meas, chunks=20), model, out=z) is z
    np.testing.assert_allclose(z[:], half, atol=1e-6)
    for bad in (-1, 16, 40, 2.5):
        with pytest.raises(ValueError, match="overlap"):
            reconstruct_full_field(meas, model, overlap=bad)
    with pytest.raises(ValueError, match="out has shape"):
        reconstruct_full_field(meas, model, out=np.zeros((10, 10), np.float32))


def test_an_axis_just_past_the_window_is_one_stretched_window(tiny_microscope):
    """A field padded a little past the decoder window (789 px → 1048 on lff-x64's 1024-px window) was cut
    into 2 × 2 overlapping windows (4x the work); up to WINDOW_STRETCH it is decoded as one window — the
    whole-image decode, exactly."""
    from napari_dmicro.inference.reconstruct import WINDOW_STRETCH

    model = tiny_microscope(img_size=16)
    side = int(16 * WINDOW_STRETCH)  # 20 camera px: one window; 21: overlapping windows again
    for shape, n_windows in (((side, side), 1), ((side + 1, side), len(window_starts(side + 1, 16, 8)))):
        meas = np.random.default_rng(2).uniform(0, 1, shape).astype(np.float32)
        totals = []
        rec = reconstruct_full_field(meas, model, progress=lambda _done, total, seen=totals: seen.append(total))
        assert totals[-1] == n_windows
        if n_windows == 1:
            with torch.inference_mode():
                whole = model.decode(torch.from_numpy(meas)).numpy()
            np.testing.assert_allclose(rec, whole, atol=1e-5)
    assert n_windows > 1


def test_swinir_windows_are_blended(tiny_microscope):
    model = tiny_microscope(decoder="swinir-tiny")  # img_size set by the preset: 256 / 4 = 64 camera px
    assert model.config.decoder.img_size == 64
    meas = np.random.default_rng(1).uniform(0, 1, (70, 20)).astype(np.float32)
    rec = reconstruct_full_field(meas, model, overlap=8)
    assert rec.shape == (280, 80) and np.isfinite(rec).all()


# ---------------------------------------------------------------------------------- bounded memory
def test_reconstruction_memory_is_bounded_by_a_band(tmp_path, tiny_microscope):
    """A 3000² object field (x16 → 750² camera) into a zarr array: the numpy memory (the accumulator,
    the band read, the finalised rows) stays a small fraction of one full-size float32 image."""
    model = tiny_microscope(img_size=64, width=4, n_blocks=1)
    meas = np.random.default_rng(2).uniform(0, 1, (750, 750)).astype(np.float32)
    out = zarr.open_array(store=str(tmp_path / "big.zarr"), mode="w", shape=(3000, 3000),
                          chunks=(128, 1024), dtype="float32")
    full_image = 3000 * 3000 * 4
    tracemalloc.start()
    try:
        reconstruct_full_field(meas, model, out=out, overlap=16, batch_size=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one full-size float32 accumulator alone would be 34 MiB; the band accumulator is 128 rows × 3000
    assert peak < full_image / 3, f"peak numpy/python allocation {peak / 2**20:.1f} MiB"
    sample = out[1400:1600, 2800:3000]
    assert np.isfinite(sample).all() and np.abs(sample).max() > 0


def test_the_circular_lff_model_is_refused_for_full_fields():
    from napari_dmicro.optics import Encoder

    enc = Encoder(EncoderConfig(optics=FourierFilterConfig(filter_size_px=32, convolution="circular"),
                                detector=DetectorConfig(compression=16)))
    with pytest.raises(ValueError, match="linear"):
        simulate_full_field(_field((64, 64)), enc)
