"""The README's main job, as a function: phantom field → compressed noisy measurement → files + figure.

Until trained models ship, the optics are a seeded random learnable Fourier filter (as at the start of
training stage 1); the outputs say so in their metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import DetectorConfig, EncoderConfig, FourierFilterConfig

DEMO_COMPRESSION = 64
DEMO_PHOTONS = 1e4
DEMO_READ_NOISE_E = 6.0


def run_demo(out_dir, *, size_px=(789, 789), seed: int = 1, overwrite: bool = True) -> dict[str, Path]:
    """Write ``field.zarr``, ``measurement.zarr`` and ``demo.png`` into ``out_dir``; return their paths."""
    from .figures import save_panels
    from .io.fields import write_field, write_measurement
    from .optics import Encoder
    from .phantoms import PhantomConfig, make_field
    from .inference.simulate import simulate_full_field

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phantom = PhantomConfig(size_px=tuple(size_px))
    field = make_field(seed=seed, config=phantom)
    px, lam = phantom.pixel_size_um, phantom.wavelength_um

    config = EncoderConfig(optics=FourierFilterConfig(), detector=DetectorConfig(compression=DEMO_COMPRESSION))
    encoder = Encoder(config, generator=torch.Generator().manual_seed(seed))
    camera, attrs = simulate_full_field(field, encoder, max_photons=DEMO_PHOTONS, read_noise_e=DEMO_READ_NOISE_E,
                                        seed=seed)

    paths = {
        "field": out / "field.zarr",
        "measurement": out / "measurement.zarr",
        "figure": out / "demo.png",
    }
    write_field(paths["field"], field, pixel_size_um=px, wavelength_um=lam,
                attrs={"source": "napari_dmicro.phantoms", "seed": seed}, overwrite=overwrite)
    write_measurement(paths["measurement"], camera, pixel_size_um=attrs["camera_pixel_size_um"],
                      wavelength_um=lam,
                      attrs={**attrs, "optics_state": "untrained (random initialisation)",
                             "source_field": str(paths["field"])},
                      overwrite=overwrite)

    rows, cols = field.shape
    rows_m, cols_m = attrs["covered_object_px"]
    phase = np.mod(np.angle(field), 2 * np.pi)
    save_panels(paths["figure"], [
        {"image": np.abs(field), "title": "amplitude", "extent_um": (cols * px, rows * px),
         "label": "|E| (a.u.)"},
        {"image": phase, "title": "phase (ground truth)", "cmap": "twilight", "vmin": 0, "vmax": 2 * np.pi,
         "extent_um": (cols * px, rows * px), "label": "rad"},
        {"image": camera, "title": f"camera x{DEMO_COMPRESSION}: {camera.shape[0]}×{camera.shape[1]} px",
         "extent_um": (cols_m * px, rows_m * px), "label": "intensity (plane wave = 1)"},
    ], title=(f"napari-dmicro demo: random LFF, x{DEMO_COMPRESSION}, {DEMO_PHOTONS:.0e} photons, "
              f"read noise σ {DEMO_READ_NOISE_E:g} e⁻ (seed {seed})"))
    return paths
