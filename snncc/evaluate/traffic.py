"""Spike messages between chips, from a placed IR and measured per-layer spike counts.

On Loihi a spike leaves its core once for every core that holds one of its targets. After
`tile-cores` and `partition-chips` each on-chip population carries `block_shape` (one block
per core) and `chips` (the chip of each block). The block graph `partition-chips` builds
counts, block pair by block pair, the source neurons that reach each target block; fed with
each layer's measured spikes per neuron instead of its expected rate, its edges are the
messages of the run. Projections from or into a population on the host (the input
encoder, the readout) count one message per spike, within a chip; so does every
projection of a graph without placement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from snncc.hw.loihi.blockgraph import traffic
from snncc.ir.graph import Graph
from snncc.ir.ops.kinds import Neurons, Population, source_population


@dataclass(frozen=True)
class ChipTraffic:
    """Spike messages per image: all of them and those between chips; `chips` is how many
    chips the placement uses (0 when the graph carries no placement)."""

    messages: float
    interchip_messages: float
    chips: int

    @property
    def placed(self) -> bool:
        return self.chips > 0

    @property
    def interchip_fraction(self) -> float:
        return self.interchip_messages / self.messages if self.messages > 0 else 0.0


def _one_per_spike(graph: Graph, spikes: Mapping[str, float]) -> float:
    """Messages when every spike is one message per projection it feeds (no placement)."""
    total = 0.0
    for syn in graph.ops:
        feeds = any(isinstance(u, Population) for u in graph.users(syn.result))
        src = source_population(syn.inputs[0]) if feeds and syn.inputs else None
        if src is not None:
            total += spikes.get(src.result.name, 0.0)
    return total


def chip_traffic(graph: Graph, spikes: Mapping[str, float]) -> ChipTraffic:
    """Spike messages per image given each population's spike count per image (`spikes`)."""
    from snncc.hw.loihi.chip_blocks import block_graph, placement_of
    from snncc.hw.loihi.geometry import lower

    chips = {c for op in graph.ops if isinstance(op, Neurons) for c in op.attrs.chips}
    if not chips:
        return ChipTraffic(_one_per_spike(graph, spikes), 0.0, 0)
    lowered = lower(graph)
    host = 0.0  # one message per spike into or out of the host
    for layer in lowered.layers:
        for src in (lowered.source(p) for p in layer.projections):
            if layer.role != "chip" or src.role != "chip":
                host += spikes.get(src.op.result.name, 0.0)
    per_neuron = {x.op.result.name: spikes.get(x.op.result.name, 0.0) / int(np.prod(x.shape))
                  for x in lowered.chip_layers()}
    blocks = block_graph(lowered, per_neuron)
    inter, intra = traffic(blocks, placement_of(lowered, blocks).chip_of())
    return ChipTraffic(inter + intra + host, inter, len(chips))
