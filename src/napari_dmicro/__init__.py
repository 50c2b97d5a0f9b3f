"""napari-dmicro: differentiable compressive quantitative phase microscopy.

The engine (``optics``, ``io``, ``phantoms``, ``config``) knows nothing of Qt; the CLI (``dmicro``) and
the napari widgets call the same public functions.
"""

__version__ = "0.1.0.dev0"
