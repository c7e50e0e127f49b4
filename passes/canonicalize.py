"""canonicalize: remove ops that do nothing, cancel transposes, drop dead ops.

Importers produce such ops (a Reshape to the same shape, a Concat of one tensor, the pair
of Transposes older exporters put around Softmax); removing them gives later passes a
smaller, regular graph: softmax over channels wrapped in NHWC transposes becomes a softmax
over axis 1. The rewrites repeat until nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.ir.graph import Graph
from snncc.ir.location import fuse
from snncc.ir.op import Op
from snncc.ir.ops import (
    Add,
    AffineConst,
    AvgPool2d,
    Concat,
    Flatten,
    Relu,
    Reshape,
    Sigmoid,
    Softmax,
    Transpose,
    Upsample,
)
from snncc.ir.properties import CANONICAL
from snncc.passes.remove_dead_ops import dead_op_problem, remove_dead_ops
from snncc.pipeline.pass_base import Pass, PassContext


def is_identity(op: Op) -> bool:
    """True when the op returns its (only) input unchanged."""
    if len(op.inputs) != 1 or op.inputs[0].type != op.result.type:
        return False
    a = op.attrs
    if isinstance(op, (Concat, Add, Reshape, Flatten)):
        return True
    if isinstance(op, Transpose):
        return list(a.perm) == sorted(a.perm)
    if isinstance(op, Upsample):
        return a.scale == (1, 1)
    if isinstance(op, AffineConst):
        return a.scale is None and a.offset is None
    if isinstance(op, AvgPool2d):
        return a.kernel == (1, 1) and a.strides == (1, 1) and not any(a.pads)
    return False


def _cancelling_transpose(op: Op) -> bool:
    src = op.inputs[0].owner
    if not (isinstance(op, Transpose) and isinstance(src, Transpose)):
        return False
    composed = [src.attrs.perm[p] for p in op.attrs.perm]
    return composed == list(range(len(composed)))


def _wrapped_pointwise(graph: Graph, op: Op) -> Op | None:
    """transpose(q) ∘ f ∘ transpose(p) with q∘p = id and f pointwise or softmax → f alone.

    Returns the inner op `f` when the pattern holds and nothing else uses its result.
    """
    inner = op.inputs[0].owner
    if not isinstance(op, Transpose) or not isinstance(inner, (Relu, Sigmoid, Softmax)):
        return None
    first = inner.inputs[0].owner
    if not isinstance(first, Transpose) or len(graph.users(inner.result)) != 1:
        return None
    composed = [first.attrs.perm[p] for p in op.attrs.perm]
    return inner if composed == list(range(len(composed))) else None


def _unwrap(graph: Graph, op: Op, inner: Op) -> None:
    """Apply `inner` to the un-transposed tensor (softmax's axis follows the permutation)."""
    first = inner.inputs[0].owner
    source = first.inputs[0]
    attrs = inner.attrs
    if isinstance(inner, Softmax):
        attrs = Softmax.Attrs(axis=first.attrs.perm[inner.attrs.axis % len(first.attrs.perm)])
    new = graph.add(type(inner), [source], attrs, name=inner.result.name,
                    loc=fuse(first.loc, inner.loc, op.loc), before=op)
    graph.replace_uses(op.result, new)


def canonicalize(graph: Graph) -> int:
    """Apply the rewrites to a fixed point; return how many ops were bypassed."""
    bypassed = 0
    changed = True
    while changed:
        changed = False
        for op in list(graph.ops):
            if is_identity(op):
                graph.replace_uses(op.result, op.inputs[0])
            elif _cancelling_transpose(op):
                graph.replace_uses(op.result, op.inputs[0].owner.inputs[0])
            elif (inner := _wrapped_pointwise(graph, op)) is not None:
                _unwrap(graph, op, inner)
            else:
                continue
            graph.erase(op)
            bypassed += 1
            changed = True
    return bypassed + remove_dead_ops(graph)


@dataclass(frozen=True)
class Canonicalize(Pass):
    name = "canonicalize"
    summary = "remove no-op ops, cancel transposes (also around softmax), drop dead ops"
    establishes = frozenset({CANONICAL})

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        removed = canonicalize(graph)
        ctx.record(self.name, removed=removed)
        return removed > 0

    def ensures(self, graph: Graph) -> str | None:
        op = next((op for op in graph.ops if is_identity(op) or _cancelling_transpose(op)),
                  None)
        if op is not None:
            return f"{op.describe()} does nothing and is still there"
        return dead_op_problem(graph)
