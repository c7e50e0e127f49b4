"""`snncc`: the command line entry point.

Exit codes: 0 success, 1 a user error (the message says where and what to do), 2 a usage
error, 3 an internal error (a bug in snncc or a plugin; SNNCC_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from types import FrameType

from snncc import __version__
from snncc.cli import (
    baseline_cmd,
    compile_cmd,
    eval_cmd,
    inspect_cmd,
    list_cmd,
    opt_cmd,
    run_cmd,
)
from snncc.diagnostics import SnnccError

SUBCOMMANDS = [compile_cmd, opt_cmd, inspect_cmd, run_cmd, eval_cmd, baseline_cmd, list_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snncc", description="Compile trained ANNs (ONNX) into spiking networks for Loihi.")
    parser.add_argument("--version", action="version", version=f"snncc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so temporary outputs are removed."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: object = None, line: str | None = None) -> None:
    """Warnings as one line for the user, not snncc's source line."""
    print(f"snncc: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args.run(args) or 0)
    except SnnccError as err:
        print(f"snncc: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("snncc: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("snncc: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # the reader of stdout went away (`snncc inspect X | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except MemoryError:
        print("snncc: error: out of memory: the model or the run is too large for this "
              "machine; use a smaller input shape, fewer images or fewer timesteps",
              file=sys.stderr)
        return 1
    except Exception as err:
        if os.environ.get("SNNCC_DEBUG"):
            traceback.print_exc()
        print(f"snncc: internal error: {type(err).__name__}: {err}\n"
              "This is a bug in snncc or a plugin; rerun with SNNCC_DEBUG=1 for the traceback "
              "and report it.", file=sys.stderr)
        return 3


def entry() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
