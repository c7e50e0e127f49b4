"""Pieces several subcommands share: pipeline flags, target specs, reports, compiled dirs."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from snncc.cli.outputs import check_writable_dir
from snncc.diagnostics import SnnccError, UsageError
from snncc.host.files import write_atomic
from snncc.ir.graph import Graph
from snncc.pipeline import PassContext, PassManager, PassResult, parse_pipeline, parse_specs
from snncc.pipeline.options import bind
from snncc.pipeline.registry import TARGETS
from snncc.pipeline.target import Target


def add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("pass pipeline")
    g.add_argument("-p", "--passes", metavar="PIPELINE",
                   help="pass pipeline, e.g. 'fold-batchnorm,scale-rates{percentile=99.9}'")
    g.add_argument("--print-ir-after-all", action="store_true",
                   help="print the IR after every pass (to stderr)")
    g.add_argument("--print-ir-after", metavar="NAME", action="append", default=[],
                   help="print the IR after the named pass (repeatable)")
    g.add_argument("--dump-dir", type=Path, metavar="DIR",
                   help="write the IR before and after every pass into DIR")
    g.add_argument("--time-passes", action="store_true", help="print how long each pass took")
    g.add_argument("--no-verify", action="store_true",
                   help="do not verify the IR after every pass (faster; for debugging only)")
    g.add_argument("--calibration", type=Path, metavar="DIR_OR_NPY",
                   help="calibration images for data-based passes (scale-rates)")
    g.add_argument("--stats", type=Path, metavar="FILE",
                   help="rate statistics JSON written during training (scale-rates)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def check_at_least(flag: str, value: int | None, least: int) -> None:
    """A well-formed value out of its range is exit 1, for every option alike."""
    if value is not None and value < least:
        raise SnnccError(f"{flag} must be ≥ {least}, got {value}")


def check_pipeline_outputs(args: argparse.Namespace) -> None:
    """Refuse a --dump-dir that is a file or cannot be written, before any work."""
    dump: Path | None = args.dump_dir
    if dump is None:
        return
    if dump.exists() and not dump.is_dir():
        raise SnnccError(f"--dump-dir {dump}: is a file, not a directory; choose a directory")
    check_writable_dir(next(p for p in dump.resolve().parents if p.exists())
                       if not dump.exists() else dump, "--dump-dir", dump)


def make_context(args: argparse.Namespace, graph: Graph,
                 model: Path | None = None) -> PassContext:
    """A PassContext from the command line: calibration images and the stats file.

    A directly trained SNN's declaration (metadata 'snncc.spiking') goes into `trained`.
    With neither --calibration nor --stats, the statistics of the ONNX `model` come from
    its metadata (written by `snncc.training`'s export), else from NAME.stats.json beside it.
    """
    calibration = None
    if args.calibration is not None:
        from snncc.data.images import load_calibration

        calibration = load_calibration(args.calibration, graph.inputs[0].type)
    if args.stats is not None and not args.stats.is_file():
        raise SnnccError(f"{args.stats}: stats file not found (--stats)")
    ctx = PassContext(calibration=calibration, stats_file=args.stats,
                      progress=not args.no_progress)
    if model is not None:
        from snncc.data.trained import METADATA_KEY as TRAINED_KEY
        from snncc.data.trained import TrainedSpikingError, read_onnx_trained

        try:
            ctx.trained = read_onnx_trained(model)
        except TrainedSpikingError as err:
            raise SnnccError(f"{model}: metadata '{TRAINED_KEY}' is not a usable trained-SNN "
                             f"declaration: {err}; re-export the model with "
                             "snncc.training.spiking_export") from None
    if model is not None and calibration is None and args.stats is None:
        from snncc.data.stats import METADATA_KEY, RateStatsError, read_onnx_stats, sidecar_path

        try:
            ctx.stats = read_onnx_stats(model)
        except RateStatsError as err:
            raise SnnccError(f"{model}: metadata '{METADATA_KEY}' holds no usable rate "
                             f"statistics: {err}; re-export the model or give --stats or "
                             "--calibration") from None
        ctx.stats_origin = f"{model} (metadata '{METADATA_KEY}')"
        if ctx.stats is None and sidecar_path(model).is_file():
            ctx.stats_file = sidecar_path(model)
    return ctx


def run_pipeline(args: argparse.Namespace, graph: Graph, pipeline: str,
                 ctx: PassContext) -> list[PassResult]:
    manager = PassManager(
        parse_pipeline(pipeline),
        verify_each=not args.no_verify,
        print_after_all=args.print_ir_after_all,
        print_after=set(args.print_ir_after),
        dump_dir=args.dump_dir,
        time_passes=args.time_passes,
    )
    return manager.run(graph, ctx)


def parse_target(text: str) -> Target:
    """`numpy` or `loihi{hardware=true}` → a bound Target."""
    specs = parse_specs(text, what="--target")
    if len(specs) != 1:
        raise UsageError(f"--target takes one target, got '{text}'")
    return bind(TARGETS.get(specs[0].name), specs[0], text, what="--target")


def json_text(data: Any) -> str:
    """Strict JSON (NaN and infinities, which JSON lacks, become null)."""
    return json.dumps(_finite(data), indent=2, sort_keys=False, allow_nan=False,
                      default=_jsonable) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write `json_text(data)` atomically."""
    write_atomic(path, json_text(data))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
