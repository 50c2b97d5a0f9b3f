"""Raw lab camera images (npy, npz, TIFF, PNG) read by napari_dmicro.io.camera_images."""

import numpy as np
import pytest
import skimage.io
import tifffile

from napari_dmicro.io.camera_images import read_camera_image


def _counts(shape=(12, 10)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)


def test_every_format_reads_as_float32_counts(tmp_path):
    counts = _counts()
    np.save(tmp_path / "a.npy", counts)
    np.savez(tmp_path / "b.npz", measurement=counts, dark=np.zeros_like(counts))
    tifffile.imwrite(tmp_path / "c.tif", counts[None])  # a 1-frame stack is squeezed
    skimage.io.imsave(tmp_path / "d.png", counts.astype(np.uint8), check_contrast=False)
    for name in ("a.npy", "b.npz", "c.tif"):
        data = read_camera_image(tmp_path / name)
        assert data.dtype == np.float32
        np.testing.assert_array_equal(data, counts)
    np.testing.assert_array_equal(read_camera_image(tmp_path / "d.png"), counts.astype(np.uint8))


@pytest.mark.parametrize("data,match", [
    (np.ones((4, 4), np.complex64), "complex data"),
    (np.ones((2, 4, 4), np.float32), "2-D"),
    (np.full((4, 4), np.nan, np.float32), "NaN"),
])
def test_what_is_not_a_camera_image_is_refused_with_its_reason(tmp_path, data, match):
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ValueError, match=match):
        read_camera_image(tmp_path / "x.npy")


def test_an_npz_with_several_unnamed_images_or_an_unknown_suffix_is_refused(tmp_path):
    np.savez(tmp_path / "two.npz", a=_counts(), b=_counts())
    with pytest.raises(ValueError, match="called 'measurement'"):
        read_camera_image(tmp_path / "two.npz")
    (tmp_path / "x.bmp").write_bytes(b"BM")
    with pytest.raises(ValueError, match=r"\.npy, \.npz, \.tif or \.png"):
        read_camera_image(tmp_path / "x.bmp")
