"""Reading and writing an IR dump: `model.snnir` text plus its `weights.npz` sidecar."""

from __future__ import annotations

from pathlib import Path

from snncc.diagnostics import SnnccError
from snncc.host.files import write_atomic
from snncc.ir.graph import Graph
from snncc.ir.parser import parse_graph, sidecar_loader
from snncc.ir.printer import print_graph


def load_ir(path: Path, allow_unregistered: bool = False) -> Graph:
    """Parse `path` and load the weights its header names, verifying their sha256."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SnnccError(f"{path}: cannot read IR file: {err}") from None
    return parse_graph(text, str(path), weights_loader=sidecar_loader(path),
                       allow_unregistered=allow_unregistered)


def save_ir(graph: Graph, path: Path, weights_name: str | None = None) -> None:
    """Write `path` and its weights sidecar (default `<stem>.npz`), each atomically."""
    weights_name = weights_name or path.with_suffix(".npz").name
    graph.prune_weights()
    write_atomic(path.parent / weights_name, graph.weights.encode())
    write_atomic(path, print_graph(graph, weights_name))
