"""Compensating the rate a reset-to-zero neuron loses (used by scale-rates).

A neuron with drive a (threshold units per step) that resets to zero throws away the charge
above threshold at every spike. With a uniformly distributed overshoot (spiky input makes
it so) that is a/2 per spike on average, so the rate falls from a to about a / (1 + a/2):
the loss grows with the rate, and it compounds layer after layer. Scaling the population's
input (weights and bias) by a gain g restores the mean rate over the layer's activation
distribution: to first order g = 1 + E[a²] / (2 E[a]).
"""

from __future__ import annotations

import math
from typing import Protocol


class Activity(Protocol):
    percentile: float
    mean: float
    mean_square: float


def zero_reset_gain(activity: Activity, rho: float) -> float:
    """The input gain that keeps a reset-to-zero population's mean rate at its ANN value.

    `rho` is the rate per step at the percentile activation. Without the second moment (a
    stats file gives mean and percentile only) the drive's E[a²]/E[a] is taken as ρ/2.
    """
    if activity.percentile <= 0 or activity.mean <= 0:
        return 1.0
    scale = rho / activity.percentile  # activation → drive per step
    if math.isnan(activity.mean_square):
        ratio = rho / 2
    else:
        ratio = scale * activity.mean_square / activity.mean
    return 1.0 + ratio / 2
