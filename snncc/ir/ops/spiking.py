"""Spiking ops: neuron populations and the non-spiking readout.

A population's input current is the **sum** of all its inputs (each the result of a
synapse op such as `syn.conv2d`) plus its bias. Names follow NIR where they mean the same
thing (`v_threshold`, `tau`).

Every population may carry its tiling into Loihi cores: `block_shape` (the shape of one
core-sized block over the population's C×H×W, set by `tile-cores`) and `chips` (the chip of
each block in row-major block order, set by `partition-chips`).

`quantize-weights` records Loihi's integer format on each population it quantized:
`v_scale` (integer voltage units per unit of `v`; weights, bias and threshold times
`v_scale` are the chip's integers), `weight_exps` (the power-of-two exponent of each input's
synapse group, in input order) and `weight_error` (relative RMS error of the quantized
weights). `v_initial` is the membrane voltage at the first step. `tau_s` (seconds) is the
time constant of the synaptic current filter: 0 (the default) adds each step's synaptic
input to the membrane as it arrives; τ_s > 0 low-passes it first, i ← i·e^(−dt/τ_s) +
(1 − e^(−dt/τ_s))·q (Loihi's current decay; nengo's `Lowpass(τ_s)` synapse), so that
excitatory and inhibitory spikes cancel before they reach a membrane that resets to zero
and cannot go below zero. `v_min` (≤ 0, voltage units like `v_threshold`) is that floor:
Loihi clips the membrane to [v_min, 2^23 − 1] (a compartment's `vmin`, discretized to
−(2^k − 1) integer units, k ≤ 23; nengo-loihi's default 0); below zero the membrane keeps
inhibition without a filter. `ideal` mode has no floor at all. `rate_gain` (set by
`scale-rates{compensate}`) is the factor by which the population's inputs were raised to
make up for the rate a reset-to-zero neuron loses: its rate model's rate ÷ `rate_gain` is
the rate the next layers expect. `mean_rate` (set by `scale-rates`) is the expected spikes per
step of an average neuron, from the activation statistics; partition-chips and the energy
estimate weight traffic by it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from snncc.ir.attributes import OMIT_DEFAULT, WeightRef
from snncc.ir.op import register_op
from snncc.ir.ops.common import float_input, per_channel, require, same_shapes
from snncc.ir.ops.kinds import Neurons, Population
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore

Reset = Literal["subtract", "zero"]


def block_count(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> int:
    """How many core-sized blocks tile a population of `shape` (batch excluded)."""
    return math.prod(-(-n // b) for n, b in zip(shape, block_shape, strict=True))


def _population_type(in_types: list[TensorType], attrs: Any, weights: WeightStore):
    for t in in_types:
        float_input(t, "input current")
    same_shapes(in_types, "input currents")
    shape = in_types[0].shape
    per_channel(weights, attrs.bias, shape, "bias")
    if attrs.block_shape is not None:
        per_image = shape[1:]
        require(len(attrs.block_shape) == len(per_image)
                and all(1 <= b <= n for b, n in zip(attrs.block_shape, per_image, strict=True)),
                f"block_shape {list(attrs.block_shape)} does not tile {list(per_image)}")
        blocks = block_count(per_image, attrs.block_shape)
        require(not attrs.chips or len(attrs.chips) == blocks,
                f"chips lists {len(attrs.chips)} blocks, the population has {blocks}")
    else:
        require(not attrs.chips, "chips given without block_shape")
    require(all(c >= 0 for c in attrs.chips), "chip indices must be ≥ 0")
    return shape


def _neuron_checks(v_threshold: float, refractory: int, amplitude: float) -> None:
    require(v_threshold > 0, f"v_threshold must be > 0, got {v_threshold}")
    require(refractory >= 0, f"refractory must be ≥ 0 steps, got {refractory}")
    require(amplitude > 0, f"amplitude must be > 0, got {amplitude}")


def _quant_checks(attrs: Any, n_inputs: int) -> None:
    require(attrs.v_scale is None or attrs.v_scale > 0, f"v_scale must be > 0, got {attrs.v_scale}")
    require(not attrs.weight_exps or len(attrs.weight_exps) == n_inputs,
            f"weight_exps lists {len(attrs.weight_exps)} exponents for {n_inputs} inputs")
    require(all(-8 <= e <= 7 for e in attrs.weight_exps),
            f"weight_exps must lie in Loihi's range -8..7, got {list(attrs.weight_exps)}")
    require(attrs.weight_error is None or attrs.weight_error >= 0, "weight_error must be ≥ 0")


def _filter_check(attrs: Any) -> None:
    require(attrs.tau_s >= 0, f"tau_s must be ≥ 0 seconds, got {attrs.tau_s}")
    require(attrs.v_min <= 0, f"v_min must be ≤ 0, got {attrs.v_min}")
    require(attrs.rate_gain > 0, f"rate_gain must be > 0, got {attrs.rate_gain}")
    require(attrs.mean_rate is None or 0 <= attrs.mean_rate <= 1,
            f"mean_rate must lie in [0, 1] spikes per step, got {attrs.mean_rate}")


@dataclass(frozen=True)
class IFAttrs:
    v_threshold: float = 1.0
    reset: Reset = "subtract"
    refractory: int = 0
    amplitude: float = 1.0
    bias: WeightRef | None = None
    block_shape: tuple[int, ...] | None = None
    chips: tuple[int, ...] = ()
    v_initial: float = 0.0
    v_scale: float | None = None
    weight_exps: tuple[int, ...] = ()
    weight_error: float | None = None
    tau_s: float = field(default=0.0, metadata=OMIT_DEFAULT)
    mean_rate: float | None = field(default=None, metadata=OMIT_DEFAULT)
    v_min: float = field(default=0.0, metadata=OMIT_DEFAULT)
    rate_gain: float = field(default=1.0, metadata=OMIT_DEFAULT)


@register_op
class IF(Neurons):
    """Integrate-and-fire: v += sum(inputs) + bias each step; spike and reset at v_threshold.

    A spike carries `amplitude` into the synapses it drives.
    """

    name = "neuron.if"
    summary = "integrate-and-fire population (sums its inputs)"
    Attrs = IFAttrs
    max_inputs = None

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: IFAttrs, weights: WeightStore):
        _neuron_checks(attrs.v_threshold, attrs.refractory, attrs.amplitude)
        _quant_checks(attrs, len(in_types))
        _filter_check(attrs)
        return TensorType(_population_type(in_types, attrs, weights), "i1")


@dataclass(frozen=True)
class _Leak:
    tau: float = 0.02


@dataclass(frozen=True)
class LIFAttrs(IFAttrs, _Leak):
    """IF's attributes after the membrane time constant `tau`; resets to zero by default."""

    reset: Reset = "zero"


