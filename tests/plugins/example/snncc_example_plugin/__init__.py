"""An example third-party pass: renumber SSA values `%<prefix>0, %<prefix>1, ...`.

Useful for diffing two IR dumps whose value names came from different exporters.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.ir import Graph
from snncc.pipeline import Pass, PassContext


@dataclass(frozen=True)
class NumberValues(Pass):
    name = "number-values"
    summary = "rename every op result to <prefix><index> in program order"

    prefix: str = "v"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        if not self.prefix.isidentifier():
            from snncc.diagnostics import SnnccError

            raise SnnccError(f"number-values: prefix '{self.prefix}' must be an identifier")
        taken = {v.name for v in graph.inputs}
        changed = False
        for i, op in enumerate(graph.ops):
            name = f"{self.prefix}{i}"
            while name in taken:
                name = "_" + name
            changed |= op.result.name != name
            op.result.name = name
            taken.add(name)
        return changed
