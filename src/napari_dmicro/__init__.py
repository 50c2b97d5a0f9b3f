"""napari-dmicro: differentiable compressive quantitative phase microscopy.

The public API (also what the CLI and the napari widgets call)::

    import napari_dmicro as dm
    model = dm.load_model("lff-x64")            # a shipped model name, or a checkpoint path
    meas  = dm.simulate(field, model, photons=None, read_noise=0.0, seed=0)   # dm.Measurement
    phase = dm.reconstruct(meas, model)          # radians, same shape as the field
    report = dm.evaluate(phase, reference)       # PSNR, SSIM, SSIM map (φ/2π, data range 1)
    field = dm.field_from_hologram(holo, pixel_size_um=0.107, wavelength_um=0.633, background=ref).field

The engine (``optics``, ``decoders``, ``training``, ``inference``, ``io``, ``phantoms``) knows nothing
of Qt. Attributes are imported lazily so that napari can read the plugin manifest without importing
torch.
"""

__version__ = "0.1.0.dev0"

_API = ("load_model", "untrained_model", "simulate", "reconstruct", "segment", "evaluate", "evaluate_fluorescence",
        "EvaluationReport",
        "Measurement", "AcquisitionRecord", "check_pixel_pitch", "reconstruction_shape", "ssim_map_lazy",
        "field_from_hologram", "HologramField", "HologramRecord", "MeasurementStack", "reconstruction_grid",
        "illumination_patterns", "evaluate_fluorescence", "evaluate_labels")

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'napari_dmicro' has no attribute {name!r}")
