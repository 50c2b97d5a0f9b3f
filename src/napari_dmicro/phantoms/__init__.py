"""Seeded synthetic complex optical fields of cells ("phantoms"), and fluorescence nuclei fields.

Fluorescence (issue 12): :func:`make_fluorescence_field` — stained nuclei with instance labels at a stated
pixel size (:mod:`.fluorescence`). The rest of this docstring is about the QPM phantoms.

A phantom is a complex field ``amplitude · exp(i · phase)`` on the paper's object grid (789 × 789 px of
0.3164 µm, i.e. a 250 µm field of view at λ/2 sampling of a 632.8 nm HeNe laser). The ``classic`` default
(HeLa-like adherent cells) contains:

* spread, irregular adherent cells (star-shaped contours from low-order random Fourier perturbations of
  the log-radius plus a few lamellipodial protrusions), with a thin lamella at the rim, a cytoplasmic
  dome that thickens towards the cell body, textured cytoplasm (smooth mottling, point-like granules
  concentrated around the nucleus, faint stress fibres along the long axis);
* a nucleus per spread cell (ellipse with a slightly irregular contour, chromatin texture) carrying the
  highest phase, with 1–4 nucleoli;
* rounded mitotic cells (spherical phase profile, some with a condensed chromosome plate, some as
  telophase doublets);
* small debris particles in the background;
* a residual background phase (slow variations of ± ``background_amplitude_rad`` around a small
  positive offset) and white-ish measurement noise, as real fields have after background correction;
* an amplitude that is nearly flat: slow illumination non-uniformity, weak absorption that follows the
  phase only partly, and a little amplitude noise.

Phase maps are modelled directly in radians (optical path difference ``φ = 2π/λ · Δn · h``; see
``docs/phantoms.md`` for the equivalent thicknesses); overlapping cells add their phase, and the total is
clipped (not wrapped) into ``[0, 2π − 1e-5]`` as in the paper's data.

Named styles (``PhantomConfig.style(name)``, :data:`STYLES`: ``realistic``, ``round``, ``dense``) add
round HL60-like suspension cells with thick nuclei, sparse to confluent fields, measured-like background
noise, amplitude texture and edge rings, and keep the true unclipped phase;
:func:`specimen_statistics` compares a field with measured specimens (docs/phantoms.md).

Everything is drawn from a :class:`numpy.random.Generator` seeded by the caller, so the same seed and
configuration give bit-identical fields. All per-field quantities that are given as ``(min, max)``
ranges in :class:`PhantomConfig` are sampled once per field, so a stream of fields varies in density,
cell size, phase range and background.
"""

from .config import PHASE_MAX_RAD, STYLES, PhantomConfig, phase_to_opd_um
from .fluorescence import (
    FLUO_STYLES,
    FluorescenceField,
    FluorescencePhantomConfig,
    camera_reference,
    chromatin_texture,
    make_fluorescence_field,
    make_fluorescence_fields,
    nuclei_statistics,
)
from .generate import field_seed, make_field, make_fields, make_phase_amplitude
from .statistics import PHASE_BIN_LABELS, field_statistics, specimen_statistics

__all__ = [
    "FLUO_STYLES",
    "FluorescenceField",
    "FluorescencePhantomConfig",
    "camera_reference",
    "chromatin_texture",
    "make_fluorescence_field",
    "make_fluorescence_fields",
    "nuclei_statistics",
    "PHASE_MAX_RAD",
    "STYLES",
    "PhantomConfig",
    "field_seed",
    "field_statistics",
    "make_field",
    "make_fields",
    "make_phase_amplitude",
    "phase_to_opd_um",
    "specimen_statistics",
    "PHASE_BIN_LABELS",
]
