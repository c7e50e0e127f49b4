"""Loihi's number formats, as nengo-loihi 1.1 discretizes a block (`builder/discretize.py`).

Per population ("block"), with w_max the largest |weight| over all its synapse groups:

- weights are scaled by w_scale = 255 / w_max; a synapse group whose own largest weight is
  2^-d of w_max is stored with exponent w_exp - d (≥ -6) and a mantissa scaled up by 2^d,
  so small groups keep their precision; nengo-loihi's synapses are mixed-sign with 8 weight
  bits, i.e. `shift_bits` = 1: mantissas are even numbers in [-254, 254] (127 levels a side);
- voltages are in units of v_scale = w_scale · 2^(6 + w_exp), w_exp the largest exponent in
  0 … -7 for which threshold and bias fit: vth = round(v_th · v_scale) rounded to a
  mantissa times 2^6 with the mantissa ≤ 2^17 - 1; bias = mantissa (|m| ≤ 4095) times
  2^e (0 ≤ e ≤ 7);
- the compartment state is integer: input current 21 bits + sign per step, current and
  u = current + bias 23 bits + sign;
- a synaptic current filter (τ_s > 0, nengo's `Lowpass`) decays the current by the integer
  `decay_u` each step; its weights are multiplied by `u_infactor` (the inverse of the
  summed integer decay series), so voltages are in units 1 / u_infactor larger.

`bits` < 8 keeps fewer mantissa bits the same way (shift_bits = 9 - bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VTH_MAN_MAX = 2**17 - 1
VTH_EXP = 6
VTH_MAX = VTH_MAN_MAX * 2**VTH_EXP
BIAS_MAN_MAX = 2**12 - 1
BIAS_EXP_MAX = 2**3 - 1
BIAS_MAX = BIAS_MAN_MAX * 2**BIAS_EXP_MAX
Q_BITS = 21  # synaptic input accumulated in one step (plus sign)
U_BITS = 23  # compartment current and u = current + bias (plus sign)
V_MAX = 2**23 - 1  # nengo-loihi's vmax for IF/LIF compartments (vmin = 0)
VMIN_EXP_MAX = 23  # the membrane floor vmin ≥ −2^23 + 1 (nengo-loihi block.py)
MIN_WEIGHT_EXP = -6  # nengo-loihi keeps the real weight exponent 6 + exp ≥ 0
DECAY_BITS = 12  # decays are fractions of 2^12
W_MAX_SCALED = 255.0


class QuantizeError(ValueError):
    """A block that does not fit Loihi's formats; the pass turns it into a located error."""


@dataclass(frozen=True)
class BlockFormat:
    """How one population's weights, bias and threshold are stored."""

    v_scale: float  # integer voltage units per unit of v (weights: times u_infactor)
    w_scale: float  # 255 / w_max
    w_exp: int  # the block's weight exponent (0 … -7)
    group_exps: tuple[int, ...]  # each synapse group's exponent
    group_shifts: tuple[int, ...]  # each group's extra mantissa scaling 2^d
    bits: int

    @property
    def shift_bits(self) -> int:
        return 9 - self.bits

    @property
    def mantissa_max(self) -> int:
        return max(2 ** (self.bits - 1) - 1, 1)


def decay_magnitude(decay: int, x0: float = 2.0**21, offset: int = 1) -> float:
    """nengo-loihi's estimate of the summed series of integer decays of x0, over x0."""
    q = 0.494  # expected loss per rounding, as nengo-loihi measured it
    r = (2**DECAY_BITS - offset - decay) / 2**DECAY_BITS
    n = -math.log1p(x0 * (1 - r) / q) / math.log(r)
    principal = (1 - r ** (n + 1)) / (1 - r)
    loss = q / ((1 - r) * x0) * (n + 1 - (1 - r ** (n + 1)) / (1 - r))
    return principal - loss


