"""The rate model of a spiking graph, as an analog graph the analog interpreter runs.

Every population becomes sum → + bias → ReLU (→ × amplitude / (threshold · rate_gain): its
spike rate per step times the spike's amplitude, what its synapses pass on on average; the
`rate_gain` that scale-rates added to make up for the reset-to-zero loss is taken out, as
the neurons lose it); the input
population becomes x × amplitude / threshold; a readout becomes sum + bias. With
`ann=True` the amplitude / threshold factors are left out: before scale-rates the result is
exactly the ANN the graph was converted from, so its ReLU outputs are the ANN activations
scale-rates calibrates on. (A LIF population is modelled by its IF rate: the model is for
calibration and for the T → ∞ reference, which the tests take on IF graphs.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.ir.graph import Graph, Value
from snncc.ir.ops import Add, AffineConst, Readout, Relu, SpikeInput
from snncc.ir.ops.kinds import Population
from snncc.ir.weights import WeightStore


@dataclass
class RateModel:
    """The analog graph, which of its values is each population's activation, and which is
    each readout's value (its mean input current plus bias: the ANN's pre-head output)."""

    graph: Graph
    activations: dict[str, Value]  # population / input-population result name → twin value
    readouts: dict[str, Value]  # readout result name → twin value


def _scaled(g: Graph, v: Value, factor: float, name: str) -> Value:
    if factor == 1.0:
        return v
    ref = g.weights.add(f"{name}.rate_scale", np.array(factor, np.float32))
    return g.add(AffineConst, [v], AffineConst.Attrs(scale=ref), name=f"{name}_rate")


def rate_model(graph: Graph, ann: bool = False) -> RateModel:
    """Build the analog twin of a spiking graph (its weights are shared, not copied)."""
    g = Graph(f"{graph.name}_rates", attrs=graph.attrs,
              weights=WeightStore({n: graph.weights[n] for n in graph.weights}))
    env: dict[int, Value] = {}
    for v in graph.inputs:
        env[id(v)] = g.add_input(v.name, v.type)
    acts: dict[str, Value] = {}
    readouts: dict[str, Value] = {}
    for op in graph.ops:
        ins = [env[id(v)] for v in op.inputs]
        name = op.result.name
        a = op.attrs
        if isinstance(op, SpikeInput):
            out = _scaled(g, ins[0], 1.0 if ann else a.amplitude / a.v_threshold, name)
            acts[name] = out
        elif isinstance(op, Population):
            total = ins[0] if len(ins) == 1 else g.add(Add, ins, name=f"{name}_sum")
            if a.bias is not None:
                b = graph.weights[a.bias]
                if b.ndim == 1:
                    b = b.reshape(-1, *([1] * (op.result.type.rank - 2)))
                ref = g.weights.add(f"{name}.rate_bias", b)
                total = g.add(AffineConst, [total], AffineConst.Attrs(offset=ref),
                              name=f"{name}_bias")
            if isinstance(op, Readout):
                out = readouts[name] = total
            else:
                act = g.add(Relu, [total], name=name, loc=op.loc)
                acts[name] = act
                unit = a.v_threshold * getattr(a, "rate_gain", 1.0)
                out = _scaled(g, act, 1.0 if ann else a.amplitude / unit, name)
        else:
            out = g.add(type(op), ins, a, name=name, loc=op.loc)
        env[id(op.result)] = out
    g.outputs = [env[id(v)] for v in graph.outputs]
    return RateModel(g, acts, readouts)
