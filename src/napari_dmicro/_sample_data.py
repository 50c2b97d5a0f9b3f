"""napari sample data: a synthetic cell phantom (complex field) and scikit-image's QPI cell.

* :func:`phantom_sample` — ``napari_dmicro.phantoms.make_field(seed=0, size_px=(512, 512))`` on
  the default grid (0.3164 µm pixels, 0.6328 µm wavelength), shown as amplitude + phase layers.
* :func:`skimage_cell_sample` — ``skimage.data.cell()``, a quantitative phase image (660×550,
  uint8, relative phase only, 0.107 µm pixels according to scikit-image). Its absolute phase scale
  is unknown: the 8-bit grey values are mapped linearly to radians as ``value · 2π/256`` (0 → 0,
  255 → 2π·255/256), i.e. the full 8-bit range spans one phase cycle. The wavelength is not given
  by the source; the default 0.6328 µm is recorded as assumed (``defaults_used``).
"""

from __future__ import annotations

import math

import numpy as np

from ._reader import image_layers
from .config import DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM
from .io.fields import ImageData

SKIMAGE_CELL_PIXEL_SIZE_UM = 0.107
PHANTOM_SIZE_PX = (512, 512)


def phantom_sample() -> list:
    """Amplitude and phase layers of the seed-0 synthetic cell phantom."""
    from .phantoms import make_field  # lazily: only needed when the sample is opened

    field = np.asarray(make_field(seed=0, size_px=PHANTOM_SIZE_PX)).astype(np.complex64)
    img = ImageData(
        field, "field", DEFAULT_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM,
        {"source": f"napari_dmicro.phantoms.make_field(seed=0, size_px={PHANTOM_SIZE_PX})", "seed": 0},
    )
    return image_layers(img, name="phantom (seed 0)", source="napari_dmicro.phantoms")


def skimage_cell_sample() -> list:
    """``skimage.data.cell()`` as a relative phase map in radians (8-bit value · 2π/256)."""
    from skimage import data

    cell = np.asarray(data.cell())
    phase = cell.astype(np.float32) * np.float32(2 * math.pi / 256)
    img = ImageData(
        phase, "phase", SKIMAGE_CELL_PIXEL_SIZE_UM, DEFAULT_WAVELENGTH_UM,
        {
            "source": "skimage.data.cell()",
            "description": "relative phase (QPI, qpformat); 8-bit grey values scaled to radians as "
            "value*2*pi/256; absolute phase offset and scale unknown",
            "defaults_used": ["wavelength_um"],
        },
    )
    return image_layers(img, name="skimage cell (relative phase)", source="skimage.data.cell")
