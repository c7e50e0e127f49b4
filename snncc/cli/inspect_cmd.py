"""`snncc inspect PATH [--json]`: what is in an ONNX file, an IR dump or a compiled dir.

Shows the op table, per-layer shapes, neuron and synapse counts, and — for a compiled
directory — what the target and the passes reported (resources, placement). An ONNX model
with nodes snncc cannot compile is shown too: each refused node stands in the layer table
as `onnx.<OpType>`, marked "refused", and the table of refusals follows.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.evaluate.compiled import load_compiled
from snncc.ir.graph import Graph
from snncc.ir.location import OnnxLoc
from snncc.ir.op import OpaqueOp
from snncc.ir.summary import summarize


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="summarize an .onnx, .snnir or compiled directory",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", type=Path,
                   help="an .onnx file, a compiled directory or an .snnir file")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="bind a dynamic input shape of an ONNX model (repeatable)")
    p.add_argument("--maxpool", choices=["error", "avg"], default="error",
                   help="ONNX MaxPool: refused (marked, default) or read as average pooling")
    p.set_defaults(run=run)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def placement(graph: Graph) -> dict[str, Any] | None:
    """Chip of every block (from partition-chips) summarised per layer; None if unplaced."""
    layers = {}
    for op in graph.ops:
        chips = getattr(op.attrs, "chips", ())
        if chips:
            per = Counter(chips)
            layers[op.result.name] = {"block_shape": list(op.attrs.block_shape),
                                      "blocks": len(chips),
                                      "blocks_per_chip": {str(c): per[c] for c in sorted(per)}}
    if not layers:
        return None
    used = Counter(c for op in graph.ops for c in getattr(op.attrs, "chips", ()))
    return {"chips": len(used), "cores_per_chip": [used[c] for c in sorted(used)],
            "layers": layers}


def _render_placement(p: dict[str, Any]) -> list[str]:
    rows = [[name, "x".join(map(str, x["block_shape"])), str(x["blocks"]),
             ", ".join(f"{c}:{n}" for c, n in x["blocks_per_chip"].items())]
            for name, x in p["layers"].items()]
    return ["", f"placement: {p['chips']} chips, cores per chip "
                f"{', '.join(map(str, p['cores_per_chip']))}",
            _table(rows, ["value", "block shape", "blocks", "chip:blocks"])]


def render(info: dict[str, Any]) -> str:
    s = info["summary"]
    refused = {r["value"] for r in info.get("refused", [])}
    out = [
        f"graph @{s['graph']}  inputs {s['inputs']}  outputs {s['outputs']}",
        f"properties: {', '.join(s['properties']) or 'none'}",
        f"weights stored {s['parameters']:,}   neurons {s['neurons']:,}   "
        f"synapses {s['synapses']:,} (per image)",
        "",
        _table([[k, str(v)] for k, v in s["ops"].items()], ["op", "count"]),
        "",
        _table([[r["name"], r["op"], "x".join(map(str, r["shape"])), str(r["neurons"] or ""),
                 str(r["synapses"] or ""), "refused" if r["name"] in refused else ""]
                for r in s["layers"]],
               ["value", "op", "shape", "neurons", "synapses", "note"]),
    ]
    if info.get("refused"):
        from snncc.frontend.onnx.errors import Refusal, format_table

        rows = [Refusal(r["node"], r["op_type"], r["why"], r["todo"]) for r in info["refused"]]
        out += ["", f"{len(rows)} node(s) cannot be compiled to a spiking network:",
                format_table(rows)]
    if info.get("placement"):
        out += _render_placement(info["placement"])
    if info.get("target_report"):
        out += _render_target(info["target_report"])
    if info.get("pass_reports"):
        out += ["", "pass reports (scalars; `--json` shows them whole):"]
        out += [f"  {name}: {_scalars(rep)}" for name, rep in info["pass_reports"].items()]
    return "\n".join(out)


def _scalars(report: dict[str, Any]) -> str:
    """The scalar entries of a report, `key=value` (nested tables are left to --json)."""
    items = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in report.items() if isinstance(v, (int, float, str, bool))]
    return ", ".join(items) or "(tables only)"


def _render_target(t: dict[str, Any]) -> list[str]:
    """The target report as a few lines and a utilisation table."""
    out = ["", f"target: {_scalars({k: v for k, v in t.items() if k != 'utilisation'})}"]
    use = t.get("utilisation")
    if isinstance(use, dict):
        rows = [[k, str(v["limit"]), str(v["max"]), f"{v['mean']:.1f}",
                 f"{100 * v['max_fraction']:.1f} %"] for k, v in use.items()]
        out.append(_table(rows, ["per-core limit", "limit", "max", "mean", "max use"]))
    return out


def _onnx_info(load: Callable[[], Graph]) -> dict[str, Any]:
    """The summary of an imported ONNX model; for one with refused nodes, the partial
    graph's summary (refused nodes as placeholder ops) and the refusals, each with the
    value that stands for it."""
    from snncc.frontend.onnx.errors import UnsupportedModelError

    try:
        return {"summary": summarize(load())}
    except UnsupportedModelError as err:
        if err.graph is None:
            raise
        by_node = {op.loc.node: op.result.name for op in err.graph.ops
                   if isinstance(op, OpaqueOp) and isinstance(op.loc, OnnxLoc)}
        return {"summary": summarize(err.graph),
                "refused": [{**asdict(r), "value": by_node.get(r.node)} for r in err.refusals]}


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise SnnccError(f"{path}: no such file or directory")
    if path.suffix == ".onnx":
        from snncc.cli.compile_cmd import parse_input_shapes
        from snncc.frontend.onnx import import_onnx

        info: dict[str, Any] = _onnx_info(
            lambda: import_onnx(path, parse_input_shapes(args.input_shape), args.maxpool))
    else:
        graph, report = load_compiled(path)
        info = {"summary": summarize(graph), "placement": placement(graph),
                "target_report": report.get("target_report", {}),
                "pass_reports": report.get("pass_reports", {})}
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0
