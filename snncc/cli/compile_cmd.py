"""`snncc compile MODEL.onnx --target T`: import, run the target's pipeline, write OUTDIR.

OUTDIR holds model.snnir, weights.npz, report.json and whatever the target emits; it is
written to a temporary directory first and renamed into place only when all succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from snncc import __version__
from snncc.cli.common import (
    add_pipeline_flags,
    check_at_least,
    check_pipeline_outputs,
    json_text,
    make_context,
    parse_target,
    run_pipeline,
)
from snncc.cli.outputs import REPORT, atomic_directory, check_output_dir
from snncc.data.images import describe_calibration
from snncc.diagnostics import SnnccError, UsageError
from snncc.evaluate.baseline_report import baseline_lines, resolve_baselines, with_baselines
from snncc.evaluate.compare import OnnxModel
from snncc.evaluate.estimate import compile_estimate
from snncc.hw.energy import count_macs
from snncc.ir.graph import Graph
from snncc.ir.io import save_ir
from snncc.ir.summary import summarize
from snncc.pipeline import with_options
from snncc.pipeline.pass_base import PassContext
from snncc.pipeline.target import Target


def parse_input_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise UsageError(f"--input-shape '{item}': expected NAME=D1,D2,... with positive "
                             "integers, e.g. image=1,1,64,64")
        shapes[name] = shape
    return shapes


def ann_seconds(model: Path, graph: Graph) -> list[float]:
    """onnxruntime's times for one-image inferences of `model` on a random input of the
    graph's input shape (the shape `--input-shape` bound)."""
    batch = np.random.default_rng(0).random(graph.inputs[0].type.shape, dtype=np.float32)
    return OnnxModel(model).inference_seconds(batch)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile an ONNX model for a target",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the ONNX model")
    p.add_argument("--target", default="loihi",
                   help="target name, optionally with options: numpy, "
                   "'loihi{max-seconds=600}'")
    p.add_argument("-o", "--output", type=Path, help="output directory (default: <stem>.snncc)")
    p.add_argument("--force", action="store_true",
                   help="replace an output directory an earlier `snncc compile` wrote")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="bind a dynamic input shape (repeatable)")
    p.add_argument("--maxpool", choices=["error", "avg"], default="error",
                   help="MaxPool has no exact spiking form: refuse it (default) or use avg pool")
    p.add_argument("--baseline", action="append", default=[], type=Path, metavar="FILE",
                   help="compare the energy estimate with this `snncc baseline` file "
                   "(repeatable; default: baselines/*.json beside the model, measured on it)")
    p.add_argument("--distill", nargs="?", const=True, default=False, type=distill_runs,
                   metavar="T|S-T",
                   help="train the converted network through the chip's dynamics to match the "
                   "ANN on the --calibration images (the target's distill pipeline: low "
                   "latency; minutes of CPU; needs PyTorch); for runs of T timesteps, or of "
                   "every length from S to T, if given")
    add_pipeline_flags(p)
    p.set_defaults(run=run)


def distill_runs(text: str) -> tuple[int, int]:
    """`--distill T` or `S-T` → (shortest, timesteps); shortest 0 when only T is given."""
    shortest, _, timesteps = text.rpartition("-")
    try:
        return int(shortest or 0), int(timesteps)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not T or S-T (whole numbers of timesteps, e.g. 64 or 64-100)"
        ) from None


def check_distill(args: argparse.Namespace, target: Target) -> None:
    """`--distill` needs calibration images, the target's distill pipeline and no -p."""
    if args.distill is False:
        return
    if args.distill is not True:
        shortest, timesteps = args.distill
        check_at_least("--distill T", timesteps, 2)
        if shortest:
            check_at_least("--distill S-T: S", shortest, 2)
            check_at_least(f"--distill S-T: T (S = {shortest})", timesteps, shortest)
    if args.passes is not None:
        raise UsageError("--distill chooses the pipeline; give it or -p, not both (add "
                         "distill-spiking to your -p pipeline instead)")
    if target.distill_pipeline is None:
        raise SnnccError(f"target '{target.name}' has no distill pipeline; use -p with "
                         "distill-spiking")
    if args.calibration is None:
        raise UsageError("--distill trains on calibration images: give them with "
                         "--calibration DIR_OR_NPY (crops of the training data)")


def choose_pipeline(args: argparse.Namespace, target: Target, ctx: PassContext) -> str:
    """-p, else the target's pipeline for this model: trained SNN, --distill or default."""
    if args.passes is not None:
        return args.passes
    if ctx.trained is not None and target.trained_pipeline:
        if args.distill is not False:
            raise SnnccError(f"{args.model} is already trained through its spiking dynamics "
                             "(ONNX metadata 'snncc.spiking'); compile it without --distill")
        return target.trained_pipeline
    if args.distill is False:
        return target.default_pipeline
    if args.distill is True:
        return target.distill_pipeline
    shortest, timesteps = args.distill
    return with_options(target.distill_pipeline, "distill-spiking", timesteps=timesteps,
                        shortest=shortest)


