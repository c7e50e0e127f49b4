"""`snncc opt FILE.snnir [-p PIPELINE] [-o OUT.snnir]`: run passes on an IR dump.

Like mlir-opt / xdsl-opt: without -p (or with -p '') the IR is parsed, verified and printed.
Without -o the resulting IR goes to stdout: when the passes left the weights as they were,
it names the input's weights file (so `> out.snnir` beside the input reloads); when they
changed the weights, it is printed without its weights header (a warning says so: use -o).
With -o the IR and its `OUT.npz` sidecar are written; neither may be an input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from snncc.cli.common import add_pipeline_flags, check_pipeline_outputs, make_context, run_pipeline
from snncc.cli.outputs import check_output_file, staged_outputs
from snncc.evaluate.compiled import load_graph
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
    check_pipeline_outputs(args)
    graph = load_graph(args.file, allow_unregistered=args.allow_unregistered)
    inputs = [p for p in (args.file, graph.weights.source, args.calibration, args.stats)
              if p is not None]
    if args.output is not None:
        check_output_file(args.output, "-o", (".snnir",), inputs)
        check_output_file(args.output.with_suffix(".npz"), "-o (its weights)", (), inputs)
    graph.verify()
    before = graph.weights.sha256()
    if args.passes:
        run_pipeline(args, graph, args.passes, make_context(args, graph))
    if args.output is not None:
        weights = args.output.with_suffix(".npz")
        graph.prune_weights()
        with staged_outputs() as out:
            out.write(weights, graph.weights.encode())
            out.write(args.output, print_graph(graph, weights.name))
        return 0
    source = graph.weights.source
    if source is not None and graph.weights.sha256() == before:
        sys.stdout.write(print_graph(graph, os.path.relpath(source, args.file.parent)))
        return 0
    if len(graph.weights):
        print("snncc: warning: the passes changed the weights, which are not written "
              "without -o; the IR is printed without its weights header (pass -o OUT.snnir "
              "to write the IR and OUT.npz)", file=sys.stderr)
    sys.stdout.write(print_graph(graph, None))
    return 0

