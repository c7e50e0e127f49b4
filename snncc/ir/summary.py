"""Facts about a graph that people ask for first: layers, neurons, synapses, parameters."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops import AvgPool2d, Conv2d, ConvTranspose2d, Dense, SparseMap, SumPool2d
from snncc.ir.ops.kinds import Population, SpikeSource
from snncc.ir.weights import WeightStore


def _conv_taps(size_in: int, size_out: int, k: int, stride: int, pad: int, dil: int) -> int:
    """Kernel taps inside the input, summed over the output positions of one axis."""
    taps = (np.arange(size_out) * stride - pad)[:, None] + np.arange(k)[None, :] * dil
    return int(((taps >= 0) & (taps < size_in)).sum())


def _transpose_taps(size_in: int, size_out: int, k: int, stride: int, pad: int, dil: int) -> int:
    """Input-to-output taps of a transposed convolution that land inside the output."""
    outs = (np.arange(size_in) * stride - pad)[:, None] + np.arange(k)[None, :] * dil
    return int(((outs >= 0) & (outs < size_out)).sum())


def synapse_count(op: Op, weights: WeightStore) -> int:
    """Connections one synapse op makes per image (taps that fall on padding excluded)."""
    a = op.attrs
    if isinstance(op, Dense):
        return op.inputs[0].type.shape[1] * op.result.type.shape[1]
    if isinstance(op, SparseMap):
        return len(np.unique(weights[a.indices], axis=0))
    if not isinstance(op, (Conv2d, ConvTranspose2d, AvgPool2d, SumPool2d)):
        return 0
    _, c_in, *size_in = op.inputs[0].type.shape
    _, c_out, *size_out = op.result.type.shape
    if isinstance(op, (AvgPool2d, SumPool2d)):
        h, w = (_conv_taps(size_in[i], size_out[i], a.kernel[i], a.strides[i], a.pads[i], 1)
                for i in range(2))
        return c_in * h * w
    kernel = weights[a.weight].shape[2:]
    taps = _conv_taps if isinstance(op, Conv2d) else _transpose_taps
    h, w = (taps(size_in[i], size_out[i], kernel[i], a.strides[i], a.pads[i], a.dilations[i])
            for i in range(2))
    return (c_in // a.groups) * c_out * h * w


def population_size(op: Op) -> int:
    """Neurons of a population op per image (0 for other ops)."""
    if not isinstance(op, Population):
        return 0
    shape = op.result.type.shape
    return int(np.prod(shape[1:])) if shape else 1


def mean_rates(graph: Graph) -> dict[str, float]:
    """Expected spikes per step of an average neuron of each spike source that carries a
    `mean_rate` (set by scale-rates from the activation statistics)."""
    return {op.result.name: op.attrs.mean_rate for op in graph.ops
            if isinstance(op, SpikeSource) and op.attrs.mean_rate is not None}


def summarize(graph: Graph) -> dict[str, Any]:
    """Op counts, per-layer rows and totals, as report.json and `snncc inspect` show them."""
    layers = [
        {
            "name": op.result.name,
            "op": op.name,
            "shape": list(op.result.type.shape),
            "neurons": population_size(op),
            "synapses": synapse_count(op, graph.weights),
            "loc": op.loc.describe(),
        }
        for op in graph.ops
    ]
    return {
        "graph": graph.name,
        "inputs": {v.name: list(v.type.shape) for v in graph.inputs},
        "outputs": {v.name: list(v.type.shape) for v in graph.outputs},
        "properties": list(graph.attrs.properties),
        "ops": dict(sorted(Counter(op.name for op in graph.ops).items())),
        # weights and biases; integer arrays (syn.sparse's indices) are connectivity
        "parameters": sum(int(graph.weights[n].size) for n in graph.weights
                          if graph.weights[n].dtype.kind == "f"),
        "neurons": sum(row["neurons"] for row in layers),
        "synapses": sum(row["synapses"] for row in layers),
        "layers": layers,
    }
