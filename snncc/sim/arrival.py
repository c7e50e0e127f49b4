"""When spikes reach each value of a spiking graph, and where a readout starts integrating.

One step per spiking hop (a spike at step t reaches the next population at t + 1, as on
the chip), plus τ_s / dt for every population whose synaptic filter the signal crosses
(the filter's lag). Conversion lets a readout wait for the slowest path, so that every
path's rate has arrived; a network trained through its dynamics can instead read from the
first arrival (in a U-Net, through the shortest skip path) and learn to use those steps.
"""

from __future__ import annotations

from typing import Literal

from snncc.ir.graph import Graph
from snncc.ir.ops import Readout
from snncc.ir.ops.kinds import SpikeSource


def arrival_steps(graph: Graph, first: bool = False) -> dict[int, int]:
    """id(value) → steps on the slowest path from the graph input to it (the fastest with
    `first`: when its first spikes can arrive)."""
    dt = graph.attrs.dt
    steps: dict[int, int] = {id(v): 0 for v in graph.inputs}
    pick = min if first else max
    for op in graph.ops:
        before = pick((steps[id(v)] for v in op.inputs if id(v) in steps), default=0)
        cost = 0
        if isinstance(op, SpikeSource):
            cost = 1 + round(getattr(op.attrs, "tau_s", 0.0) / dt)
        steps[id(op.result)] = before + cost
    return steps


def read_out_from(graph: Graph, delay: int | Literal["first"]) -> int:
    """Let every readout integrate from step `delay` on, or from its first spikes' arrival
    ("first"), instead of the slowest path's arrival conversion waits for; returns the
    delay set (the same for all readouts, as trained networks declare one)."""
    arrival = arrival_steps(graph, first=True)
    for op in graph.ops_of(Readout):
        steps = max(arrival[id(v)] for v in op.inputs) if delay == "first" else int(delay)
        if steps < 0:
            raise ValueError(f"readout delay must be ≥ 0, got {steps}")
        op.replace_attrs(delay=steps)
    delays = {op.attrs.delay for op in graph.ops_of(Readout)}
    if len(delays) != 1:
        raise ValueError(f"readouts start at different steps {sorted(delays)}")
    return delays.pop()
