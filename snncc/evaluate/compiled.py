"""What `snncc compile` writes and every other command reads: a compiled directory holds
`model.snnir`, its `weights.npz` and `report.json`, written last, whose presence marks the
directory complete. A bare `.snnir` with its weights names a network too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.io import load_ir
from snncc.pipeline.registry import PASSES

REPORT = "report.json"  # written last into a compile directory: its presence marks it complete


def load_report(path: Path) -> dict[str, Any]:
    """A compiled directory's report.json, which `snncc compile` writes last: without it
    the directory is an interrupted compile."""
    report_path = path / REPORT
    if not report_path.is_file():
        raise SnnccError(f"{path}: an incomplete compiled directory (no {REPORT}, which "
                         "`snncc compile` writes last: the compile was interrupted); compile "
                         "again")
    try:
        report = json.loads(report_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise SnnccError(f"{report_path}: not a readable JSON report: {err}; compile "
                         "again") from None
    if not isinstance(report, dict):
        raise SnnccError(f"{report_path}: expected a JSON object, found "
                         f"{type(report).__name__}; compile again")
    for key, kind in (("target", str), ("source_model", str), ("target_report", dict),
                      ("pass_reports", dict)):
        if key in report and not isinstance(report[key], (kind, type(None))):
            raise SnnccError(f"{report_path}: '{key}' should be a {kind.__name__}, found "
                             f"{type(report[key]).__name__}; compile again")
    return report


def load_graph(path: Path, allow_unregistered: bool = False) -> Graph:
    """An IR file with its weights. Plugin passes are imported first, so the properties
    they establish are known to the loader's checks."""
    PASSES.loadable()
    return load_ir(path, allow_unregistered=allow_unregistered)


def load_compiled(path: Path) -> tuple[Graph, dict[str, Any]]:
    """A compiled directory (model.snnir and report.json) or an `.snnir` with its weights
    (its report is empty)."""
    if not path.exists():
        raise SnnccError(f"{path}: no such directory or file; give the output directory of "
                         "`snncc compile MODEL.onnx -o DIR` or an .snnir file")
    if path.is_dir():
        ir = path / "model.snnir"
        if not ir.is_file():
            raise SnnccError(f"{path}: not a compiled directory (no model.snnir); run "
                             "`snncc compile MODEL.onnx -o DIR` first")
        report = load_report(path)
        return load_graph(ir), report
    if path.suffix == ".snnir":
        return load_graph(path), {}
    raise SnnccError(f"{path}: expected a compiled directory or a .snnir file")
