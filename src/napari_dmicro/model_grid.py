"""A field on its own grid ↔ the model's grid: the one rule for simulate, reconstruct, the CLI and training.

A model works on one grid (object pixel pitch, wavelength). A field given on another one is brought to it
and the result is brought back:

1. **Pixel pitch.** Amplitude and the unwrapped phase are resampled to the model's pitch, anti-aliased
   (:func:`napari_dmicro.io.resample.resample_image`: Gaussian σ = (ratio − 1)/2 input pixels when
   shrinking, then linear interpolation at the exact pixel centres; both grids share their centre). The
   reconstruction is resampled back to exactly the field's shape with the same rule.
2. **Wavelength.** A thin, non-dispersive specimen has one optical path difference OPD(x, y) whatever the
   wavelength, and its phase is 2π·OPD/λ. A field recorded at λ_field is therefore shown to the model at
   λ_model with its phase relative to the background scaled by ``phase_scale = λ_field / λ_model``
   (the amplitude is kept: absorption is assumed wavelength independent). The reconstruction is scaled
   back by 1/phase_scale, so it is again the phase at the field's wavelength. This is refused outside
   ``WAVELENGTH_RATIO_RANGE`` (dispersion and absorption are no longer negligible there).
3. **Small fields.** A side shorter than the model's window (decoder window × binning for a full-field
   camera, the aperture for tiled optics) is padded, centred, to the window plus the optics' context on
   each side, and the padding continues the specimen by the encoder's ``outside_field`` rule — the one
   rule that already says what lies beyond the edges of a field larger than the window and of every
   training crop: mirrored (``reflect``, the default: the specimen goes on beyond the field of view) or
   dark (``dark``: a field stop). So a field is imaged the same way whatever its size. Padding with empty
   background instead (before 2026-12-07) ended every cell cut by the field's edge in a phase step no
   specimen has, which the learnable Fourier filter spread into the field: 3.5 dB of PSNR on 512² phantom
   fields at x64 (benchmarks/bench_field_edges.py). A lone specimen in an empty dish is given as such:
   pad the field with its background before simulating. The reconstruction is cropped back.

Everything the plan did is recorded (:meth:`GridPlan.record_attrs`, typed in
:class:`napari_dmicro.measurement.AcquisitionRecord`), so a measurement knows how to go back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GridPlan", "check_pitch_ratio", "check_wavelength_ratio", "describe_resampling", "plan_grid",
           "plan_on_grid", "resampled_shape_on_grid", "to_model_grid", "from_model_grid", "model_window_px",
           "MAX_PITCH_RATIO", "WAVELENGTH_RATIO_RANGE", "MAX_RESAMPLE_PX", "RESAMPLING", "RESAMPLING_REAL"]

#: the field's pitch may differ from the model's by at most this factor either way
MAX_PITCH_RATIO = 16.0
#: λ_field / λ_model must lie in this range for the thin-specimen phase rescaling
WAVELENGTH_RATIO_RANGE = (0.5, 2.0)
#: largest field (pixels, on either grid) resampled in memory
MAX_RESAMPLE_PX = 2**26
#: relative tolerance under which a pitch or wavelength is the model's
REL_TOL = 1e-3

ASSUMPTION = ("thin, non-dispersive specimen: phase = 2π·OPD/λ, so phase relative to the background scales as "
              "λ_field/λ_model; amplitude kept")
#: how a real image (a fluorescence image, a reconstruction) is resampled
RESAMPLING_REAL = ("anti-aliased: Gaussian σ=(ratio−1)/2 input px when shrinking, then linear interpolation at "
                   "exact pixel centres (napari_dmicro.io.resample.resample_image)")
RESAMPLING = "anti-aliased: amplitude and unwrapped phase, " + RESAMPLING_REAL.removeprefix("anti-aliased: ")


def model_window_px(model) -> int:
    """Object pixels the model sees at once: its aperture (tiled optics), else its decoder window × binning
    (0 for untrained optics without a decoder: no padding)."""
    encoder = model.encoder
    tile = encoder.tile_px()
    if tile is not None:
        return int(tile)
    config = getattr(model, "config", None)
    decoder = getattr(config, "decoder", None)
    if decoder is None:
        return 0
    return int(decoder.img_size) * int(encoder.config.detector.binning)


@dataclass(frozen=True)
class GridPlan:
    """How a field of ``source_shape`` at (``source_pixel_size_um``, ``source_wavelength_um``) is put on the
    model's grid: resampled to ``resampled_shape``, its phase scaled by ``phase_scale`` about
    ``background_phase_rad``, placed at ``offset`` in a ``padded_shape`` field that continues it beyond its
    edges by ``outside_field`` (the encoder's rule: ``"reflect"`` or ``"dark"``)."""

    source_shape: tuple[int, int]
    source_pixel_size_um: float
    source_wavelength_um: float
    pixel_size_um: float
    wavelength_um: float
    resampled_shape: tuple[int, int]
    padded_shape: tuple[int, int]
    offset: tuple[int, int]
    background_phase_rad: float | None = None
    outside_field: str = "reflect"

    @property
    def resampled(self) -> bool:
        return not math.isclose(self.source_pixel_size_um, self.pixel_size_um, rel_tol=REL_TOL)

    @property
    def phase_scale(self) -> float:
        if math.isclose(self.source_wavelength_um, self.wavelength_um, rel_tol=REL_TOL):
            return 1.0
        return self.source_wavelength_um / self.wavelength_um

    @property
    def rescaled(self) -> bool:
        return self.phase_scale != 1.0

    @property
    def padded(self) -> bool:
        return self.padded_shape != self.resampled_shape

    @property
    def identity(self) -> bool:
        return not (self.resampled or self.rescaled or self.padded)

    @property
    def region(self) -> tuple[int, int, int, int]:
        """(row0, col0, rows, cols) of the specimen on the model's grid."""
        return (*self.offset, *self.resampled_shape)

    def describe(self) -> str:
        """One line for a user: what was done to bring the field to the model's grid."""
        if self.identity:
            return "on the model's grid (nothing resampled, rescaled or padded)"
        steps = []
        if self.resampled:
            steps.append(describe_resampling(self.source_shape, self.source_pixel_size_um, self.resampled_shape,
                                             self.pixel_size_um))
        if self.rescaled:
            steps.append(f"phase ×{self.phase_scale:.4g} for λ {self.source_wavelength_um:g} → "
                         f"{self.wavelength_um:g} µm (thin non-dispersive specimen)")
        if self.padded:
            how = "mirrored" if self.outside_field == "reflect" else "dark"
            steps.append(f"padded to {self.padded_shape[0]}×{self.padded_shape[1]} px, the specimen continued "
                         f"{how} beyond its edges (outside_field {self.outside_field!r})")
        return "; ".join(steps)

    def record_attrs(self) -> dict:
        """The acquisition-record keys (empty for an identity plan)."""
        if self.identity:
            return {}
        out = {"source_field_shape": list(self.source_shape), "source_pixel_size_um": self.source_pixel_size_um,
               "source_wavelength_um": self.source_wavelength_um, "specimen_region": list(self.region),
               "phase_scale": self.phase_scale, "background_phase_rad": self.background_phase_rad,
               "grid_adaptation": self.describe()}
        if self.resampled:
            out["resampling"] = RESAMPLING
        if self.rescaled:
            out["wavelength_assumption"] = ASSUMPTION
        return out  # outside_field: recorded by the acquisition (inference.simulate), the rule's owner

    @classmethod
    def from_record(cls, record, model) -> GridPlan | None:
        """The plan a measurement's :class:`~napari_dmicro.measurement.AcquisitionRecord` describes (None:
        simulated on the model's grid), reconstructed by ``model`` (whose grid it was made on)."""
        if record.source_field_shape is None:
            return None
        r0, c0, rows, cols = record.specimen_region
        grid = model.encoder.config.optics.grid
        return cls(tuple(record.source_field_shape), record.source_pixel_size_um, record.source_wavelength_um,
                   float(grid.pixel_size_um), float(grid.wavelength_um), (rows, cols), tuple(record.field_shape),
                   (r0, c0), record.background_phase_rad, record.provenance.get("outside_field", "reflect"))


def describe_resampling(source_shape, source_pixel_size_um: float, shape, pixel_size_um: float) -> str:
    """One line: an image resampled from its own grid to the model's."""
    return (f"resampled {source_shape[0]}×{source_shape[1]} px at {source_pixel_size_um:g} µm → "
            f"{shape[0]}×{shape[1]} px at {pixel_size_um:g} µm (anti-aliased)")


def resampled_shape_on_grid(pixel_size_um: float, model_pixel_size_um: float, shape) -> tuple[int, int]:
    """The shape of an image of ``shape`` at ``pixel_size_um`` on the model's grid, refused (ValueError, with the
    reason) when the pitches are more than :data:`MAX_PITCH_RATIO` apart, the result is too small to image or
    too large to resample in memory (:data:`MAX_RESAMPLE_PX`)."""
    out = _resampled_shape(pixel_size_um, model_pixel_size_um, shape)
    if max(math.prod(shape), math.prod(out)) > MAX_RESAMPLE_PX:
        raise ValueError(f"the image ({shape[0]}×{shape[1]} px at {pixel_size_um:g} µm) is too large to resample "
                         f"to the model's {model_pixel_size_um:g} µm grid in memory (limit {MAX_RESAMPLE_PX} px); "
                         "resample it beforehand in pieces or use a model of that grid")
    return out


def check_pitch_ratio(pixel_size_um: float, model_pixel_size_um: float) -> None:
    """Refuse pitches more than :data:`MAX_PITCH_RATIO` apart, with the reason."""
    ratio = pixel_size_um / model_pixel_size_um
    if not 1 / MAX_PITCH_RATIO <= ratio <= MAX_PITCH_RATIO:
        raise ValueError(f"the field's pixels are {pixel_size_um:g} µm, {ratio:.3g}× the model's "
                         f"{model_pixel_size_um:g} µm: more than {MAX_PITCH_RATIO:g}× apart, resampling would "
                         + ("invent nearly all detail (the field is far coarser than the model resolves)"
                            if ratio > 1 else "discard nearly all of the field's detail")
                         + "; check the pixel size (µm at the sample) or use a model of that grid")


def _resampled_shape(pixel_size_um: float, model_pixel_size_um: float, shape) -> tuple[int, int]:
    from .io.resample import resampled_shape

    check_pitch_ratio(pixel_size_um, model_pixel_size_um)
    out = resampled_shape(shape, pixel_size_um, model_pixel_size_um)
    if min(out) < 2:
        raise ValueError(f"the field ({shape[0]}×{shape[1]} px at {pixel_size_um:g} µm) would be "
                         f"{out[0]}×{out[1]} px on the model's {model_pixel_size_um:g} µm grid: too small to image")
    return out


def _check_in_memory(plan: GridPlan) -> None:
    if plan.identity:
        return
    size = max(math.prod(plan.source_shape), math.prod(plan.padded_shape))
    if size > MAX_RESAMPLE_PX:
        shape = plan.source_shape
        raise ValueError(f"the field ({shape[0]}×{shape[1]} px at {plan.source_pixel_size_um:g} µm, λ "
                         f"{plan.source_wavelength_um:g} µm) is too large to bring to the model's grid in memory "
                         f"(limit {MAX_RESAMPLE_PX} px): {plan.describe()}; convert it beforehand in pieces "
                         "(napari_dmicro.model_grid.to_model_grid) or use a model of that grid")


def check_wavelength_ratio(wavelength_um: float, model_wavelength_um: float) -> None:
    """Refuse a wavelength outside :data:`WAVELENGTH_RATIO_RANGE` of the model's, with the reason."""
    lo, hi = WAVELENGTH_RATIO_RANGE
    ratio = wavelength_um / model_wavelength_um
    if not lo <= ratio <= hi and not math.isclose(ratio, 1.0, rel_tol=REL_TOL):
        raise ValueError(f"the field was recorded at λ {wavelength_um:g} µm, the model works at "
                         f"{model_wavelength_um:g} µm ({ratio:.3g}×): a wavelength cannot be resampled, and rescaling "
                         "the phase by λ_field/λ_model (valid for a thin, non-dispersive specimen) is only done "
                         f"within {lo:g}–{hi:g}×, where "
                         "dispersion and absorption changes stay small; use a model trained at that wavelength")


def _padded_side(side: int, window: int, context: int, unit: int) -> int:
    if side >= window:
        return side
    want = max(window, side + 2 * context)
    return -(-want // unit) * unit


def plan_grid(field, model, *, pixel_size_um: float | None = None, wavelength_um: float | None = None,
              pad: bool = True) -> GridPlan:
    """The plan for ``field`` (2-D complex, numpy/dask/zarr) on ``model``'s grid; ``None`` sampling = the model's.

    Refuses (ValueError, with the reason) pitches more than :data:`MAX_PITCH_RATIO` apart, wavelengths
    outside :data:`WAVELENGTH_RATIO_RANGE`, and resampling beyond :data:`MAX_RESAMPLE_PX`. The background
    is estimated (from the field, read whole) only when the field is resampled or its phase rescaled (both
    work on the phase unwrapped about it). A field smaller than the model's window is padded by the
    encoder's ``outside_field`` rule.
    """
    encoder = model.encoder
    grid = encoder.config.optics.grid
    return plan_on_grid(field, pixel_size_um=pixel_size_um, wavelength_um=wavelength_um,
                        model_pixel_size_um=float(grid.pixel_size_um), model_wavelength_um=float(grid.wavelength_um),
                        window_px=model_window_px(model) if pad else 0,
                        unit_px=encoder.tile_px() or int(encoder.config.detector.binning),
                        context_px=int(encoder.context_px()),
                        outside_field=encoder.config.outside_field)


def plan_on_grid(field, *, pixel_size_um: float | None, wavelength_um: float | None, model_pixel_size_um: float,
                 model_wavelength_um: float, window_px: int = 0, unit_px: int = 1, context_px: int = 0,
                 outside_field: str = "reflect") -> GridPlan:
    """:func:`plan_grid` for a grid given by numbers (``window_px`` 0: no padding), e.g. training data."""
    from .io.units import check_length_um

    model_px, model_wl = float(model_pixel_size_um), float(model_wavelength_um)
    px = model_px if pixel_size_um is None else check_length_um(pixel_size_um, "pixel_size")
    wl = model_wl if wavelength_um is None else check_length_um(wavelength_um, "wavelength")
    shape = tuple(int(s) for s in field.shape[-2:])
    if math.isclose(px, model_px, rel_tol=REL_TOL):
        resampled = shape
    else:
        resampled = _resampled_shape(px, model_px, shape)
    check_wavelength_ratio(wl, model_wl)
    padded = tuple(_padded_side(s, window_px, context_px, unit_px) for s in resampled)
    offset = tuple((p - s) // 2 for p, s in zip(padded, resampled, strict=True))
    from .optics.grids import check_outside_field

    check_outside_field(outside_field)
    plan = GridPlan(shape, px, wl, model_px, model_wl, resampled, padded, offset, None, outside_field)
    _check_in_memory(plan)
    if plan.resampled or plan.rescaled:
        from .phase_reference import background_phase_rad

        plan = dataclasses.replace(plan, background_phase_rad=float(background_phase_rad(np.asarray(field))))
    return plan


def to_model_grid(field, plan: GridPlan) -> np.ndarray:
    """``field`` (2-D complex) on the model's grid by ``plan`` (complex64; the field itself if the plan is
    the identity)."""
    if plan.identity:
        return field
    from .io.resample import resample_amplitude_phase
    from .phase_reference import referenced_phase_rad

    data = np.asarray(field)
    if not np.isfinite(data).all():
        raise ValueError("the field contains NaN or infinite values; fix or mask them before simulating")
    amplitude = np.abs(data).astype(np.float64)
    if plan.resampled or plan.rescaled:
        bg = plan.background_phase_rad if plan.background_phase_rad is not None else 0.0
        # continuous phase about the background (unwrapped), so resampling and scaling never cross a wrap
        relative = referenced_phase_rad(data, bg).astype(np.float64)
        relative *= plan.phase_scale
        if plan.resampled:
            amplitude, relative = resample_amplitude_phase(amplitude, relative, plan.source_pixel_size_um,
                                                           plan.pixel_size_um, shape=plan.resampled_shape)
        data = amplitude * np.exp(1j * (relative + bg))
    if plan.padded:
        from .optics.grids import crop_with_surroundings

        r0, c0 = plan.offset
        data = crop_with_surroundings(data, -r0, -c0, *plan.padded_shape, plan.outside_field)
    return np.asarray(data, dtype=np.complex64)


def from_model_grid(phase_rad, plan: GridPlan) -> np.ndarray:
    """A phase map (rad) reconstructed on the model's grid, back on the field's own grid and wavelength:
    cropped to the specimen, scaled by 1/phase_scale about the recorded background, resampled to exactly
    ``plan.source_shape`` (float32)."""
    from .io.resample import resample_image

    phase = np.asarray(phase_rad, np.float64)
    if plan.identity:
        return phase.astype(np.float32)
    r0, c0, rows, cols = plan.region
    phase = phase[r0:r0 + rows, c0:c0 + cols]
    if plan.rescaled:
        bg = plan.background_phase_rad or 0.0
        phase = bg + (phase - bg) / plan.phase_scale
    if plan.resampled or phase.shape != plan.source_shape:
        phase = resample_image(phase, plan.pixel_size_um, plan.source_pixel_size_um, shape=plan.source_shape)
    return phase.astype(np.float32)
