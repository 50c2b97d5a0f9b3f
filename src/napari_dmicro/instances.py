"""Touching nuclei split into instances: a watershed of the distance to the mask's edge, one seed per peak.

Shared by the task-aware models (the mask is their segmentation head's foreground, the distance taken inside
the pixels away from the predicted boundaries) and by the classical reconstruct-then-segment reference of the
benchmarks (the mask is an Otsu threshold of the reconstruction). Lengths in µm, converted with the image's
pixel size, so the rule does not change with the sampling.
"""

from __future__ import annotations

import numpy as np

#: seeds (distance peaks) closer than this are one nucleus, µm (nuclei of the generator and of DSB2018 are 6–20 µm)
SEED_SPACING_UM = 3.0
#: the distance map is smoothed by a Gaussian of this σ before its peaks are found, µm (removes pixel ridges)
DISTANCE_SMOOTHING_UM = 0.5
#: objects smaller than this are dropped by the classical segmentation, µm² (a disc of 2 µm radius)
MIN_NUCLEUS_AREA_UM2 = np.pi * 2.0 ** 2


def split_touching(mask: np.ndarray, pixel_size_um: float, *, inner: np.ndarray | None = None) -> np.ndarray:
    """Instance labels (H, W) int32, consecutive from 1, of the boolean ``mask``: a watershed of the negated
    distance map (distance of ``inner`` — default the mask — to its edge, smoothed by DISTANCE_SMOOTHING_UM)
    from its local maxima at least SEED_SPACING_UM apart, inside the mask. A connected part of the mask
    without a peak keeps a label of its own."""
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import relabel_sequential, watershed

    if not pixel_size_um or pixel_size_um <= 0:
        raise ValueError(f"pixel_size_um must be a positive length in µm; got {pixel_size_um!r}")
    mask = np.asarray(mask, dtype=bool)
    inner = mask if inner is None else (np.asarray(inner, dtype=bool) & mask)
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(inner), DISTANCE_SMOOTHING_UM / pixel_size_um)
    components, _ = ndimage.label(mask)
    peaks = peak_local_max(distance, min_distance=max(int(round(SEED_SPACING_UM / pixel_size_um)), 1),
                           labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=mask)
    orphans, _ = ndimage.label(mask & (labels == 0))
    labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return relabel_sequential(labels.astype(np.int32))[0].astype(np.int32)


def classical_nuclei(image: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Instance labels (H, W) int32 of a fluorescence image by a stated classical method, the reference for a
    reconstruction model without a segmentation head: Otsu threshold, holes filled, objects smaller than
    ``MIN_NUCLEUS_AREA_UM2`` dropped, then touching nuclei split by :func:`split_touching`."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    image = np.asarray(image, np.float32)
    if float(image.max()) <= float(image.min()):
        return np.zeros(image.shape, np.int32)
    mask = ndimage.binary_fill_holes(image > threshold_otsu(image))
    min_px = max(int(round(MIN_NUCLEUS_AREA_UM2 / pixel_size_um ** 2)), 1)
    components, _ = ndimage.label(mask)
    mask &= (np.bincount(components.ravel()) >= min_px)[components] & (components > 0)
    return split_touching(mask, pixel_size_um)
