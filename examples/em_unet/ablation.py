"""Ablation: what the rate regularizer and Loihi-aware training buy after conversion.

For each trained model (a directory with unet.onnx and unet.stats.json, or an .onnx file
with its .stats.json beside it) this compiles it for Loihi with its training statistics,
scores ANN and SNN on seeded crops of the validation slices in each simulator mode at
several T, and reports the ANN's accuracy, the smallest swept T at which the SNN comes
within `--tolerance` points of it, and the energy per inference at that T. Usage::

    python examples/em_unet/ablation.py --models /tmp/tr/ra /tmp/tr/r /tmp/tr/n \\
        --out /tmp/ablation

Writes OUT/<name>.snncc/ (compiled), OUT/results.json, and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from snncc.cli.main import main as snncc
from snncc.data.images import load_labelled
from snncc.evaluate import EvalSettings, OnnxModel, evaluate, load_compiled
from snncc.hw.energy import EnergyConstants

HERE = Path(__file__).resolve().parent
VAL_SLICES = (20, 21, 22, 23, 24)  # examples/em_unet/data.py: slices 20-24 validate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", type=Path, required=True,
                   help="model directories (unet.onnx + unet.stats.json) or .onnx files")
    p.add_argument("--out", type=Path, default=Path("ablation-out"), help="output directory")
    p.add_argument("--data", type=Path, default=HERE / "data", help="labelled EM slices")
    p.add_argument("--crops", type=int, default=8, help="64x64 crops per validation slice")
    p.add_argument("--sweep", default="20,40,60,100,150,200", help="timestep counts to score")
    p.add_argument("--modes", nargs="+", default=["ideal", "loihi"], choices=["ideal", "loihi"])
    p.add_argument("--tolerance", type=float, default=1.0, help="allowed gap in points")
    p.add_argument("--seed", type=int, default=0, help="seed of the crops")
    return p.parse_args(argv)


def model_files(path: Path) -> tuple[str, Path, Path]:
    """(name, onnx, stats) of a model directory or .onnx file."""
    onnx = path / "unet.onnx" if path.is_dir() else path
    stats = onnx.with_suffix(".stats.json")
    for f in (onnx, stats):
        if not f.is_file():
            sys.exit(f"ablation: {f} not found")
    return (path.name if path.is_dir() else path.stem), onnx, stats


def compile_model(onnx: Path, stats: Path, out: Path) -> Path:
    code = snncc(["compile", str(onnx), "--target", "loihi", "--stats", str(stats), "-o",
                  str(out), "--force", "--no-progress"])
    if code:
        sys.exit(f"ablation: compiling {onnx} failed (exit {code})")
    return out


def needed(sweep: list[dict[str, Any]], tolerance: float) -> dict[str, Any] | None:
    """The first swept point from which on the SNN stays within `tolerance` points."""
    for i, row in enumerate(sweep):
        if all(r["gap_points"] <= tolerance for r in sweep[i:]):
            return row
    return None


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    sweep = tuple(int(t) for t in args.sweep.split(","))
    data = load_labelled(args.data, VAL_SLICES)
    rows = []
    for path in args.models:
        name, onnx, stats = model_files(path)
        compiled = compile_model(onnx, stats, args.out / f"{name}.snncc")
        graph, _ = load_compiled(compiled)
        ann = OnnxModel(onnx)
        for mode in args.modes:
            start = time.perf_counter()
            settings = EvalSettings(max(sweep), mode, args.crops, args.seed, 16, False,
                                    sweep, False, constants=EnergyConstants())
            s = evaluate(graph, ann, data, settings).summary
            hit = needed(s["sweep"], args.tolerance)
            rows.append({"model": name, "onnx": str(onnx), "mode": mode,
                         "ann_pixel_accuracy": s["ann"]["pixel_accuracy"],
                         "snn_pixel_accuracy_at_max_t": s["snn"]["pixel_accuracy"],
                         "t_within_tolerance": hit["timesteps"] if hit else None,
                         "loihi_j": hit["loihi_j"] if hit else None,
                         "ratio_cpu_measured": hit["ratio"]["cpu_measured"] if hit else None,
                         "ratio_cpu_counted": hit["ratio"]["cpu_counted"] if hit else None,
                         "mean_rate_hz_at_max_t": s["mean_rate_hz"],
                         "sweep": s["sweep"], "images": s["images"],
                         "seconds": round(time.perf_counter() - start, 1)})
            print(f"{name} {mode}: done in {rows[-1]['seconds']} s", file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]], tolerance: float) -> str:
    """Markdown: per model and mode, accuracy, the T needed and energy there and at T_max."""
    def fmt(value: float | None, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    head = (f"| model | mode | ANN acc. | SNN acc. at T_max | T within {tolerance:g} pt | "
            "Loihi µJ at that T (CPU measured / Loihi) | Loihi µJ at T_max (CPU measured / "
            "Loihi) | mean rate at T_max | gap in points at each T |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        last = r["sweep"][-1]
        gaps = ", ".join(f"{p['timesteps']}: {p['gap_points']:.2f}" for p in r["sweep"])
        at_hit = (f"{1e6 * r['loihi_j']:.0f} ({r['ratio_cpu_measured']:.2f}x)"
                  if r["t_within_tolerance"] else "—")
        lines.append(f"| {r['model']} | {r['mode']} | {100 * r['ann_pixel_accuracy']:.2f} % | "
                     f"{100 * r['snn_pixel_accuracy_at_max_t']:.2f} % | "
                     f"{fmt(r['t_within_tolerance'], 'd')} | {at_hit} | "
                     f"{1e6 * last['loihi_j']:.0f} ({last['ratio']['cpu_measured']:.2f}x) | "
                     f"{r['mean_rate_hz_at_max_t']:.1f} Hz | {gaps} |")
    return head + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows, args.tolerance))


if __name__ == "__main__":
    main()
