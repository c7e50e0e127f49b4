"""remove-dead-ops: delete ops whose results nothing uses, and the weights they held."""

from __future__ import annotations

from dataclasses import dataclass

from snncc.ir.graph import Graph
from snncc.pipeline.pass_base import Pass, PassContext


def remove_dead_ops(graph: Graph) -> int:
    """Delete unused ops (a reverse sweep catches chains); return how many went."""
    live = {id(v) for v in graph.outputs}
    kept = []
    for op in reversed(graph.ops):
        if id(op.result) in live:
            kept.append(op)
            live.update(id(v) for v in op.inputs)
    removed = len(graph.ops) - len(kept)
    graph.ops = kept[::-1]
    graph.prune_weights()
    return removed


@dataclass(frozen=True)
class RemoveDeadOps(Pass):
    name = "remove-dead-ops"
    summary = "delete ops whose results are never used"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        removed = remove_dead_ops(graph)
        ctx.record(self.name, removed=removed)
        return removed > 0