def membrane_floor(v_min_scaled: float) -> int:
    """A compartment's `vmin` in integer units from the wanted floor (≤ 0, already times
    v_scale), as nengo-loihi discretizes it (`builder/discretize.py`): −(2^k − 1), k the
    rounded log2, at most 23 (Loihi's range [−2^23 + 1, 0], `block.py`)."""
    k = min(max(round(math.log2(-v_min_scaled + 1)), 0), VMIN_EXP_MAX)
    return -(2**k) + 1


def current_decay(dt: float, tau_s: float) -> tuple[int, float]:
    """The integer current decay of a synaptic filter τ_s and its weights' `u_infactor`.

    τ_s = 0 (no filter, nengo's synapse=None) gives 4094: the current keeps under 1/4096 of
    itself, i.e. each step's input is used once; its `u_infactor` is taken as exactly 1.
    """
    if tau_s == 0:
        return 2**DECAY_BITS - 2, 1.0
    d = -math.expm1(-dt / tau_s)
    decay = round(min(max(d * (2**DECAY_BITS - 1) - 1, 0), 2**DECAY_BITS - 1))
    return decay, 1.0 / decay_magnitude(decay)


def choose_format(group_maxima: list[float], v_threshold: float, bias_abs_max: float,
                  bits: int, u_infactor: float = 1.0) -> BlockFormat:
    """nengo-loihi's choice of scales and exponents for a block."""
    w_max = max(group_maxima, default=0.0)
    if w_max <= 1e-8:
        raise QuantizeError("it has no non-zero weights")
    w_scale = W_MAX_SCALED / w_max
    for w_exp in range(0, -8, -1):
        v_scale = w_scale * 2.0 ** (6 + w_exp) / u_infactor
        if round(v_threshold * v_scale) <= VTH_MAX and round(bias_abs_max * v_scale) <= BIAS_MAX:
            break
    else:
        raise QuantizeError(f"its threshold {v_threshold:g} and bias {bias_abs_max:g} are too "
                            f"large next to its largest weight {w_max:g} for any weight exponent")
    exps, shifts = [], []
    for m in group_maxima:
        d = math.floor(math.log2(w_max / m)) if m > 1e-16 else w_exp - MIN_WEIGHT_EXP
        exp = max(w_exp - d, MIN_WEIGHT_EXP)
        exps.append(exp)
        shifts.append(w_exp - exp)
    return BlockFormat(v_scale, w_scale, w_exp, tuple(exps), tuple(shifts), bits)


def quantize_group(w: np.ndarray, fmt: BlockFormat, index: int) -> np.ndarray:
    """A synapse group's weights rounded to its mantissa grid (returned in float units)."""
    unit = 2.0 ** fmt.shift_bits / (fmt.w_scale * 2.0 ** fmt.group_shifts[index])
    mant = np.clip(np.round(w / unit), -fmt.mantissa_max, fmt.mantissa_max)
    return mant * unit


def quantize_threshold(v_threshold: float, fmt: BlockFormat) -> float:
    man = round(v_threshold * fmt.v_scale / 2**VTH_EXP)
    if man < 1:
        raise QuantizeError(f"its threshold {v_threshold:g} rounds to zero next to its largest "
                            "weight; raise the threshold or lower the weights")
    return min(man, VTH_MAN_MAX) * 2**VTH_EXP / fmt.v_scale


def quantize_bias(bias: np.ndarray, fmt: BlockFormat | float) -> np.ndarray:
    """Bias to mantissa · 2^exponent integers (per neuron), returned in float units; `fmt`
    the block's format or its `v_scale`. Clipped to ±BIAS_MAX integer units."""
    v_scale = fmt.v_scale if isinstance(fmt, BlockFormat) else fmt
    b = np.clip(np.round(bias * v_scale), -BIAS_MAX, BIAS_MAX)
    exp = np.ceil(np.log2(np.maximum(np.abs(b) / BIAS_MAN_MAX, 1.0)))
    return np.round(b / 2.0**exp) * 2.0**exp / v_scale
