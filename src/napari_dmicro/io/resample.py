"""Bring a measured complex field onto a model's grid and phase convention.

Models are trained at one pixel size (316.4 nm for the shipped ones) on fields whose background phase
is about 0.15 rad (the phantoms' convention). A global phase offset is invisible to an intensity
camera, so a reference field from another instrument must be given that convention before its
reconstruction is scored against it.
"""

from __future__ import annotations

import numpy as np

#: background phase of the training phantoms (``PhantomConfig.background_offset_rad``), rad
MODEL_BACKGROUND_RAD = 0.15


def resample_field(field, pixel_size_um: float, target_pixel_size_um: float, *,
                   unwrap: bool = True) -> np.ndarray:
    """The same specimen sampled at exactly ``target_pixel_size_um`` (complex64), anti-aliased.

    Amplitude and phase are resampled separately (averaging complex values across a 2π wrap would
    cancel them). With ``unwrap`` the phase is first unwrapped (scikit-image), so wrapped measurements
    resample correctly; give ``unwrap=False`` for a phase that is already continuous. The output has
    ``round(shape · pixel_size_um / target_pixel_size_um)`` pixels per side, centred on the input.
    """
    from skimage.restoration import unwrap_phase

    data = np.asarray(field)
    if data.ndim != 2 or not np.iscomplexobj(data):
        raise ValueError(f"expected a 2-D complex field, got {data.dtype} with shape {data.shape}; build it "
                         "with amplitude * np.exp(1j * phase_rad)")
    if not np.isfinite(data).all():
        raise ValueError("the field contains NaN or infinite values; fix or mask them before resampling")
    phase = np.angle(data).astype(np.float64)
    if unwrap:
        phase = unwrap_phase(phase)
    amplitude, phase = resample_amplitude_phase(np.abs(data), phase, pixel_size_um, target_pixel_size_um)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def resample_amplitude_phase(amplitude, phase_rad, pixel_size_um: float, target_pixel_size_um: float, *,
                             shape: tuple[int, int] | None = None):
    """Amplitude and a continuous phase (rad) resampled to ``target_pixel_size_um`` (a float64 pair).

    See :func:`resample_image` (the rule is the same for both, and for a real phase map).
    """
    amplitude, phase = np.asarray(amplitude, np.float64), np.asarray(phase_rad, np.float64)
    if amplitude.shape != phase.shape or amplitude.ndim != 2:
        raise ValueError(f"amplitude {amplitude.shape} and phase {phase.shape} must be 2-D and the same shape")
    return (resample_image(amplitude, pixel_size_um, target_pixel_size_um, shape=shape),
            resample_image(phase, pixel_size_um, target_pixel_size_um, shape=shape))


def resampled_shape(shape, pixel_size_um: float, target_pixel_size_um: float) -> tuple[int, int]:
    """``round(shape · pixel_size_um / target_pixel_size_um)`` pixels per side (at least 1)."""
    ratio = target_pixel_size_um / pixel_size_um
    return tuple(max(int(round(s / ratio)), 1) for s in shape)


def sample_positions(in_shape, out_shape, ratio: float) -> list[np.ndarray]:
    """Per axis, the input-pixel coordinates of the output pixel centres when one output pixel spans ``ratio``
    input pixels and both grids share their centre (the geometry of :func:`resample_image`; labels use it
    with nearest-neighbour rounding)."""
    return [(np.arange(n) - (n - 1) / 2) * ratio + (s - 1) / 2 for n, s in zip(out_shape, in_shape, strict=True)]


def resample_image(image, pixel_size_um: float, target_pixel_size_um: float, *,
                   shape: tuple[int, int] | None = None) -> np.ndarray:
    """A real 2-D image (a continuous quantity: amplitude, unwrapped phase) at ``target_pixel_size_um``.

    Shrinking first low-pass filters with a Gaussian of σ = (ratio − 1)/2 input pixels (as scikit-image
    does), then every output pixel centre is interpolated linearly at its exact position; both grids
    share their centre. The output has :func:`resampled_shape` pixels, or ``shape`` (e.g. to go back
    exactly to an original grid). float64.
    """
    from scipy.ndimage import gaussian_filter, map_coordinates

    image = np.asarray(image, np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    for name, value in (("pixel_size_um", pixel_size_um), ("target_pixel_size_um", target_pixel_size_um)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive pixel size in micrometres")
    ratio = target_pixel_size_um / pixel_size_um  # input pixels per output pixel
    out_shape = resampled_shape(image.shape, pixel_size_um, target_pixel_size_um) if shape is None else tuple(shape)
    if ratio == 1 and out_shape == image.shape:
        return image.copy()
    coords = np.meshgrid(*sample_positions(image.shape, out_shape, ratio), indexing="ij")
    sigma = max((ratio - 1) / 2, 0)
    smooth = gaussian_filter(image, sigma, mode="nearest") if sigma > 0 else image
    return map_coordinates(smooth, coords, order=1, mode="nearest")


def set_background_phase(field, background_rad: float = MODEL_BACKGROUND_RAD, border_px: int = 3) -> np.ndarray:
    """Shift the phase so the median over a ``border_px`` frame equals ``background_rad`` (complex64).

    Only a global phase factor changes, which no intensity measurement can see: use it on reference
    fields from other instruments (whose background phase is arbitrary) before scoring against them.
    """
    data = np.asarray(field)
    if data.ndim != 2 or not np.iscomplexobj(data) or min(data.shape) <= 2 * border_px:
        raise ValueError(f"expected a 2-D complex field larger than twice border_px={border_px}, got "
                         f"{data.dtype} {data.shape}")
    frame = np.concatenate([data[:border_px].ravel(), data[-border_px:].ravel(),
                            data[:, :border_px].ravel(), data[:, -border_px:].ravel()])
    rough = np.angle(frame.mean())  # then the median phase around it (robust to cells touching the border)
    background = rough + np.median(np.angle(frame * np.exp(-1j * rough)))
    return (data * np.exp(1j * (background_rad - background))).astype(np.complex64)
