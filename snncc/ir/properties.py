"""IR properties: named facts about a graph that passes require and establish.

A graph lists the properties that hold in its `properties` attribute (printed in the text
format). Each property here is a constant with the check that tells whether it holds on a
graph, so the pass manager can confirm what a pass claims to establish and the IR loader can
refuse a hand-edited claim. Plugins declare their own with `Property(name, summary)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from snncc.ir.graph import Graph
from snncc.ir.ops import Relu
from snncc.ir.ops.kinds import Neurons, Population, SpikeSource

Check = Callable[[Graph], "str | None"]

PROPERTIES: dict[str, Property] = {}


@dataclass(frozen=True)
class Property:
    """A named IR property; `check(graph)` says why it does not hold (None: it holds, or
    it cannot be checked from the graph alone)."""

    name: str
    summary: str
    check: Check = field(default=lambda graph: None, compare=False, repr=False)

    def __post_init__(self) -> None:
        PROPERTIES.setdefault(self.name, self)

    def __str__(self) -> str:
        return self.name


def _first(graph: Graph, bad: Callable, what: str) -> str | None:
    op = next((op for op in graph.ops if bad(op)), None)
    return None if op is None else f"{op.describe()} {what}"


def _spiking(graph: Graph) -> str | None:
    if not any(isinstance(op, Population) for op in graph.ops):
        return "the graph has no neuron populations"
    return _first(graph, lambda op: isinstance(op, Relu), "is still an analog ReLU")


CANONICAL = Property("canonical", "no op that does nothing, no cancelling transposes")
LINEAR_FUSED = Property("linear-fused",
                        "one projection per pair of populations: linear chains composed")
SPIKING = Property("spiking", "ReLUs replaced by spiking neuron populations", _spiking)
NORMALIZED = Property(
    "normalized", "firing rates set from activation statistics or training (mean_rate recorded)",
    lambda g: _first(g, lambda op: isinstance(op, SpikeSource) and op.attrs.amplitude != 1.0,
                     "still carries a spike amplitude (scale-rates folds them into weights)"))
QUANTIZED = Property(
    "quantized", "weights, biases and thresholds in Loihi's integer formats",
    lambda g: _first(g, lambda op: isinstance(op, Neurons) and op.attrs.v_scale is None,
                     "has no v_scale"))
TILED = Property(
    "tiled", "every neuron population split into core-sized blocks (block_shape)",
    lambda g: _first(g, lambda op: isinstance(op, Neurons) and op.attrs.block_shape is None,
                     "has no block_shape"))
PLACED = Property(
    "placed", "every block placed on a chip (chips)",
    lambda g: _first(g, lambda op: isinstance(op, Neurons) and not op.attrs.chips,
                     "has no chips"))
