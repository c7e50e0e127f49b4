"""`snncc eval OUTDIR --data DIR --timesteps T`: ANN versus SNN accuracy and energy.

The ANN is the ONNX model the compiled directory was made from (report.json's
`source_model`, or --onnx), run by onnxruntime; the SNN is the compiled graph run by the
numpy spiking simulator (--mode ideal or loihi). DIR holds image/N.png and label/N.png
(label 255 = foreground). Whole images (EM slices) are scored as a user segments them:
overlap-tiled (--margin) and stitched; --crops K scores K seeded random crops of the model's
input size per image instead. Outputs are decided at the head's boundary (probability 0.5,
logit 0, or argmax; --threshold overrides). Metrics: pixel accuracy, foreground IoU, Dice and
the foreground-restricted Rand error, plus each layer's mean firing rate, and the energy
per inference on Loihi versus the ANN on a CPU / GPU (docs/energy.md). --sweep scores the
SNN again at other timestep counts. The summary (without per-image rows) is recorded in
OUTDIR/report.json under "evaluation" unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError, UsageError
from snncc.ir.graph import Graph

COLUMNS = ("pixel_accuracy", "iou", "dice", "rand_error")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="compare ANN and SNN accuracy and energy on labelled images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("compiled", type=Path,
                   help="a compiled directory (`snncc compile -o DIR`) or an .snnir file")
    p.add_argument("--data", type=Path, required=True,
                   help="directory with image/N.png and label/N.png")
    p.add_argument("--timesteps", type=int, help="timesteps per image (default: the graph's)")
    p.add_argument("--mode", choices=["ideal", "loihi"], default="ideal",
                   help="spiking simulator mode (default: ideal)")
    p.add_argument("--crops", type=int, default=0, metavar="K",
                   help="score K seeded random crops per image instead of tiling it")
    p.add_argument("--seed", type=int, default=0, help="seed of the crops (default: 0)")
    p.add_argument("--margin", type=int, metavar="PX",
                   help="overlap-tile margin for whole images: each tile contributes its "
                   "centre, PX pixels in from its edges (default: a quarter of the tile, "
                   "16 for a 64×64 model)")
    p.add_argument("--threshold", type=float,
                   help="foreground when the probability (sigmoid, softmax) or logit exceeds "
                   "this (default: the head's decision boundary: 0.5, logit 0, or argmax)")
    p.add_argument("--indices", help="images to use, e.g. 20-24 or 1,3 (default: all)")
    p.add_argument("--onnx", type=Path, help="the ANN (default: report.json's source_model)")
    p.add_argument("--sweep", metavar="T1,T2,...",
                   help="also score the SNN at these timestep counts (accuracy versus T)")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write figures into DIR")
    p.add_argument("--energy-constants", type=Path, metavar="FILE",
                   help="JSON object overriding energy constants (docs/energy.md)")
    p.add_argument("--batch-size", type=int, default=16, help="images simulated at once")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-record", action="store_true",
                   help="do not record the summary in OUTDIR/report.json")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(run=run)


def parse_sweep(text: str) -> tuple[int, ...]:
    """`25,50,100` → (25, 50, 100)."""
    try:
        steps = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        steps = ()
    if not steps:
        raise UsageError(f"--sweep '{text}': expected timestep counts ≥ 1 like 25,50,100")
    if any(t < 1 for t in steps):
        raise SnnccError(f"--sweep '{text}': timestep counts must be ≥ 1")
    return steps


def _default_sweep(steps: int, delay: int) -> tuple[int, ...]:
    """Four points up to T, each past the readout delay (for --plots without --sweep)."""
    return tuple(sorted({max(delay + 1, steps * k // 4) for k in (1, 2, 3, 4)}))


def check_options(args: argparse.Namespace) -> None:
    """Numeric options and the places eval writes, before any work."""
    from snncc.cli.common import check_at_least
    from snncc.cli.outputs import REPORT, check_writable_dir

    for flag, value, least in (("--crops", args.crops, 0), ("--timesteps", args.timesteps, 1),
                               ("--batch-size", args.batch_size, 1)):
        check_at_least(flag, value, least)
    if args.plots is not None:
        if args.plots.exists() and not args.plots.is_dir():
            raise SnnccError(f"--plots {args.plots}: is a file, not a directory")
        existing = args.plots if args.plots.exists() else next(
            p for p in args.plots.resolve().parents if p.exists())
        check_writable_dir(existing, "--plots", args.plots)
    if not args.no_record and args.compiled.is_dir() and not os.access(args.compiled,
                                                                         os.W_OK | os.X_OK):
        raise SnnccError(f"{args.compiled}: cannot record the evaluation in its {REPORT} "
                         "(read-only or permission denied); pass --no-record")


def inferences(graph: Graph, images: tuple[int, ...], crops: int, margin: int | None) -> int:
    """Model inputs an evaluation of N×H×W images runs: crops or overlap tiles."""
    from snncc.data.images import Tiling

    count, rows, cols = images
    if crops:
        return count * crops
    height, width = graph.inputs[0].type.shape[-2:]
    if height > rows or width > cols:
        return count
    return count * len(Tiling.plan((rows, cols), (height, width), margin).origins)


def run(args: argparse.Namespace) -> int:
    from snncc.data.images import calibration_overlap, load_labelled, parse_indices
    from snncc.evaluate import EvalSettings, OnnxModel, evaluate, load_compiled
    from snncc.hw.energy import EnergyConstants
    from snncc.sim.spiking import readout_delay
    from snncc.targets.numpy import NumpyTarget, check_run_size

    check_options(args)
    graph, report = load_compiled(args.compiled)
    constants = EnergyConstants.load(args.energy_constants)
    onnx = args.onnx or (Path(report["source_model"]) if "source_model" in report else None)
    if onnx is None:
        where = (f"{args.compiled}/report.json" if args.compiled.is_dir()
                 else f"{args.compiled} (an IR file, without report.json)")
        raise SnnccError(f"{where} names no source model; pass --onnx MODEL.onnx")
    ann = OnnxModel(onnx)
    if not args.data.is_dir():
        raise SnnccError(f"{args.data}: no such directory (--data)")
    data = load_labelled(args.data, parse_indices(args.indices) if args.indices else None)
    overlap = calibration_overlap(report.get("calibration"), args.data, data.names)
    if overlap:
        print(f"warning: image(s) {', '.join(overlap)} were also calibration images for "
              f"{args.compiled} (report.json 'calibration'): the SNN's scale was fitted on "
              "what it is scored on; calibrate on other images (e.g. --calibration with the "
              "training slices only)", file=sys.stderr)
    steps = args.timesteps or graph.attrs.timesteps
    sweep = parse_sweep(args.sweep) if args.sweep else ()
    check_run_size(graph, inferences(graph, data.images.shape, args.crops, args.margin),
                   max((steps, *sweep)), args.batch_size, NumpyTarget.max_seconds)
    if args.plots and not sweep:
        sweep = _default_sweep(steps, readout_delay(graph))
    settings = EvalSettings(steps, args.mode, args.crops, args.seed, args.batch_size,
                            not args.no_progress, sweep, args.plots is not None, args.margin,
                            args.threshold, constants)
    ev = evaluate(graph, ann, data, settings)
    result = ev.summary
    result["calibration_overlap"] = overlap
    if args.plots:
        from snncc.evaluate.plots import write_plots

        result["plots"] = [str(p) for p in write_plots(args.plots, ev, ann.path.name)]
    if not args.no_record and (args.compiled / "report.json").is_file():
        _record(args.compiled / "report.json", report, result, args)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        _print_table(result)
    return 0


def _record(path: Path, report: dict[str, Any], result: dict[str, Any],
            args: argparse.Namespace) -> None:
    from snncc.cli.common import write_json

    report["evaluation"] = {"data": str(args.data.resolve()), "indices": args.indices,
                            **{k: v for k, v in result.items() if k != "per_image"}}
    write_json(path, report)


def _print_table(result: dict[str, Any]) -> None:
    scored = (f"{result['images']} crop(s)" if result["crops_per_image"] else
              f"{result['images']} whole image(s), overlap-tiled with margin {result['margin']}")
    print(f"{scored} ({result['inferences']} inference(s) of the model input), "
          f"{result['decision']}, T = {result['timesteps']}, mode {result['mode']}, mean rate "
          f"{result['mean_rate_hz']:.1f} Hz, ANN/SNN pixel agreement "
          f"{100 * result['ann_snn_agreement']:.2f} %")
    print(f"{'':6}" + "".join(f"{c:>16}" for c in COLUMNS))
    for key in ("ann", "snn"):
        print(f"{key.upper():6}" + "".join(f"{result[key][c]:16.4f}" for c in COLUMNS))
    for row in result.get("sweep", []):
        print(f"  T = {row['timesteps']:5d}: SNN pixel accuracy "
              f"{100 * row['snn']['pixel_accuracy']:.2f} % (ANN − SNN "
              f"{row['gap_points']:+.2f} points; positive: the SNN is behind), "
              f"{row['mean_rate_hz']:.1f} Hz, Loihi {1e6 * row['loihi_j']:.1f} µJ")
    e = result["energy"]
    counts = e["loihi_counts"]
    print(f"energy per inference at T = {e['timesteps']}: Loihi "
          f"{1e6 * e['loihi']['total']:.1f} µJ ({counts['synaptic_ops']:.3g} synaptic ops, "
          f"{counts['chips']} chip(s), {100 * counts['interchip_fraction']:.1f} % of spike "
          f"messages between chips); ANN on CPU {1e6 * e['ann']['cpu_measured']:.1f} µJ "
          f"measured ({1e3 * e['ann']['cpu_seconds']:.2f} ms, median of "
          f"{e['ann']['cpu_measured_spread']['runs']} runs: "
          f"{1e6 * e['ann']['cpu_measured_spread']['min']:.1f}–"
          f"{1e6 * e['ann']['cpu_measured_spread']['max']:.1f} µJ), "
          f"{1e6 * e['ann']['cpu_counted']:.1f} µJ counted; GPU "
          f"{1e6 * e['ann']['gpu_counted']:.1f} µJ counted")
    ratio = e["ratio"]
    if ratio["cpu_measured"] is not None:
        print(f"ANN energy / Loihi energy (above 1: Loihi uses less): CPU measured "
              f"{ratio['cpu_measured']:.3g}x, CPU counted {ratio['cpu_counted']:.3g}x, GPU "
              f"counted {ratio['gpu_counted']:.3g}x")
    if counts["placement"] != "partition-chips":
        print(f"note: {counts['placement']}")
    for path in result.get("plots", []):
        print(f"wrote {path}")
    print("layer rates (Hz): " + ", ".join(f"{k} {v:.1f}"
                                           for k, v in result["layer_rates_hz"].items()))
