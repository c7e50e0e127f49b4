"""`snncc opt FILE.snnir -p PIPELINE [-o OUT.snnir]`: run passes on an IR dump.

Like mlir-opt / xdsl-opt: without -o the resulting IR is printed to stdout (its weights are
not written); with -o the IR and its `.npz` sidecar are written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snncc.cli.common import add_pipeline_flags, make_context, run_pipeline
from snncc.diagnostics import UsageError
from snncc.ir.io import load_ir, save_ir
from snncc.ir.printer import print_graph


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("opt", help="run a pass pipeline on an IR file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="an IR file (.snnir) with its weights beside it")
    p.add_argument("-o", "--output", type=Path, help="write OUT.snnir and OUT.npz")
    p.add_argument("--allow-unregistered", action="store_true",
                   help="keep ops of unknown kinds as opaque ops instead of failing")
    add_pipeline_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.passes is None:
        raise UsageError("snncc opt needs -p PIPELINE (`snncc passes` lists the passes)")
    graph = load_ir(args.file, allow_unregistered=args.allow_unregistered)
    graph.verify()
    run_pipeline(args, graph, args.passes, make_context(args, graph))
    if args.output is not None:
        save_ir(graph, args.output)
    else:
        sys.stdout.write(print_graph(graph, args.file.with_suffix(".npz").name))
    return 0
