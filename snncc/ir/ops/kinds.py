"""Op kinds as base classes, so that passes, simulators and targets ask `isinstance(op,
Population)` instead of each keeping its own tuple of op classes.

- `SpikeSource`: its result is spikes (the host's input encoder and the neuron populations).
- `Population`: a group of compartments whose input current is the sum of its inputs plus
  its bias (the spiking neurons and the non-spiking readout); tiled into cores by tile-cores.
- `Neurons`: a population of spiking neurons (both of the above; IF and LIF).
- `Synapse`: a weighted projection (conv, transposed conv, dense, sparse) — what feeds a
  population once fuse-linear has composed the linear chains.
- `View`: relabels its input's elements without computing (flatten, reshape).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from snncc.ir.op import Op

if TYPE_CHECKING:
    from snncc.ir.graph import Value


class SpikeSource(Op):
    """An op whose result carries spikes."""


class Population(Op):
    """An op that sums its input currents into compartments (one per result element)."""


class Neurons(SpikeSource, Population):
    """A population of spiking neurons."""


class Synapse(Op):
    """A weighted projection with a `weight` attribute (and an optional `bias`).

    `connectivity` names further weight-reference attributes that hold fixed integer
    structure rather than weights (syn.sparse's `indices`): passes that scale or quantize
    `weight` leave them alone, and simulators hand them to the synapse kernel after it.
    """

    connectivity: ClassVar[tuple[str, ...]] = ()


class View(Op):
    """An op that only relabels its single input's elements."""


def through_views(v: Value) -> Value:
    """`v` itself, or the value a chain of flatten / reshape views of it starts from (views
    only relabel a population's neurons)."""
    while isinstance(v.owner, View):
        v = v.owner.inputs[0]
    return v


def source_population(v: Value) -> Op | None:
    """The spiking op a synapse op's input comes from (through flatten/reshape views)."""
    op = through_views(v).owner
    return op if isinstance(op, SpikeSource) else None
