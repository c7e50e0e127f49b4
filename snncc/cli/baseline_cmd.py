"""`snncc baseline MODEL.onnx --device cpu|cuda`: time and energy of the ANN as deployed.

Runs the ONNX model as a user would: onnxruntime on the CPU; on an NVIDIA GPU torch with
CUDA graphs (or onnxruntime's CUDA provider). Workloads: one crop per request (batch 1,
online), crops in batches, and one whole slice per request. Energy comes from NVML's
total-energy counter on GPUs and RAPL on CPUs where readable (idle power measured, so
board and dynamic energy); without a counter from wall time × a stated power, whose source
the file records. Writes a JSON baseline file that `snncc compile` and `snncc eval` compare
Loihi's estimate with (--baseline FILE), and prints a table. See docs/energy.md.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="measure the ANN's time and energy on a CPU or GPU",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the ONNX model")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("-o", "--output", type=Path,
                   help="baseline file (default: <stem>.<device>.baseline.json)")
    p.add_argument("--batch", type=int, help="crops per batch (default: 64 on cpu, 256 on cuda)")
    p.add_argument("--slice", default="512,512", metavar="H,W",
                   help="slice size for one whole-slice pass (default: 512,512; 'none' skips)")
    p.add_argument("--repeats", type=int, default=5, help="measurements per workload (default 5)")
    p.add_argument("--seconds", type=float,
                   help="least seconds per measurement (default: 1 on cpu, 3 on cuda)")
    p.add_argument("--idle-seconds", type=float, default=3.0,
                   help="seconds of idle power measurement (default 3)")
    p.add_argument("--power", type=float, metavar="W",
                   help="use wall time × this power instead of an energy counter")
    p.add_argument("--power-source", metavar="TEXT", help="where the --power figure comes from")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="bind a dynamic input shape (repeatable)")
    p.set_defaults(run=run)


def _parse_slice(text: str) -> tuple[int, int] | None:
    if text == "none":
        return None
    match = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*", text)
    if match is None:
        raise UsageError(f"--slice '{text}': expected H,W like 512,512, or none")
    size = (int(match[1]), int(match[2]))
    if min(size) < 1:
        raise SnnccError(f"--slice '{text}': sizes must be ≥ 1")
    return size


def _settings(args: argparse.Namespace) -> Any:
    from snncc.cli.common import check_at_least
    from snncc.cli.compile_cmd import parse_input_shapes
    from snncc.evaluate.baseline import BaselineSettings
    from snncc.hw.energy import StatedPower

    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        raise UsageError(f"--device '{args.device}': expected cpu, cuda or cuda:N")
    if (args.power is None) != (args.power_source is None):
        raise UsageError("--power and --power-source go together: a stated power needs its "
                         "source")
    gpu = args.device != "cpu"
    batch = args.batch if args.batch is not None else (256 if gpu else 64)
    seconds = args.seconds if args.seconds is not None else (3.0 if gpu else 1.0)
    check_at_least("--batch", batch, 1)
    check_at_least("--repeats", args.repeats, 1)
    for flag, value in (("--seconds", seconds), ("--idle-seconds", args.idle_seconds),
                        ("--power", args.power)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise SnnccError(f"{flag} must be a positive number, got {value}")
    if not args.model.is_file():
        raise SnnccError(f"{args.model}: no such file")
    size = _parse_slice(args.slice)
    command = shlex.join([
        "snncc", "baseline", str(args.model), "--device", args.device, "--batch", str(batch),
        "--slice", "none" if size is None else f"{size[0]},{size[1]}",
        "--repeats", str(args.repeats), "--seconds", str(seconds),
        "--idle-seconds", str(args.idle_seconds),
        *(["--power", str(args.power), "--power-source", args.power_source]
          if args.power is not None else []),
        *[a for item in args.input_shape for a in ("--input-shape", item)]])
    return BaselineSettings(
        model=args.model, device=args.device, batch=batch, slice_size=size,
        repeats=args.repeats, min_seconds=seconds, idle_seconds=args.idle_seconds,
        power=None if args.power is None else StatedPower(args.power, args.power_source),
        input_shapes=parse_input_shapes(args.input_shape), command=command)


def run(args: argparse.Namespace) -> int:
    from snncc.cli.common import write_json
    from snncc.cli.outputs import check_output_file
    from snncc.evaluate.baseline import run_baseline

    settings = _settings(args)
    kind = args.device.replace(":", "")
    output = args.output or Path(f"{args.model.stem}.{kind}.baseline.json")
    check_output_file(output, "-o", (".json",), [args.model])
    result = run_baseline(settings, lambda line: print(line, file=sys.stderr))
    write_json(output, result)
    print(table(result))
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _cell(values: dict[str, float] | None, scale: float) -> str:
    if values is None:
        return "n/a"
    return (f"{values['median'] * scale:.3g} ({values['min'] * scale:.3g}–"
            f"{values['max'] * scale:.3g})")


def table(result: dict[str, Any]) -> str:
    """The baseline as a table: per workload, medians and ranges of the repeats."""
    idle = result["idle_power_w"]
    lines = [f"{result['device']['name']} — {result['device']['runtime']}",
             f"energy: {result['method']}" + (f"; idle {idle:.1f} W" if idle is not None
                                              else ""),
             f"{'workload':18} {'batch':>5}  {'ms per image':>24}  {'mJ per image, board':>24}"
             f"  {'mJ per image, dynamic':>24}"]
    for name, w in result["workloads"].items():
        lines.append(f"{name:18} {w['batch']:>5}  {_cell(w['seconds_per_image'], 1e3):>24}  "
                     f"{_cell(w['board_j_per_image'], 1e3):>24}  "
                     f"{_cell(w['dynamic_j_per_image'], 1e3):>24}")
    lines.append(f"(median and range of {result['settings']['repeats']} measurements; "
                 "'per image' is per crop or per slice as the workload says)")
    for name, why in result["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    if result["no_counter"]:
        lines.append(f"note: {result['no_counter']}")
    return "\n".join(lines)
