"""The acquisition record beside a plain camera image: typed, consistent, never stale."""

import numpy as np
import pytest
from pydantic import ValidationError

from napari_dmicro.measurement import AcquisitionRecord, Measurement, as_measurement

RECORD = dict(field_shape=(789, 789), camera_shape=(99, 99), binning=8, compression=64,
              object_pixel_size_um=0.3164, camera_pixel_size_um=2.5312, wavelength_um=0.6328, optics="lff")


def test_a_record_whose_field_does_not_fit_the_camera_is_refused():
    AcquisitionRecord(**RECORD)  # 789 px → ceil(789/8) = 99 camera px
    with pytest.raises(ValidationError, match=r"field_shape \[1, 1\] does not fit camera_shape \[99, 99\]"):
        AcquisitionRecord(**{**RECORD, "field_shape": (1, 1)})
    with pytest.raises(ValidationError, match="compression 16 is not binning"):
        AcquisitionRecord(**{**RECORD, "compression": 16})
    with pytest.raises(ValidationError, match="camera_pixel_size_um"):
        AcquisitionRecord(**{**RECORD, "camera_pixel_size_um": 1.0})
    # a tiled acquisition covers whole apertures: 150 px through 64-px apertures → 3 tiles of 16 camera px
    AcquisitionRecord(field_shape=(150, 130), camera_shape=(48, 48), binning=4, tile_px=64)
    with pytest.raises(ValidationError, match="does not fit"):
        AcquisitionRecord(field_shape=(150, 130), camera_shape=(38, 33), binning=4, tile_px=64)


def test_the_record_round_trips_through_flat_store_attributes():
    record = AcquisitionRecord(**RECORD)
    attrs = {**record.to_attrs(), "source_field": "f.zarr", "units": {"phase": "rad"}}
    assert attrs["field_shape"] == [789, 789] and attrs["camera_pixel_size_um"] == 2.5312
    back = AcquisitionRecord.from_attrs(attrs)
    assert back.field_shape == (789, 789) and back.provenance == {"source_field": "f.zarr", "units": {"phase": "rad"}}
    assert back.to_attrs() == attrs
    assert AcquisitionRecord.from_attrs({"source": "lab.tif", "acquisition": "detector image"}) is None


def test_a_measurement_is_a_plain_image_beside_its_record_and_cannot_be_sliced():
    image = np.arange(99 * 99, dtype=np.float64).reshape(99, 99)
    meas = Measurement(image, AcquisitionRecord(**RECORD))
    assert meas.shape == (99, 99) and meas.dtype == np.float32 and type(np.asarray(meas)) is np.ndarray
    assert float(np.max(meas)) == 99 * 99 - 1 and "99×99" in repr(meas)
    with pytest.raises(TypeError):
        meas[:50]  # a crop would keep a stale field shape: there is no slicing
    with pytest.raises(ValueError, match="belongs to another image"):
        Measurement(image[:50, :50], AcquisitionRecord(**RECORD))
    with pytest.raises(ValueError, match="real 2-D"):
        Measurement(image.astype(np.complex64), AcquisitionRecord(**RECORD))
    assert isinstance(as_measurement(image, RECORD), Measurement)
    assert as_measurement(image, {"source": "lab"}) is image
