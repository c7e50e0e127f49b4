"""quantize-weights: weights, biases and thresholds in Loihi's integer formats.

Each population (and, by default, the readout: a block of non-spiking compartments) is one
Loihi block: its synapse groups (one per input synapse op) share the block's scale, and
each group gets its own power-of-two exponent, exactly as nengo-loihi discretizes a block
(see `snncc.hw.loihi.formats` and `snncc.hw.loihi.quantize`). The weights are replaced by
their quantized values (still float32, in the same units, so every mode runs the quantized
network); the population records `v_scale` (the chip's integer units per unit of voltage),
`weight_exps` and `weight_error` (relative RMS error of its weights). Spike amplitudes are
folded into the weights first: on the chip a spike is a single event.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.hw.loihi.quantize import quantize_graph
from snncc.ir.graph import Graph
from snncc.ir.properties import NORMALIZED, QUANTIZED, SPIKING
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext


@dataclass(frozen=True)
class QuantizeWeights(Pass):
    name = "quantize-weights"
    summary = "weights, biases, thresholds in Loihi's formats (8-bit mantissa + exponent)"
    requires = frozenset({SPIKING, NORMALIZED})
    establishes = frozenset({QUANTIZED})

    bits: int = 8
    readout: bool = True

    def __post_init__(self) -> None:
        check(1 <= self.bits <= 8, f"quantize-weights: bits must be in 1..8 (Loihi stores at "
              f"most 8-bit weight mantissas), got {self.bits}")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        layers = quantize_graph(graph, self.bits, self.readout)
        graph.prune_weights()
        ctx.record(self.name, bits=self.bits, readout=self.readout, layers=layers)
        return bool(layers)
