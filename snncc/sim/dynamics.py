"""Population dynamics per step: float (`ideal`) and nengo-loihi's integer emulator (`loihi`).

Both models step the same way (a spike leaves a population at step t and reaches the
synapses of the next at step t + 1, as on the chip). Per step, given the summed synaptic
input `q`:

ideal (float):  i ← i·(1 − d_s) + d_s·q       (d_s = 1 − e^(−dt/τ_s); i = q without a filter)
                v ← v·(1 − d) + i + bias        (d = 0 for IF, 1 − e^(−dt/τ) for LIF)
                held at 0 while refractory; spike where v ≥ v_threshold; then
                v ← v − v_threshold ("subtract") or 0 ("zero"). No lower bound on v.

loihi (integer, as `nengo_loihi/emulator/interface.py` `CompartmentState.update`, with the
compartment configured as nengo-loihi configures SpikingRectifiedLinear / LIF neurons fed
by unfiltered (synapse=None) connections):
                q wraps at 21 bits + sign; current ← decay(current, decay_u) + q (decay_u
                = 4094 without a filter: the current keeps under 1/4096 of itself);
                u ← current + bias (23 bits + sign); v ← decay(v, decay_v) + u;
                v clipped to [vmin, 2^23 − 1] (vmin = 0 unless the population has a
                `v_min`); v ← 0 while refractory; spike where v > vth;
                v ← 0 on a spike (reset to zero, whatever the graph asks).
decay(x, δ) = sign(x)·⌊|x|·(4096 − δ)/4096⌋ (with δ + 1 for the current).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snncc.hw.loihi.formats import DECAY_BITS, Q_BITS, U_BITS, V_MAX


def lif_decay(dt: float, tau: float) -> float:
    """Fraction of the voltage lost per step."""
    return -math.expm1(-dt / tau)


def _decay_int(x: np.ndarray, keep: int) -> np.ndarray:
    return np.sign(x) * ((np.abs(x) * keep) >> DECAY_BITS)


def wrap(x: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Two's-complement wrap-around to `bits` + sign, and how many values overflowed."""
    limit = 1 << bits
    over = int(np.count_nonzero((x < -limit) | (x >= limit)))
    if over:
        x = ((x + limit) & (2 * limit - 1)) - limit
    return x, over


@dataclass
class FloatNeurons:
    """Float IF/LIF state for one batch (also the host's input population)."""

    v: np.ndarray
    threshold: float
    reset_to_zero: bool
    keep: float = 1.0  # 1 − d
    refractory: int = 0
    bias: np.ndarray | float = 0.0
    ref_count: np.ndarray | None = None
    filter_d: float = 1.0  # d_s: the share of this step's input in the filtered current
    current: np.ndarray | float = 0.0

    def step(self, q: np.ndarray | float) -> np.ndarray:
        if self.filter_d != 1.0:
            q = self.current = self.current * (1.0 - self.filter_d) + self.filter_d * q
        v = self.v
        if self.keep != 1.0:
            v *= self.keep
        v += q
        v += self.bias
        if self.refractory:
            assert self.ref_count is not None
            v[self.ref_count > 0] = 0.0
        spikes = v >= self.threshold
        if self.reset_to_zero:
            v[spikes] = 0.0
        else:
            v -= spikes * self.threshold
        if self.refractory:
            assert self.ref_count is not None
            self.ref_count[spikes] = self.refractory + 1
            np.maximum(self.ref_count - 1, 0, out=self.ref_count)
        return spikes


@dataclass
class LoihiNeurons:
    """Integer compartment state for one batch, in the chip's units."""

    v: np.ndarray  # int64
    vth: int
    bias: np.ndarray | int
    keep_v: int  # 4096 − decay_v
    refractory: int = 0
    decay_u: int = 2**DECAY_BITS - 2  # nengo-loihi's synapse=None
    current: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ref_count: np.ndarray | None = None
    overflows: int = 0
    vmin: int = 0  # the membrane floor (≤ 0)

    def __post_init__(self) -> None:
        self.current = np.zeros_like(self.v)
        if self.refractory:
            self.ref_count = np.zeros(self.v.shape, np.int32)

    def input(self, q: np.ndarray | int) -> np.ndarray:
        """Accumulate this step's synaptic input; return u = current + bias."""
        q, o1 = wrap(np.rint(np.asarray(q, np.float64)).astype(np.int64), Q_BITS)
        cur = _decay_int(self.current, 2**DECAY_BITS - 1 - self.decay_u) + q
        self.current, o2 = wrap(cur, U_BITS)
        u, o3 = wrap(self.current + self.bias, U_BITS)
        self.overflows += o1 + o2 + o3
        return u

    def step(self, q: np.ndarray | int) -> np.ndarray:
        u = self.input(q)
        v = (self.v if self.keep_v == 2**DECAY_BITS else _decay_int(self.v, self.keep_v)) + u
        np.clip(v, self.vmin, V_MAX, out=v)
        if self.refractory:
            assert self.ref_count is not None
            v[self.ref_count > 0] = 0
        spikes = v > self.vth
        v[spikes] = 0
        self.v = v
        if self.refractory:
            assert self.ref_count is not None
            self.ref_count[spikes] = self.refractory + 1
            np.maximum(self.ref_count - 1, 0, out=self.ref_count)
        return spikes
