"""Missing chunks are refused at open (not read as zeros), cheaply even for a huge declared store; display
levels named outside the store are refused."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import zarr

from napari_dmicro.io import FieldFormatError, display_levels, open_pyramid, read_field, read_image, write_field

PS, WL = 0.3164, 0.6328


def _field(shape):
    return np.full(shape, np.exp(0.5j), np.complex64)


def test_our_store_with_a_missing_chunk_is_refused(tmp_path):
    out = write_field(tmp_path / "f.zarr", _field((1100, 2100)), pixel_size_um=PS, wavelength_um=WL)
    assert read_field(out, lazy=False).data.shape == (1100, 2100)
    (out / "field" / "c" / "1" / "2").unlink()
    with pytest.raises(FieldFormatError, match=r"incomplete: 1 of 6 chunks missing \(first: chunk 'c/1/2' at pixel "
                                               r"\(1024, 2048\)\)"):
        read_field(out)


def test_zero_chunks_are_written_so_a_zero_image_is_complete(tmp_path):
    out = write_field(tmp_path / "z.zarr", np.zeros((1500, 40), np.complex64), pixel_size_um=PS, wavelength_um=WL)
    np.testing.assert_array_equal(read_field(out, lazy=False).data, 0)


def test_foreign_store_with_missing_chunks_is_refused(tmp_path):
    z = zarr.create_array(str(tmp_path / "plain.zarr"), shape=(64, 64), chunks=(32, 32), dtype=np.complex64)
    z[:32, :] = 1j
    with pytest.raises(FieldFormatError, match=r"incomplete: 2 of 4 chunks missing \(first: chunk 'c/1/0'"):
        read_image(tmp_path / "plain.zarr")


def test_a_huge_declared_store_with_a_few_kb_is_refused_up_front(tmp_path):
    z = zarr.create_array(str(tmp_path / "huge.zarr"), shape=(100_000, 100_000), chunks=(1024, 1024),
                          dtype=np.complex64)
    z[:1024, :1024] = 1j
    start = time.perf_counter()
    with pytest.raises(FieldFormatError, match=r"9603 of 9604 chunks missing.*declares 100000×100000 complex64 "
                                               r"\(74\.5 GiB\)"):
        read_field(tmp_path / "huge.zarr")
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("level", ["../other.zarr/0", "/etc", "missing"])
def test_a_display_level_outside_the_store_is_a_clear_error(tmp_path, level):
    out = write_field(tmp_path / "f.zarr", _field((64, 64)), pixel_size_um=PS, wavelength_um=WL)
    write_field(tmp_path / "other.zarr", _field((64, 64)), pixel_size_um=PS, wavelength_um=WL)
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = level
    (out / "zarr.json").write_text(json.dumps(meta))
    for opener in (open_pyramid, display_levels):
        with pytest.raises(FieldFormatError, match=f"names the display level '{level}', which is not an array"):
            opener(out)
