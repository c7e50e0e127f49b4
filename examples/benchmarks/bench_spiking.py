"""Spiking simulator speed and the ANN-vs-SNN accuracy gap on EM crops, in one run.

    python examples/benchmarks/bench_spiking.py [--model examples/em_unet/unet.onnx]
        [--crops 8] [--steps 25,50,100,150,200] [--ablation]

Prints (1) the numpy simulator's time per image·timestep in both modes, onnxruntime's time
per ANN inference and their ratio; (2) the pixel-accuracy gap (ANN − SNN, points) against
T for the `ideal` and `loihi` pipelines below, on `--crops` seeded 64×64 crops of each
validation slice (20–24), scale-rates fed by the stats file beside the model; (3) with
`--ablation`, what each loihi-mode measure buys. One run per pipeline gives every T: the
simulator decodes the output after each T (`run_spiking(frames=...)`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from snncc.data.images import load_labelled, random_crops
from snncc.frontend.onnx import import_onnx
from snncc.pipeline import PassContext, PassManager, parse_pipeline
from snncc.sim.spiking import readout_delay, run_spiking

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "em_unet" / "data"
FRONT = "canonicalize,fold-batchnorm,fuse-linear,"
IDEAL = FRONT + "convert-activations,scale-rates,quantize-weights"
LOIHI = FRONT + "convert-activations{reset=zero},scale-rates,quantize-weights"
ABLATION = [  # (what, pipeline after fuse-linear, statistics)
    ("plain: IF, reset to zero, p99.9 → 250 Hz, 8 bits",
     "convert-activations{reset=zero tau-s=0},scale-rates{compensate=false target-rate=250}",
     "stats"),
    ("+ rate-loss compensation",
     "convert-activations{reset=zero tau-s=0},scale-rates{target-rate=250}", "stats"),
    ("+ 3 ms synaptic filter, no compensation",
     "convert-activations{reset=zero},scale-rates{compensate=false target-rate=250}",
     "stats"),
    ("+ 3 ms synaptic filter and compensation",
     "convert-activations{reset=zero},scale-rates{target-rate=250}", "stats"),
    ("+ 500 Hz at p99.9 (the default pipeline)",
     "convert-activations{reset=zero},scale-rates", "stats"),
    ("default, no compensation",
     "convert-activations{reset=zero},scale-rates{compensate=false}", "stats"),
    ("default, 5 ms filter", "convert-activations{reset=zero tau-s=0.005},scale-rates",
     "stats"),
    ("default, 40 calibration crops instead of stats",
     "convert-activations{reset=zero},scale-rates", "calibration"),
]


@dataclass
class Crops:
    images: np.ndarray  # N×1×64×64
    labels: np.ndarray  # N×64×64 bool


def crops(indices: tuple[int, ...], per_image: int, seed: int) -> Crops:
    data = load_labelled(DATA, indices)
    x, y = random_crops(data.images, data.labels, per_image, 64, 64, seed)
    return Crops(x[:, None], y)


def compile_graph(model: Path, pipeline: str, stats: Path | None, calibration=None):
    graph = import_onnx(model)
    ctx = PassContext(calibration=calibration, stats_file=stats, progress=False)
    PassManager(parse_pipeline(pipeline)).run(graph, ctx)
    return graph


def accuracy(prob: np.ndarray, labels: np.ndarray) -> float:
    return float(((prob[:, 0] > 0.5) == labels).mean() * 100)


def ann(model: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    """The ONNX model's outputs one image at a time, and the mean seconds per inference."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: x[:1]})
    start = time.perf_counter()
    out = [session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))]
    return np.concatenate(out), (time.perf_counter() - start) / len(x)


def gap_curve(graph, data: Crops, mode: str, steps: list[int], ann_acc: float
              ) -> tuple[dict[int, float], float]:
    """Gap per T (nan where T does not pass the readout delay) from one run; also the
    seconds per image·timestep of that run."""
    delay = readout_delay(graph)
    frames = [t for t in steps if t > delay]
    start = time.perf_counter()
    result = run_spiking(graph, [data.images], mode, timesteps=max(steps), frames=frames,
                         batch_size=20)
    seconds = (time.perf_counter() - start) / (len(data.images) * max(steps))
    return {t: ann_acc - accuracy(result.frames[t][0], data.labels) if t in frames
            else float("nan") for t in steps}, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "examples" / "em_unet" / "unet.onnx")
    p.add_argument("--crops", type=int, default=8, help="crops per validation slice")
    p.add_argument("--steps", default="25,50,100,150,200")
    p.add_argument("--ablation", action="store_true")
    args = p.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    stats = args.model.with_suffix(".stats.json")
    val = crops((20, 21, 22, 23, 24), args.crops, seed=0)
    probs, ort_seconds = ann(args.model, val.images)
    ann_acc = accuracy(probs, val.labels)
    print(f"model {args.model}, {len(val.images)} validation crops 64x64, "
          f"ANN pixel accuracy {ann_acc:.2f} %")
    curves = {}
    for mode, pipeline in (("ideal", IDEAL), ("loihi", LOIHI)):
        graph = compile_graph(args.model, pipeline, stats)
        curves[mode], sim_seconds = gap_curve(graph, val, mode, steps, ann_acc)
        print(f"{mode:5s}: {sim_seconds * 1e3:.3f} ms per image·timestep; onnxruntime "
              f"{ort_seconds * 1e3:.3f} ms per inference; ratio {sim_seconds / ort_seconds:.2f} "
              f"per timestep, {100 * sim_seconds / ort_seconds:.0f} at T = 100")
    print("\ngap (ANN − SNN pixel accuracy, points) vs T")
    print("T      " + "  ".join(f"{t:>6d}" for t in steps))
    for mode, curve in curves.items():
        print(f"{mode:6s} " + "  ".join(f"{curve[t]:6.2f}" for t in steps))
    if not args.ablation:
        return
    calibration = crops(tuple(range(20)), 2, seed=1).images  # 40 training crops
    print(f"\nloihi-mode ablation (gap in points; calibration: {len(calibration)} training "
          "crops)")
    print(f"{'measure':52s} " + "  ".join(f"T={t:<4d}" for t in steps))
    for what, tail, source in ABLATION:
        graph = compile_graph(args.model, FRONT + tail + ",quantize-weights",
                              stats if source == "stats" else None,
                              calibration if source == "calibration" else None)
        curve, _ = gap_curve(graph, val, "loihi", steps, ann_acc)
        print(f"{what:52s} " + "  ".join(f"{curve[t]:6.2f}" for t in steps), flush=True)


if __name__ == "__main__":
    main()