@register_op
class LIF(Neurons):
    """Leaky integrate-and-fire with membrane time constant `tau` (seconds)."""

    name = "neuron.lif"
    summary = "leaky integrate-and-fire population (sums its inputs)"
    Attrs = LIFAttrs
    max_inputs = None

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: LIFAttrs, weights: WeightStore):
        _neuron_checks(attrs.v_threshold, attrs.refractory, attrs.amplitude)
        require(attrs.tau > 0, f"tau must be > 0 seconds, got {attrs.tau}")
        _quant_checks(attrs, len(in_types))
        _filter_check(attrs)
        return TensorType(_population_type(in_types, attrs, weights), "i1")


@dataclass(frozen=True)
class ReadoutAttrs:
    bias: WeightRef | None = None
    block_shape: tuple[int, ...] | None = None
    chips: tuple[int, ...] = ()
    delay: int = 0
    v_scale: float | None = None
    weight_exps: tuple[int, ...] = ()
    weight_error: float | None = None


@register_op
class Readout(Population):
    """Non-spiking output: integrates its summed input current; the host reads the mean
    current over the run (what the ANN's last linear layer computed), leaving out the first
    `delay` steps, in which spikes from the input have not yet reached it."""

    name = "neuron.readout"
    summary = "non-spiking readout integrating its summed input current"
    Attrs = ReadoutAttrs
    max_inputs = None

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: ReadoutAttrs, weights: WeightStore):
        require(attrs.delay >= 0, f"delay must be ≥ 0 steps, got {attrs.delay}")
        _quant_checks(attrs, len(in_types))
        return TensorType(_population_type(in_types, attrs, weights))
