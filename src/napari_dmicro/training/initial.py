"""The model a run starts from, before any step: seeded by the run's seed alone.

One home for the seeding rule, so that a finished model's optics can be compared with the exact
initialisation they were trained from (:func:`napari_dmicro.optics.report.optics_movement`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..system import Microscope, build_system


def seed_of(*parts: int) -> int:
    """A well-mixed 32-bit seed from integer parts (seed, stage, step, …)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def initial_microscope(system, seed: int, optics_init: str = "random") -> Microscope:
    """The untrained model of a run: optics from ``optics_init`` (the random draw seeded by (seed, 0); a
    fluorescence system starts from its patterns' init, drawn from the same generator), decoder initialised
    from the global generator seeded by (seed, 0, 1), which is restored."""
    with torch.random.fork_rng():  # decoder initialisation draws from the global generator
        torch.manual_seed(seed_of(seed, 0, 1))
        return build_system(system, init=optics_init, generator=torch.Generator().manual_seed(seed_of(seed, 0)))
