"""Segmentation scores of label images (0 = background, 1..N = instances): foreground Dice and the
IoU-matched F1 of instances.

* :func:`dice`: 2·|P ∩ T| / (|P| + |T|) of the foreground masks (label > 0); 1 when both are empty.
* :func:`matched_f1`: a predicted and a true instance match when their IoU is at least the threshold (0.5 by
  default); the matching is one-to-one and maximises the summed IoU (Hungarian assignment), so a split
  nucleus gives at most one true positive and a false positive for its other part, and a merged pair at most
  one true positive and a false negative. F1 = 2·TP / (2·TP + FP + FN); 1 when both images have no instance.

Aggregation over a data set is per image (the mean of per-image values) unless stated otherwise.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dice", "iou_matrix", "matched_f1"]


def _labels(image, name: str) -> np.ndarray:
    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if arr.ndim < 2:
        raise ValueError(f"{name} must be a label image (H, W) or (D, H, W); got shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer labels (0 = background); got dtype {arr.dtype}. "
                         "Threshold a probability map or label its components first")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative labels; labels are 0 (background) or positive instance ids")
    return arr.astype(np.int64)


def _pair(prediction, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = _labels(prediction, "prediction"), _labels(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and truth {t.shape} differ in shape")
    return p, t


def dice(prediction, truth) -> float:
    """Foreground Dice of two label (or binary) images."""
    p, t = _pair(prediction, truth)
    fp, ft = p > 0, t > 0
    total = int(fp.sum()) + int(ft.sum())
    return 1.0 if total == 0 else 2.0 * int((fp & ft).sum()) / total


def iou_matrix(prediction, truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (true, predicted) instance pair: (iou (n_true, n_pred), true ids, predicted ids)."""
    p, t = _pair(prediction, truth)
    true_ids, t_idx = np.unique(t, return_inverse=True)
    pred_ids, p_idx = np.unique(p, return_inverse=True)
    # contingency table of all label values (background included), then drop the background row/column
    inter = np.bincount(t_idx.ravel() * len(pred_ids) + p_idx.ravel(),
                        minlength=len(true_ids) * len(pred_ids)).reshape(len(true_ids), len(pred_ids))
    area_t, area_p = inter.sum(axis=1), inter.sum(axis=0)
    keep_t, keep_p = true_ids > 0, pred_ids > 0
    inter = inter[np.ix_(keep_t, keep_p)].astype(np.float64)
    union = area_t[keep_t][:, None] + area_p[keep_p][None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou, true_ids[keep_t], pred_ids[keep_p]


def matched_f1(prediction, truth, iou_threshold: float = 0.5) -> dict[str, float]:
    """One-to-one IoU matching of instances: ``{"tp", "fp", "fn", "precision", "recall", "f1",
    "mean_matched_iou"}`` (counts as floats)."""
    from scipy.optimize import linear_sum_assignment

    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1]; got {iou_threshold}")
    iou, true_ids, pred_ids = iou_matrix(prediction, truth)
    n_true, n_pred = len(true_ids), len(pred_ids)
    matched = np.zeros(0)
    if n_true and n_pred:
        eligible = np.where(iou >= iou_threshold, iou, 0.0)
        rows, cols = linear_sum_assignment(eligible, maximize=True)
        matched = iou[rows, cols][eligible[rows, cols] > 0]
    tp = len(matched)
    fp, fn = n_pred - tp, n_true - tp
    return {"tp": float(tp), "fp": float(fp), "fn": float(fn),
            "precision": tp / n_pred if n_pred else 1.0 * (n_true == 0),
            "recall": tp / n_true if n_true else 1.0 * (n_pred == 0),
            "f1": 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0,
            "mean_matched_iou": float(matched.mean()) if tp else 0.0}
