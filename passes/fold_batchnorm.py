"""fold-batchnorm: fold inference batch norms into the convolution or dense layer before them.

BN(y) = (y - mean) · s + beta with s = gamma / sqrt(var + eps) is affine per output
channel, so it folds into the producing op: weights scaled by s along the output channel,
bias b' = (b - mean) · s + beta. Done only when the producer is a conv2d, conv_transpose2d
or dense whose result nothing else reads (a second reader would see the folded values);
every batch norm left in place is reported with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.ir.graph import Graph
from snncc.ir.location import fuse
from snncc.ir.op import Op
from snncc.ir.ops import BatchNorm, Conv2d, ConvTranspose2d, Dense
from snncc.pipeline.pass_base import Pass, PassContext

FOLDABLE = (Conv2d, ConvTranspose2d, Dense)


def bn_factors(graph: Graph, bn: Op) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (s, t) with BN(y) = y · s + t, in float64."""
    a, w = bn.attrs, graph.weights
    s = w[a.scale].astype(np.float64) / np.sqrt(w[a.var].astype(np.float64) + a.epsilon)
    return s, w[a.bias].astype(np.float64) - w[a.mean].astype(np.float64) * s


def _scaled_weight(op: Op, weight: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The producer's weight with output channel c multiplied by s[c]."""
    w = weight.astype(np.float64)
    if isinstance(op, ConvTranspose2d):  # (C_in, C_out/g, kH, kW): channel g·(C_out/g) + j
        groups = op.attrs.groups
        c_in, per_group = w.shape[:2]
        grouped = w.reshape(groups, c_in // groups, per_group, *w.shape[2:])
        scaled = grouped * s.reshape(groups, 1, per_group, 1, 1)
        return scaled.reshape(w.shape)
    return w * s.reshape((-1,) + (1,) * (w.ndim - 1))


def why_not(graph: Graph, bn: Op, uses: dict[int, int]) -> str | None:
    """None if `bn` can be folded into its producer, else the reason it cannot."""
    producer = bn.inputs[0].owner
    if producer is None:
        return "its input is a graph input, not a layer's result"
    if not isinstance(producer, FOLDABLE):
        return (f"its input comes from {producer.name}, not from syn.conv2d, "
                "syn.conv_transpose2d or syn.dense")
    if uses.get(id(producer.result), 0) != 1:
        return (f"the {producer.name} result %{producer.result.name} is also read elsewhere, "
                "which would see the folded values")
    if producer.attrs.bias is not None and graph.weights[producer.attrs.bias].ndim != 1:
        return f"the {producer.name} has a per-position bias, not a per-channel one"
    return None


def fold(graph: Graph, bn: Op) -> None:
    """Fold `bn` into its producer (checked by `why_not`) and remove it."""
    producer = bn.inputs[0].owner
    a = producer.attrs
    s, t = bn_factors(graph, bn)
    w = graph.weights[a.weight]
    bias = np.zeros(len(s)) if a.bias is None else graph.weights[a.bias].astype(np.float64)
    weight_ref = graph.weights.add(f"{a.weight.name}.bn",
                                   _scaled_weight(producer, w, s).astype(np.float32))
    bias_name = f"{a.weight.name}.bias" if a.bias is None else a.bias.name
    bias_ref = graph.weights.add(f"{bias_name}.bn", (bias * s + t).astype(np.float32))
    producer.replace_attrs(weight=weight_ref, bias=bias_ref)
    producer.loc = fuse(producer.loc, bn.loc)
    graph.replace_uses(bn.result, producer.result)
    graph.erase(bn)


@dataclass(frozen=True)
class FoldBatchnorm(Pass):
    name = "fold-batchnorm"
    summary = "fold syn.batchnorm into the conv / conv-transpose / dense that produces its input"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        folded = 0
        kept = []
        for bn in list(graph.ops_of(BatchNorm)):
            reason = why_not(graph, bn, graph.use_counts())
            if reason is None:
                fold(graph, bn)
                folded += 1
            else:
                kept.append({"value": f"%{bn.result.name}", "loc": bn.loc.describe(),
                             "reason": reason})
        graph.prune_weights()
        ctx.record(self.name, folded=folded, kept=kept)
        return folded > 0
