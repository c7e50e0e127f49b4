"""What shortens the Loihi conversion's latency: the loihi-mode gap per T for each measure.

    python examples/benchmarks/bench_latency.py --model MODEL.onnx [--crops 4]
        [--configs default,filter-1ms,...] [--steps 32,50,64,100,150] [--json OUT.jsonl]

For each configuration (a conversion pipeline after `canonicalize,fold-batchnorm,
fuse-linear`) it compiles the model with scale-rates (and calibrate-spiking or
distill-spiking) fed by 40 seeded crops of the *training* slices 0–19 (or 20 ×
`--calibration-crops`), runs the numpy `loihi` mode on `--crops` seeded 64×64 crops of
each validation slice 20–24 and prints the gap ANN − SNN in pixel-accuracy points at every
T (one run: the simulator decodes the output after each T), the readout delay, and how
long compiling (calibrate- or distill-spiking included) took. "–" where T does not pass
the readout delay.
`--settle K,...` also scores, from the same run, readouts that start integrating K steps
after their delay (a readout that leaves out the transient): the window mean of the
readout's logit over [delay + K, T), from the decoded logits at every step.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from bench_spiking import FRONT, accuracy, ann, compile_graph, crops

from snncc.evaluate.compiled import load_compiled
from snncc.sim.spiking import readout_delay, run_spiking

SCALED = "convert-activations{{reset=zero{}}},scale-rates"
CONVERT = SCALED + ",quantize-weights"
CALIBRATE = ",calibrate-spiking"
CONFIGS = {
    "default": CONVERT.format(""),  # 3 ms synaptic filter
    "filter-2ms": CONVERT.format(" tau-s=0.002"),
    "filter-1ms": CONVERT.format(" tau-s=0.001"),
    "floor": CONVERT.format(" tau-s=0 v-min=-1"),
    "filter-1ms+floor": CONVERT.format(" tau-s=0.001 v-min=-1"),
    "filter-2ms+floor": CONVERT.format(" tau-s=0.002 v-min=-1"),
    "default+floor": CONVERT.format(" v-min=-1"),
    "default+calibrate": CONVERT.format("") + CALIBRATE,
    "default+calibrate8": CONVERT.format("") + CALIBRATE + "{images=8}",
    "default+calibrate8-200": CONVERT.format("") + CALIBRATE + "{images=8 timesteps=200}",
    "filter-1ms+calibrate": CONVERT.format(" tau-s=0.001") + CALIBRATE,
    "floor+calibrate": CONVERT.format(" tau-s=0 v-min=-1") + CALIBRATE,
    "floor+distill": SCALED.format(" tau-s=0 v-min=-1") + ",distill-spiking,quantize-weights",
}
# floor+distill[T][fromS][-stepsN][-first]: distill-spiking for runs of T steps (default 64),
# or of every length from S to T, for N optimizer steps, reading from the first spikes'
# arrival with -first
DISTILL_AT = re.compile(r"floor\+distill(\d*)(?:from(\d+))?(?:-steps(\d+))?(-first)?")
DISTILL_FORM = "floor+distill[T][fromS][-stepsN][-first] (e.g. floor+distill100from64)"


def config_pipeline(name: str) -> str:
    """The conversion pipeline of a configuration name (CONFIGS, or DISTILL_FORM)."""
    if name in CONFIGS:
        return CONFIGS[name]
    m = DISTILL_AT.fullmatch(name)
    if m is None:
        raise SystemExit(f"unknown configuration '{name}': use one of {', '.join(CONFIGS)} "
                         f"or {DISTILL_FORM}")
    timesteps, shortest, steps, first = m.groups()
    options = " ".join(([f"timesteps={timesteps}"] if timesteps else [])
                       + ([f"shortest={shortest}"] if shortest else [])
                       + ([f"steps={steps}"] if steps else [])
                       + (["read-from=first"] if first else []))
    return (SCALED.format(" tau-s=0 v-min=-1")
            + f",distill-spiking{{{options}}},quantize-weights")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--crops", type=int, default=4, help="crops per validation slice")
    p.add_argument("--calibration-crops", type=int, default=2,
                   help="calibration crops per training slice (2: the 40 crops)")
    p.add_argument("--configs", default="default,filter-1ms,floor,default+calibrate",
                   help=f"comma-separated: {', '.join(CONFIGS)}, or {DISTILL_FORM}")
    p.add_argument("--steps", default="32,50,64,100,150")
    p.add_argument("--json", type=Path, help="append one JSON line per configuration")
    p.add_argument("--settle", default="", help="extra readout delays to score, e.g. 8,16")
    p.add_argument("--compiled", type=Path, metavar="DIR",
                   help="score this `snncc compile` output of --model (e.g. compiled with "
                   "--distill on the same 40 crops) instead of compiling --configs")
    args = p.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    val = crops((20, 21, 22, 23, 24), args.crops, seed=0)
    calibration = crops(tuple(range(20)), args.calibration_crops, seed=1).images
    ann_acc = accuracy(ann(args.model, val.images)[0], val.labels)
    print(f"model {args.model}: ANN {ann_acc:.2f} % on {len(val.images)} validation crops")
    print(f"{'configuration':22s} delay " + " ".join(f"T={t:<5d}" for t in steps)
          + " compile s")
    for name in ["compiled"] if args.compiled else args.configs.split(","):
        if args.compiled:
            graph, report = load_compiled(args.compiled)
            compile_s = report["compile_seconds"]
        else:
            start = time.perf_counter()
            graph = compile_graph(args.model, FRONT + config_pipeline(name), None, calibration)
            compile_s = time.perf_counter() - start
        delay = readout_delay(graph)
        settle = [int(k) for k in args.settle.split(",") if k]
        frames = list(range(delay + 1, max(steps) + 1)) if settle else [
            t for t in steps if t > delay]
        result = run_spiking(graph, [val.images], "loihi", timesteps=max(steps), frames=frames,
                             batch_size=20)
        rows = {name: {t: ann_acc - accuracy(result.frames[t][0], val.labels)
                       for t in steps if t in result.frames}}
        if settle:  # running sums of the readout's logit, from its decoded means
            prob = np.clip(np.stack([result.frames[t][0] for t in frames]), 1e-7, 1 - 1e-7)
            total = np.log(prob / (1 - prob)) * np.arange(1, len(frames) + 1).reshape(
                -1, 1, 1, 1, 1)
            for k in settle:
                rows[f"{name} settle {k}"] = {
                    t: ann_acc - accuracy(1 / (1 + np.exp(-(total[t - delay - 1] - total[k - 1])
                                                          / (t - delay - k))), val.labels)
                    for t in steps if t > delay + k}
        for row, gaps in rows.items():
            print(f"{row:22s} {delay:5d} " + " ".join(
                f"{gaps[t]:7.2f}" if t in gaps else f"{'–':>7s}" for t in steps)
                + f" {compile_s:9.0f}", flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps({"model": str(args.model), "config": row,
                                        "ann": ann_acc, "crops": len(val.images),
                                        "delay": delay, "gaps": gaps,
                                        "compile_s": compile_s}) + "\n")


if __name__ == "__main__":
    main()
