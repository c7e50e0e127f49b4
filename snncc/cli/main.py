"""`snncc`: the command line entry point.

Exit codes: 0 success, 1 a user error (the message says where and what to do), 2 a usage
error, 3 an internal error (a bug in snncc or a plugin; SNNCC_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from snncc import __version__
from snncc.cli import compile_cmd, eval_cmd, inspect_cmd, list_cmd, opt_cmd, run_cmd
from snncc.diagnostics import SnnccError

SUBCOMMANDS = [compile_cmd, opt_cmd, inspect_cmd, run_cmd, eval_cmd, list_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snncc", description="Compile trained ANNs (ONNX) into spiking networks for Loihi.")
    parser.add_argument("--version", action="version", version=f"snncc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return int(args.run(args) or 0)
    except SnnccError as err:
        print(f"snncc: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("snncc: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("SNNCC_DEBUG"):
            traceback.print_exc()
        print(f"snncc: internal error: {type(err).__name__}: {err}\n"
              "This is a bug in snncc or a plugin; rerun with SNNCC_DEBUG=1 for the traceback "
              "and report it.", file=sys.stderr)
        return 3


def entry() -> None:
    sys.exit(main())
