"""Segmentation metrics for binary (foreground / background) predictions.

Foreground is the label's 255 class (cell interior in the ISBI 2012 EM data). A model
output becomes a foreground mask at its head's decision boundary (`Head`): a sigmoid's
probability at 0.5, raw logits (a model exported without its sigmoid, as trained with
`BCEWithLogitsLoss`) at 0, several channels by their argmax (the last class is
foreground). All metrics are in [0, 1]:

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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from snncc.diagnostics import UsageError

if TYPE_CHECKING:
    from snncc.ir.graph import Graph

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


HeadKind = Literal["sigmoid", "softmax", "logits"]


@dataclass(frozen=True)
class Head:
    """What a segmentation model's output is, and where it decides foreground.

    `kind`: "sigmoid" (probabilities), "softmax" (class probabilities over channels) or
    "logits" (raw scores: the model ends in a convolution). `threshold` None means the
    decision boundary: probability 0.5, logit 0, or the argmax over several channels;
    a number thresholds the foreground probability (sigmoid, softmax) or logit instead.
    """

    kind: HeadKind
    threshold: float | None = None

    def check(self, channels: int) -> None:
        """Refuse a threshold that has no meaning for this output."""
        if self.threshold is not None and self.kind == "logits" and channels > 1:
            raise UsageError(f"--threshold {self.threshold:g}: this model outputs raw scores "
                             f"for {channels} classes, decided by their argmax; a threshold "
                             "applies to a one-channel output or to softmax probabilities")

    def describe(self, channels: int) -> str:
        if self.threshold is not None:
            what = "logit" if self.kind == "logits" else "foreground probability"
            return f"{self.kind} head, {what} > {self.threshold:g} (--threshold)"
        if channels > 1:
            return f"{self.kind} head, argmax of {channels} classes (last = foreground)"
        return f"{self.kind} head, {'logit > 0' if self.kind == 'logits' else 'probability > 0.5'}"

    def mask(self, output: np.ndarray) -> np.ndarray:
        """Per-pixel foreground decision (H×W) from one output (C×H×W)."""
        channels = output.shape[0]
        if self.threshold is None:
            if channels > 1:
                return output.argmax(axis=0) == channels - 1
            return output[0] > (0.0 if self.kind == "logits" else 0.5)
        if self.kind == "logits":
            return output[0] > self.threshold
        return self.probability(output) > self.threshold

    def probability(self, output: np.ndarray) -> np.ndarray:
        """Foreground probability (H×W) from one output (C×H×W): the last channel's,
        logits passed through a sigmoid (one channel) or a softmax (several)."""
        if self.kind != "logits":
            return output[-1]
        if output.shape[0] == 1:
            return 1.0 / (1.0 + np.exp(-output[0]))
        e = np.exp(output - output.max(axis=0, keepdims=True))
        return e[-1] / e.sum(axis=0)


def output_head(graph: Graph) -> HeadKind:
    """The head of `graph`'s first output: the op that computes it, looking through
    reshapes, flattens and transposes (a softmax over channels is often wrapped in them)."""
    from snncc.ir.ops import Sigmoid, Softmax, Transpose, View

    op = graph.outputs[0].owner
    while isinstance(op, (View, Transpose)):
        op = op.inputs[0].owner
    if isinstance(op, Sigmoid):
        return "sigmoid"
    return "softmax" if isinstance(op, Softmax) else "logits"


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
