"""Full field-of-view inference: blockwise simulation of one camera image and blended reconstruction.

``simulate_full_field`` (optics over a field of any size, bounded memory) and ``reconstruct_full_field``
(overlapping decoder windows blended without seams, or PhaseD2NN tiles); :mod:`.blending` holds the
window placement and weights.
"""

from .blending import blend_weights, window_starts
from .reconstruct import reconstruct_full_field
from .simulate import simulate_full_field

__all__ = ["simulate_full_field", "reconstruct_full_field", "window_starts", "blend_weights"]
