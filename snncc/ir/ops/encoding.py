"""The spiking input population: how an analog image becomes spikes.

Loihi takes spikes only. As in nengo-loihi, where the first on-chip convolution is fed by
the neurons of an off-chip ensemble, `neuron.input` is a population of integrate-and-fire
neurons run on the host: each step `v += x` (the pixel value), a spike when
`v ≥ v_threshold`, then reset. Its spikes enter the chip through synapse ops like any
other population's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snncc.ir.attributes import OMIT_DEFAULT
from snncc.ir.op import register_op
from snncc.ir.ops.common import float_input, require
from snncc.ir.ops.kinds import SpikeSource
from snncc.ir.ops.spiking import Reset
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore


@dataclass(frozen=True)
class SpikeInputAttrs:
    v_threshold: float = 1.0
    reset: Reset = "subtract"
    amplitude: float = 1.0
    v_initial: float = 0.0
    mean_rate: float | None = field(default=None, metadata=OMIT_DEFAULT)


@register_op
class SpikeInput(SpikeSource):
    """Host-side integrate-and-fire encoder of an analog input (one neuron per value)."""

    name = "neuron.input"
    summary = "host-side spiking input population: v += x each step (x = the analog input)"
    Attrs = SpikeInputAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: SpikeInputAttrs, weights: WeightStore):
        (x,) = in_types
        float_input(x)
        require(attrs.v_threshold > 0, f"v_threshold must be > 0, got {attrs.v_threshold}")
        require(attrs.amplitude > 0, f"amplitude must be > 0, got {attrs.amplitude}")
        require(attrs.mean_rate is None or 0 <= attrs.mean_rate <= 1,
                f"mean_rate must lie in [0, 1] spikes per step, got {attrs.mean_rate}")
        return x.with_dtype("i1")