def run(args: argparse.Namespace) -> int:
    target = parse_target(args.target)
    outdir: Path = args.output or Path(f"{args.model.stem}.snncc")
    if not args.model.is_file():
        raise SnnccError(f"{args.model}: no such file")
    inputs = [p for p in (args.model, args.calibration, args.stats) if p is not None]
    check_output_dir(outdir, args.force, inputs)
    check_pipeline_outputs(args)
    check_distill(args, target)
    from snncc.frontend.onnx import import_onnx

    start = time.perf_counter()
    graph = import_onnx(args.model, parse_input_shapes(args.input_shape), maxpool=args.maxpool)
    baselines = resolve_baselines(args.baseline, args.model, graph.inputs[0].type.shape)
    macs = count_macs(graph)
    source_parameters = summarize(graph)["parameters"]
    ctx = make_context(args, graph, args.model)
    pipeline = choose_pipeline(args, target, ctx)
    results = run_pipeline(args, graph, pipeline, ctx)
    problems = target.check(graph)
    if problems:
        raise SnnccError(f"target '{target.name}' cannot take this graph:\n  - "
                         + "\n  - ".join(problems))
    with atomic_directory(outdir, args.force, inputs) as tmp:
        save_ir(graph, tmp / "model.snnir", "weights.npz")
        emitted = target.emit(graph, tmp, ctx)
        report = {
            "snncc_version": __version__,
            "source_model": str(args.model.resolve()),
            "target": args.target,
            "pipeline": pipeline,
            "passes": [{"name": r.name, "changed": r.changed, "seconds": round(r.seconds, 4)}
                       for r in results],
            "source_parameters": source_parameters,
            "calibration": None if ctx.calibration is None or args.calibration is None
            else describe_calibration(args.calibration, ctx.calibration),
            "stats_file": None if args.stats is None else str(args.stats.resolve()),
            "summary": summarize(graph),
            "pass_reports": ctx.report,
            "target_report": emitted,
            "energy_estimate": with_baselines(
                compile_estimate(graph, macs, ann_seconds(args.model, graph)),
                graph.inputs[0].type.shape, baselines),
            "compile_seconds": round(time.perf_counter() - start, 3),
        }
        (tmp / REPORT).write_text(json_text(report))  # last: marks the directory complete
    print(f"compiled {args.model} for {target.name} → {outdir}/", file=sys.stderr)
    print(human_summary(report), file=sys.stderr)
    return 0


def human_summary(report: dict[str, Any]) -> str:
    """A few lines a person reads first: size, cores, chips, expected energy per image."""
    s, t = report["summary"], report["target_report"] or {}
    synapses = f"{s['synapses']:,} synapses"
    split = t.get("synapses")
    if isinstance(split, dict):
        synapses += (f" ({split['on_chip']:,} on chip, {split['host']:,} into the host "
                     "readouts)")
    lines = [f"  {s['neurons']:,} neurons, {synapses} per image",
             f"  {report['source_parameters']:,} model parameters (the ONNX model's constants), "
             f"stored as {s['parameters']:,} weights after the passes (fuse-linear composes "
             "kernels)"]
    if t.get("cores") is not None:
        chips = t.get("chips") or t.get("chips_needed_at_least")
        traffic = t.get("interchip_spikes_per_step")
        lines.append(f"  {t['cores']} Loihi cores on {chips} chip(s)" + (
            f"; {traffic:,.0f} spikes/step expected between chips" if traffic is not None
            else ""))
    e = report.get("energy_estimate")
    if e:
        loihi, ann = e["loihi"]["total"], e["ann"]
        spread = ann["cpu_measured_spread"]
        source = ("rates measured in training" if "trained-spiking" in report["pipeline"]
                  else "activation statistics")
        lines.append(
            f"  energy per image, expected at T = {e['timesteps']}: Loihi "
            f"{loihi * 1e3:.3g} mJ (estimate from {source}; `snncc eval` "
            f"measures it); ANN on this CPU {ann['cpu_measured'] * 1e3:.3g} mJ measured "
            f"(median of {spread['runs']} runs, {spread['min'] * 1e3:.3g}–"
            f"{spread['max'] * 1e3:.3g} mJ, × {e['constants']['cpu_power_w']:g} W), "
            f"{ann['cpu_counted'] * 1e3:.3g} mJ counted from MACs")
        lines.extend(baseline_lines(e))
    return "\n".join(lines)
