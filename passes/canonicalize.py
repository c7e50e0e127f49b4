"""canonicalize: remove ops that do nothing, cancel transpose pairs, drop dead ops.

Importers produce such ops (a Reshape to the same shape, a Concat of one tensor, the pair
of Transposes older exporters put around Softmax); removing them gives later passes a
smaller, regular graph. The rewrites repeat until nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops import Add, AffineConst, AvgPool2d, Concat, Flatten, Reshape, Transpose, Upsample
from snncc.pipeline.pass_base import Pass, PassContext
from snncc.passes.remove_dead_ops import remove_dead_ops


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
            else:
                continue
            graph.erase(op)
            bypassed += 1
            changed = True
    return bypassed + remove_dead_ops(graph)


@dataclass(frozen=True)
class Canonicalize(Pass):
    name = "canonicalize"
    summary = "remove no-op ops and cancelling transposes, then dead ops"
    establishes = frozenset({"canonical"})

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        removed = canonicalize(graph)
        ctx.record(self.name, removed=removed)
        return removed > 0
