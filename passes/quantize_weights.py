"""quantize-weights: weights, biases and thresholds in Loihi's integer formats.

Each population (and, by default, the readout: a block of non-spiking compartments) is one
Loihi block: its synapse groups (one per input synapse op) share the block's scale, and
each group gets its own power-of-two exponent, exactly as nengo-loihi discretizes a block
(see `quantize_weights_loihi`). The weights are replaced by their quantized values (still
float32, in the same units, so every mode runs the quantized network); the population
records `v_scale` (the chip's integer units per unit of voltage), `weight_exps` and
`weight_error` (relative RMS error of its weights). Spike amplitudes are folded into the
weights first: on the chip a spike is a single event.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from snncc.ir.graph import Graph, Value
from snncc.ir.op import Op
from snncc.ir.ops import IF, LIF
from snncc.ir.ops.analog import through_views
from snncc.ir.ops.kinds import Population, SpikeSource, Synapse
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext


def source_population(v: Value) -> Op | None:
    """The spiking op a synapse op's input comes from (through flatten/reshape views)."""
    op = through_views(v).owner
    return op if isinstance(op, SpikeSource) else None


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
        raise SnnccError(f"quantize-weights: {pop.loc.describe()}: {pop.name} "
                         f"'%{pop.result.name}' has inputs that are not synapse ops")
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
        raise SnnccError(f"quantize-weights: {pop.loc.describe()}: {pop.name} "
                         f"'%{pop.result.name}' does not fit Loihi's formats: {err}") from None
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
    kinds = Population if readout else (IF, LIF)
    return {op.result.name: quantize_population(graph, op, bits)
            for op in graph.ops if isinstance(op, kinds)}


@dataclass(frozen=True)
class QuantizeWeights(Pass):
    name = "quantize-weights"
    summary = "weights, biases, thresholds in Loihi's formats (8-bit mantissa + exponent)"
    requires = frozenset({"spiking", "normalized"})
    establishes = frozenset({"quantized"})

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
