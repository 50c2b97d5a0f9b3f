"""Fluorescence data (issue 12): nuclei generator, stores with labels, measured TIFF loader, CLI."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_dmicro.cli import main as cli_main
from napari_dmicro.io import (
    FieldFormatError,
    UnitError,
    load_fluorescence_tiff,
    read_fluorescence,
    read_image,
    write_fluorescence,
)
from napari_dmicro.phantoms import FluorescencePhantomConfig, make_fluorescence_field, nuclei_statistics
from napari_dmicro.phantoms.fluorescence import touching_labels

DSB = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "fluo_stardist_dsb2018_nuclei"
if not DSB.is_dir():  # worktrees live beside /work/main; the data is /work/shared/realdata
    DSB = Path("/work/shared/realdata/fluo_stardist_dsb2018_nuclei")


def test_same_seed_same_field_and_different_seeds_or_indices_differ():
    a = make_fluorescence_field(7, 2, size_px=128)
    b = make_fluorescence_field(7, 2, size_px=128)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    for other in (make_fluorescence_field(8, 2, size_px=128), make_fluorescence_field(7, 3, size_px=128)):
        assert np.abs(other.image - a.image).mean() > 0.01
        assert not np.array_equal(other.labels, a.labels)


@pytest.mark.parametrize("style", ["sparse", "mixed", "confluent"])
def test_labels_consistent_with_image(style):
    for index in range(3):
        f = make_fluorescence_field(11, index, style=style, size_px=192)
        img, lab = f.image, f.labels
        assert img.dtype == np.float32 and lab.dtype == np.int32 and img.shape == lab.shape
        assert img.min() >= 0 and img.max() == pytest.approx(1.0)
        n = int(lab.max())
        assert n >= 1
        assert np.array_equal(np.unique(lab), np.arange(n + 1))  # contiguous ids 0..N
        background = float(img[lab == 0].mean())
        means = ndimage.mean(img, lab, index=np.arange(1, n + 1))
        assert (means > 1.3 * background).all(), f"a nucleus is not brighter than the background ({style})"
        for k, sl in enumerate(ndimage.find_objects(lab), start=1):  # each nucleus one 4-connected piece
            assert ndimage.label(lab[sl] == k)[1] == 1


def test_nuclei_touch_only_when_placed_in_contact():
    isolated = FluorescencePhantomConfig.style("confluent", cluster_fraction=(0.0, 0.0), size_px=(192, 192))
    crowded = FluorescencePhantomConfig.style("confluent", size_px=(192, 192))
    for index in range(3):
        lab = make_fluorescence_field(5, index, config=isolated).labels
        assert lab.max() > 10
        assert touching_labels(lab).size == 0  # ≥ 1 background pixel between every pair
        grown = ndimage.grey_dilation(lab, footprint=ndimage.generate_binary_structure(2, 1))
        assert ((grown != lab) & (lab > 0)).sum() == 0  # no label next to a different one
    touching = np.mean([nuclei_statistics(f.image, f.labels)["touching_fraction"]
                        for f in (make_fluorescence_field(5, i, config=crowded) for i in range(3))])
    assert touching > 0.3


def test_density_style_changes_count():
    def mean_count(style):
        return np.mean([make_fluorescence_field(21, i, style=style, size_px=256).n_nuclei for i in range(4)])

    sparse, confluent = mean_count("sparse"), mean_count("confluent")
    assert confluent > 3 * sparse
    cover = [float((make_fluorescence_field(21, i, style=s, size_px=256).labels > 0).mean())
             for s in ("sparse", "confluent") for i in range(2)]
    assert max(cover[:2]) < 0.12 and min(cover[2:]) > 0.25


def test_pixel_size_scales_nuclei_in_pixels_not_micrometres():
    """The same nuclei in µm: halving the pixel size doubles the diameters in px (4x the area)."""
    def median_area_um2(ps):
        areas = np.concatenate([nuclei_statistics(f.image, f.labels)["areas_px"] for f in
                                (make_fluorescence_field(3, i, style="sparse", size_px=int(160 / ps),
                                                         pixel_size_um=ps) for i in range(4))])
        return np.median(areas) * ps**2, np.median(areas)

    coarse_um2, coarse_px = median_area_um2(0.65)
    fine_um2, fine_px = median_area_um2(0.325)
    assert fine_px / coarse_px == pytest.approx(4.0, rel=0.15)
    assert fine_um2 == pytest.approx(coarse_um2, rel=0.15)
    lo, hi = FluorescencePhantomConfig().diameter_um  # median equivalent diameter within the stated range
    d_um = 2 * np.sqrt(fine_um2 / np.pi)
    assert 0.8 * lo < d_um < 1.1 * hi


def test_512_field_is_fast():
    make_fluorescence_field(0, 0, size_px=64)  # imports and FFT plans
    start = time.process_time()  # CPU time: the machine may be shared (wall time would measure the others)
    f = make_fluorescence_field(1, 0, style="confluent", size_px=512)
    assert time.process_time() - start < 0.6
    assert f.n_nuclei > 30


def test_store_round_trip_with_metadata(tmp_path):
    f = make_fluorescence_field(4, 9, style="mixed", size_px=(96, 128), pixel_size_um=0.4)
    path = write_fluorescence(tmp_path / "nuclei.zarr", f.image, f.labels, pixel_size_um=f.pixel_size_um,
                              emission_wavelength_um=0.461, attrs=f.attrs())
    back = read_fluorescence(path)
    image, labels, ps = back  # a plain (image, labels, pixel_size_um) triple
    assert ps == pytest.approx(0.4, rel=1e-9)
    assert np.allclose(image, f.image, atol=1e-7) and np.array_equal(labels, f.labels)
    attrs = read_image(path).attrs
    assert attrs["modality"] == "fluorescence"
    assert (attrs["seed"], attrs["index"], attrs["style"]) == (4, 9, "mixed")
    unlabelled = write_fluorescence(tmp_path / "plain.zarr", f.image, pixel_size_um=0.4, emission_wavelength_um=0.461)
    assert read_fluorescence(unlabelled).labels is None
    with pytest.raises(TypeError):
        write_fluorescence(tmp_path / "x.zarr", f.image, f.labels, emission_wavelength_um=0.461)  # no pixel size
    with pytest.raises(FieldFormatError, match="shape"):
        write_fluorescence(tmp_path / "y.zarr", f.image, f.labels[:-1], pixel_size_um=0.4,
                           emission_wavelength_um=0.461)
    assert not (tmp_path / "y.zarr").exists()


def test_qpm_store_refuses_labels_and_reader_refuses_qpm(tmp_path):
    from napari_dmicro.io import write_phase

    with pytest.raises(FieldFormatError, match="fluorescence"):
        from napari_dmicro.io.store import write_image

        write_image(tmp_path / "p.zarr", np.zeros((8, 8), np.float32), kind="phase", pixel_size_um=0.3,
                    wavelength_um=0.6, labels=np.zeros((8, 8), np.int32))
    p = write_phase(tmp_path / "q.zarr", np.zeros((8, 8), np.float32), pixel_size_um=0.3, wavelength_um=0.6)
    assert "modality" not in read_image(p).attrs
    with pytest.raises(FieldFormatError, match="not a fluorescence image"):
        read_fluorescence(p)


def test_loader_requires_pixel_size():
    with pytest.raises(UnitError, match="pixel_size_um is required"):
        load_fluorescence_tiff(DSB / "img2d.tif", DSB / "mask2d.tif")


def test_dsb2018_loader_reads_125_nuclei():
    img = load_fluorescence_tiff(DSB / "img2d.tif", DSB / "mask2d.tif", pixel_size_um=0.5)
    assert img.image.shape == (512, 512) and img.image.dtype == np.float32
    assert img.pixel_size_um == 0.5
    assert img.labels.max() == 125 and np.array_equal(np.unique(img.labels), np.arange(126))
    background = img.image[img.labels == 0].mean()
    assert ndimage.mean(img.image, img.labels, index=np.arange(1, 126)).mean() > 2 * background
    small = load_fluorescence_tiff(DSB / "tests_img2d.tif", DSB / "tests_mask2d.tif", pixel_size_um=0.5)
    assert small.labels.max() == 65


def test_cli_phantom_fluorescence(tmp_path, capsys):
    out = tmp_path / "nuclei"
    assert cli_main(["phantom", "--modality", "fluorescence", "--style", "sparse", "--out", str(out),
                     "--count", "2", "--size", "96", "--seed", "5", "--pixel-size-um", "0.65"]) == 0
    first = read_fluorescence(out / "nuclei_0000.zarr")
    second = read_fluorescence(out / "nuclei_0001.zarr")
    assert first.pixel_size_um == pytest.approx(0.65)
    again = make_fluorescence_field(5, 0, style="sparse", size_px=96, pixel_size_um=0.65)
    assert np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.image, second.image)
    assert read_image(out / "nuclei_0001.zarr").attrs["index"] == 1
    assert cli_main(["phantom", "--modality", "fluorescence", "--style", "round", "--out", str(tmp_path / "x")]) != 0
    assert "fluorescence styles" in capsys.readouterr().err
