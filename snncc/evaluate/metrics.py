"""Segmentation metrics for binary (foreground / background) predictions.

Foreground is the label's 255 class (cell interior in the ISBI 2012 EM data); a
probability map is thresholded at 0.5. All metrics are in [0, 1]:

- pixel accuracy: the fraction of pixels classified correctly;
- IoU: |P ∩ G| / |P ∪ G| of the foreground sets (1 when both are empty);
- Dice: 2|P ∩ G| / (|P| + |G|) (1 when both are empty);
- Rand error: 1 − V_Rand, the foreground-restricted Rand F-score of Arganda-Carreras et al.
  (Front. Neuroanat. 2015) without border thinning: segments are the 4-connected
  components of the foreground, in the label and in the prediction; only pixels that are
  foreground in the label count (the label's background is excluded); predicted background
  pixels among them form one segment. With n_ij the pixels in label segment i and
  predicted segment j, a_i and b_j the row and column sums,
  V_split = Σ n_ij² / Σ b_j², V_merge = Σ n_ij² / Σ a_i², and V_Rand is their harmonic
  mean, Σ n_ij² / (½ Σ a_i² + ½ Σ b_j²). An empty label foreground gives error 0.
"""

from __future__ import annotations

import numpy as np

METRICS = ("pixel_accuracy", "iou", "dice", "rand_error")


def _ratio(num: float, den: float) -> float:
    return 1.0 if den == 0 else num / den


def rand_error(pred: np.ndarray, label: np.ndarray) -> float:
    """1 − foreground-restricted Rand F-score of two binary masks (see module doc)."""
    from scipy import ndimage

    truth, _ = ndimage.label(label)
    guess, _ = ndimage.label(pred)
    keep = truth > 0
    if not keep.any():
        return 0.0
    t, g = truth[keep].astype(np.int64), guess[keep].astype(np.int64)
    pairs = t * (int(g.max()) + 1) + g
    n_ij = np.unique(pairs, return_counts=True)[1].astype(np.float64)
    a = np.unique(t, return_counts=True)[1].astype(np.float64)
    b = np.unique(g, return_counts=True)[1].astype(np.float64)
    v_rand = (n_ij**2).sum() / (0.5 * (a**2).sum() + 0.5 * (b**2).sum())
    return float(1.0 - v_rand)


def segmentation_metrics(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """All metrics of one binary prediction against one binary label (same shape)."""
    pred, label = np.asarray(pred, bool), np.asarray(label, bool)
    both = float(np.logical_and(pred, label).sum())
    either = float(np.logical_or(pred, label).sum())
    return {
        "pixel_accuracy": float((pred == label).mean()),
        "iou": _ratio(both, either),
        "dice": _ratio(2 * both, float(pred.sum() + label.sum())),
        "rand_error": rand_error(pred, label),
    }


def to_mask(output: np.ndarray) -> np.ndarray:
    """Per-pixel foreground decision from a model output (C×H×W): probability > 0.5 for one
    channel, else the argmax being the last class."""
    if output.shape[0] == 1:
        return output[0] > 0.5
    return output.argmax(axis=0) == output.shape[0] - 1


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
