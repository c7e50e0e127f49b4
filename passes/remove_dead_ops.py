"""remove-dead-ops: delete ops whose results nothing uses, and the weights they held."""

from __future__ import annotations

from dataclasses import dataclass

from snncc.ir.graph import Graph
from snncc.pipeline.pass_base import Pass, PassContext


def live_values(graph: Graph) -> set[int]:
    """ids of the values the graph outputs depend on."""
    live = {id(v) for v in graph.outputs}
    for op in reversed(graph.ops):
        if id(op.result) in live:
            live.update(id(v) for v in op.inputs)
    return live


def dead_op_problem(graph: Graph) -> str | None:
    """Names the first op whose result nothing uses (None: there is none)."""
    live = live_values(graph)
    op = next((op for op in graph.ops if id(op.result) not in live), None)
    return None if op is None else f"{op.describe()} is dead (nothing uses its result)"


def remove_dead_ops(graph: Graph) -> int:
    """Delete unused ops (a reverse sweep catches chains); return how many went."""
    live = live_values(graph)
    kept = [op for op in graph.ops if id(op.result) in live]
    removed = len(graph.ops) - len(kept)
    graph.ops = kept
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

    def ensures(self, graph: Graph) -> str | None:
        return dead_op_problem(graph)
