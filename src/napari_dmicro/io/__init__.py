"""Reading and writing complex fields, measurements, phase maps and fluorescence images (zarr v3, OME-Zarr,
npy/npz, TIFF).

The public names are importable from here and from :mod:`napari_dmicro.io.fields`.
"""

from .atomic import OutputBusyError, atomic_output, write_file_atomically, write_text_atomically
from .errors import FieldFormatError, MissingArrayError, NotAZarrStoreError, UnitError
from .fields import (
    ATTRS_KEY,
    CHANNELS,
    FORMAT_VERSION,
    KINDS,
    PYRAMID_MIN_SIZE,
    ImageData,
    ImageKind,
    check_length_um,
    detect_format,
    display_levels,
    open_pyramid,
    read_field,
    read_image,
    read_measurement,
    validate_field,
    validate_image,
    write_field,
    write_image,
    write_measurement,
    write_phase,
)
from .fluorescence import (
    FluorescenceImage,
    load_fluorescence_tiff,
    read_fluorescence,
    read_fluorescence_measurement,
    write_fluorescence_measurement,
)
from .store import write_fluorescence
from .targets import InputOverwriteError, check_not_input, check_replaceable, is_our_store, store_path

__all__ = [
    "ATTRS_KEY", "CHANNELS", "FORMAT_VERSION", "KINDS", "PYRAMID_MIN_SIZE", "FieldFormatError", "FluorescenceImage",
    "ImageData", "load_fluorescence_tiff", "read_fluorescence", "read_fluorescence_measurement", "write_fluorescence",
    "write_fluorescence_measurement",
    "ImageKind", "InputOverwriteError", "MissingArrayError", "NotAZarrStoreError", "OutputBusyError", "UnitError",
    "atomic_output", "check_length_um", "check_not_input", "check_replaceable", "detect_format", "display_levels",
    "is_our_store", "open_pyramid", "read_field", "read_image", "read_measurement", "store_path",
    "validate_field", "validate_image", "write_field", "write_file_atomically", "write_image", "write_measurement",
    "write_phase", "write_text_atomically",
]
