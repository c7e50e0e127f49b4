"""Segmentation metrics against hand-computed cases and a scipy-free Rand error."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from snncc.diagnostics import UsageError
from snncc.evaluate.metrics import Head, mean_metrics, rand_error, segmentation_metrics


def test_accuracy_iou_dice_by_hand():
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    label = np.array([[1, 0, 0, 0], [1, 1, 1, 0]], bool)
    m = segmentation_metrics(pred, label)
    # agree on 5 of 8 pixels; |P∩G| = 2, |P∪G| = 5, |P| + |G| = 3 + 4
    assert m["pixel_accuracy"] == pytest.approx(5 / 8)
    assert m["iou"] == pytest.approx(2 / 5)
    assert m["dice"] == pytest.approx(4 / 7)


def test_empty_foregrounds_score_perfectly():
    empty = np.zeros((3, 3), bool)
    m = segmentation_metrics(empty, empty)
    assert m == {"pixel_accuracy": 1.0, "iou": 1.0, "dice": 1.0, "rand_error": 0.0}
    full = ~empty
    assert segmentation_metrics(full, empty)["iou"] == 0.0


def test_rand_error_merge_by_hand():
    # label: segments {0,1} and {3,4}; the prediction merges them into one
    label = np.array([[1, 1, 0, 1, 1, 0]], bool)
    pred = np.array([[1, 1, 1, 1, 1, 0]], bool)
    # n = [2, 2], a = [2, 2], b = [4]: V = 8 / (4 + 8)
    assert rand_error(pred, label) == pytest.approx(1 / 3)


def test_rand_error_split_with_background_by_hand():
    # label: one segment of 4; prediction: {0,1}, a background pixel, {3,4}
    label = np.array([[1, 1, 1, 1, 0]], bool)
    pred = np.array([[1, 1, 0, 1, 1]], bool)
    # n = [2, 1, 1], a = [4], b = [2, 1, 1]: V = 6 / (8 + 3)
    assert rand_error(pred, label) == pytest.approx(5 / 11)


def test_rand_error_perfect_and_label_background_ignored():
    label = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], bool)
    assert rand_error(label, label) == 0.0
    # extra predicted foreground on the label's background does not count
    assert rand_error(label | np.array([[0, 0, 0, 1], [1, 0, 0, 0]], bool), label) == 0.0


def _components(mask: np.ndarray) -> np.ndarray:
    """4-connected components by breadth-first search (labels 1..n, background 0)."""
    out = np.zeros(mask.shape, int)
    n = 0
    for start in zip(*np.nonzero(mask), strict=True):
        if out[start]:
            continue
        n += 1
        out[start] = n
        queue = deque([start])
        while queue:
            r, c = queue.popleft()
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] \
                        and not out[rr, cc]:
                    out[rr, cc] = n
                    queue.append((rr, cc))
    return out


def _rand_error_by_pairs(pred: np.ndarray, label: np.ndarray) -> float:
    """1 − V_Rand from ordered pixel pairs over the label's foreground (no scipy)."""
    truth, guess = _components(label), _components(pred)
    keep = truth > 0
    t, g = truth[keep], guess[keep]
    same_t = t[:, None] == t[None, :]
    same_g = g[:, None] == g[None, :]
    both = float((same_t & same_g).sum())
    return 1.0 - both / (0.5 * same_t.sum() + 0.5 * same_g.sum())


@pytest.mark.parametrize("seed", range(5))
def test_rand_error_matches_pair_counting(seed):
    rng = np.random.default_rng(seed)
    label = rng.random((12, 12)) < 0.55
    pred = label ^ (rng.random((12, 12)) < 0.15)
    assert rand_error(pred, label) == pytest.approx(_rand_error_by_pairs(pred, label))
    assert 0.0 < rand_error(pred, label) < 1.0


def test_each_head_decides_at_its_boundary():
    prob = np.array([[[0.2, 0.7]]])
    assert Head("sigmoid").mask(prob).tolist() == [[False, True]]
    logits = np.array([[[-0.1, 0.3]]])  # probabilities 0.475 and 0.574
    assert Head("logits").mask(logits).tolist() == [[False, True]]
    assert np.allclose(Head("logits").probability(logits), 1 / (1 + np.exp(-logits[0])))
    scores = np.array([[[0.6, 0.1]], [[0.4, 0.9]]])  # 2 classes: last is foreground
    assert Head("softmax").mask(scores).tolist() == [[False, True]]
    assert Head("logits").mask(scores * 5 - 2).tolist() == [[False, True]]


def test_threshold_overrides_the_boundary():
    assert Head("sigmoid", 0.8).mask(np.array([[[0.2, 0.7, 0.9]]])).tolist() == [
        [False, False, True]]
    assert Head("logits", -0.2).mask(np.array([[[-0.1, -0.3]]])).tolist() == [[True, False]]
    probs = np.array([[[0.3, 0.1]], [[0.7, 0.9]]])
    assert Head("softmax", 0.8).mask(probs).tolist() == [[False, True]]
    with pytest.raises(UsageError, match="argmax; a threshold applies"):
        Head("logits", 0.5).check(3)


def test_mean_metrics():
    rows = [{"pixel_accuracy": 1.0, "iou": 0.5, "dice": 0.5, "rand_error": 0.0},
            {"pixel_accuracy": 0.5, "iou": 0.0, "dice": 0.0, "rand_error": 1.0}]
    assert mean_metrics(rows) == {"pixel_accuracy": 0.75, "iou": 0.25, "dice": 0.25,
                                  "rand_error": 0.5}
