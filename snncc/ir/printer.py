"""The deterministic printer of the IR text format (docs/ir.md).

Same graph → same bytes: names as stored (the graph keeps them unique), attributes in
field order, floats by `repr`, strings JSON-escaped, weights by reference with the store's
sha256 in the header.
"""

from __future__ import annotations

import dataclasses
import json

from snncc.ir.attributes import attr_pairs, format_attrs
from snncc.ir.graph import Graph
from snncc.ir.location import print_loc
from snncc.ir.op import Op

FORMAT_VERSION = 1
MAGIC = "snncc.ir"


def print_op(op: Op) -> str:
    operands = ", ".join(f"%{v.name}" for v in op.inputs)
    in_types = ", ".join(str(v.type) for v in op.inputs)
    return (
        f"%{op.result.name} = {op.name}({operands}){format_attrs(op.attr_items())}"
        f" : ({in_types}) -> {op.result.type}{print_loc(op.loc)}"
    )


def print_graph(graph: Graph, weights_file: str | None = "weights.npz") -> str:
    """The full text of `graph`, ending in a newline; `weights_file=None` leaves out the
    weights header (the text then loads without its weights)."""
    args = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    results = ", ".join(str(v.type) for v in graph.outputs)
    attrs = format_attrs(attr_pairs(graph.attrs)) if dataclasses.fields(graph.attrs) else ""
    lines = [f"{MAGIC} {FORMAT_VERSION}"]
    if weights_file is not None:
        lines.append(f"weights {json.dumps(weights_file)} sha256 \"{graph.weights.sha256()}\"")
    lines.append(f"graph @{graph.name}({args}) -> ({results}){attrs} {{")
    lines += [f"  {print_op(op)}" for op in graph.ops]
    lines.append("  return " + ", ".join(f"%{v.name}" for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"
