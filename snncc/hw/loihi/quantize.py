"""A spiking graph in Loihi's integer formats: each population is one block whose synapse
groups share its voltage scale, each group with its own power-of-two weight exponent, as
nengo-loihi discretizes a block (`snncc.hw.loihi.formats` has the formats). The
quantize-weights pass applies it; the simulator applies it on the fly to an unquantized
graph in `loihi` mode.
"""

from __future__ import annotations

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.formats import (
    QuantizeError,
    choose_format,
    current_decay,
    quantize_bias,
    quantize_group,
    quantize_threshold,
)
from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops.kinds import Neurons, Population, SpikeSource, Synapse, source_population


def fold_amplitudes(graph: Graph) -> int:
    """Multiply each synapse op's weights by its source's spike amplitude; set amplitudes
    to 1. Returns how many synapse ops changed."""
    changed = 0
    for op in graph.ops:
        if not isinstance(op, Synapse):
            continue
        src = source_population(op.inputs[0])
        if src is not None and src.attrs.amplitude != 1.0:
            w = graph.weights[op.attrs.weight] * np.float32(src.attrs.amplitude)
            op.replace_attrs(weight=graph.weights.add(op.attrs.weight.name, w))
            changed += 1
    for op in graph.ops:
        if isinstance(op, SpikeSource) and op.attrs.amplitude != 1.0:
            op.replace_attrs(amplitude=1.0)
    return changed


def quantize_population(graph: Graph, pop: Op, bits: int) -> dict[str, object]:
    """Quantize one block in place; return what it did for the report."""
    syn = [v.owner for v in pop.inputs]
    if not all(isinstance(s, Synapse) for s in syn):
        raise SnnccError(f"quantize-weights: {pop.describe()} has inputs that are not synapse ops")
    weights = [graph.weights[s.attrs.weight].astype(np.float64) for s in syn]
    bias = (np.zeros(1) if pop.attrs.bias is None
            else graph.weights[pop.attrs.bias].astype(np.float64))
    threshold = getattr(pop.attrs, "v_threshold", 0.0)
    _, u_infactor = current_decay(graph.attrs.dt, getattr(pop.attrs, "tau_s", 0.0))
    try:
        fmt = choose_format([float(np.abs(w).max()) for w in weights], threshold,
                            float(np.abs(bias).max()), bits, u_infactor)
        new_threshold = quantize_threshold(threshold, fmt) if threshold else 0.0
    except QuantizeError as err:
        raise SnnccError(f"quantize-weights: {pop.describe()} does not fit Loihi's formats: "
                         f"{err}") from None
    err2, norm2 = 0.0, 0.0
    for i, (s, w) in enumerate(zip(syn, weights, strict=True)):
        q = quantize_group(w, fmt, i)
        err2 += float(((q - w) ** 2).sum())
        norm2 += float((w**2).sum())
        s.replace_attrs(weight=graph.weights.add(s.attrs.weight.name, q.astype(np.float32)))
    changes: dict[str, object] = dict(v_scale=fmt.v_scale, weight_exps=fmt.group_exps,
                                      weight_error=float(np.sqrt(err2 / max(norm2, 1e-30))))
    bias_error = 0.0
    if pop.attrs.bias is not None:
        qb = quantize_bias(bias, fmt)
        bias_error = float(np.abs(qb - bias).max())
        changes["bias"] = graph.weights.add(pop.attrs.bias.name, qb.astype(np.float32))
    if threshold:
        changes["v_threshold"] = new_threshold
    pop.replace_attrs(**changes)
    return {"v_scale": fmt.v_scale, "weight_exp": fmt.w_exp, "group_exps": list(fmt.group_exps),
            "weight_rel_rms_error": changes["weight_error"], "bias_max_abs_error": bias_error,
            "threshold_rel_error": abs(new_threshold - threshold) / threshold if threshold
            else 0.0}


def quantize_graph(graph: Graph, bits: int = 8, readout: bool = True) -> dict[str, object]:
    """Quantize every population (and readout) of a spiking graph; per-layer report."""
    fold_amplitudes(graph)
    kinds = Population if readout else Neurons
    return {op.result.name: quantize_population(graph, op, bits)
            for op in graph.ops if isinstance(op, kinds)}
