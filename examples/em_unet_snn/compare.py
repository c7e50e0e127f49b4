"""Converted versus directly trained SNN on the EM task: one table, one plot.

    cd examples/em_unet_snn && python compare.py          # ≈ 1 h 15 min on 2 loaded cores

Compiles, with the user's commands, (0) the shipped ANN `../em_unet/unet.onnx` with the
default Loihi pipeline, (1) the same with the low-latency issue's calibrate-spiking pass
(8 images, calibration crops from training slices 0–19 only), (2) the directly trained
`unet.onnx` here (no option: its metadata selects the trained pipeline), (3) the ANN with
`--distill` (distill-spiking on the same 40 calibration crops, for every run length from
T = 64 to 100), (4) the same for runs of T = 64 only (`--distill 64`); then scores each
with `snncc eval --mode loihi` on the 320 non-overlapping 64×64 crops of slices 20–24
(`--margin 0`, the crops the ANN's 89.7 % is measured on) at each T of `--timesteps`
past the route's readout delay. Writes `comparison.json`, `comparison.md` (the table in
docs/training.md) and `comparison.png` (pixel accuracy versus T) into `--out`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "em_unet" / "data"
ANN = HERE.parent / "em_unet" / "unet.onnx"
PIPELINE = ("canonicalize,fold-batchnorm,fuse-linear,convert-activations{reset=zero},"
            "scale-rates,quantize-weights,CALIBRATE,tile-cores,partition-chips")


def run(*args: str) -> str:
    print("$ snncc", " ".join(args), file=sys.stderr)
    return subprocess.run(["snncc", *args], check=True, capture_output=True, text=True).stdout


def calibration_crops(path: Path) -> Path:
    """40 seeded 64×64 crops of the training slices (0–19), as bench_latency.py uses."""
    from snncc.data.images import load_labelled, random_crops

    data = load_labelled(DATA, tuple(range(20)))
    x, _ = random_crops(data.images, data.labels, 2, 64, 64, 1)
    np.save(path, x[:, None].astype(np.float32))
    return path


def routes(out: Path) -> dict[str, list[str]]:
    calib = calibration_crops(out / "calibration.npy")
    return {
        "converted (default pipeline)": [str(ANN)],
        "converted + calibrate-spiking": [
            str(ANN), "-p", PIPELINE.replace("CALIBRATE", "calibrate-spiking{images=8}"),
            "--calibration", str(calib)],
        "directly trained (this directory)": [str(HERE / "unet.onnx")],
        "converted + distill-spiking (compile --distill)": [
            str(ANN), "--distill", "--calibration", str(calib)],
        "converted + distill-spiking for T = 64 (compile --distill 64)": [
            str(ANN), "--distill", "64", "--calibration", str(calib)],
    }


def evaluate(compiled: Path, timesteps: list[int]) -> dict:
    report = json.loads((compiled / "report.json").read_text())
    delay = max(report["pass_reports"]["convert-activations"]["readout_delays"].values())
    usable = [t for t in timesteps if t > delay]
    main, sweep = usable[-1], usable[:-1]
    args = [str(compiled), "--data", str(DATA), "--indices", "20-24", "--margin", "0",
            "--mode", "loihi", "--timesteps", str(main), "--json", "--no-record",
            "--no-progress"]
    if sweep:
        args += ["--sweep", ",".join(map(str, sweep))]
    result = json.loads(run("eval", *args))
    rows = {row["timesteps"]: row for row in result.get("sweep", [])}
    rows[main] = {"timesteps": main, "snn": result["snn"],
                  "loihi_j": result["energy"]["loihi"]["total"],
                  "synaptic_ops": result["energy"]["loihi_counts"]["synaptic_ops"]}
    return {"ann": result["ann"], "delay": delay, "rows": rows}


def table(results: dict, timesteps: list[int], train_log: dict) -> str:
    ann = next(iter(results.values()))["ann"]
    lines = ["| route | T | pixel accuracy | IoU | Rand error | Loihi energy per crop "
             "| synaptic ops per crop |", "|---|---|---|---|---|---|---|",
             f"| ANN (onnxruntime) | – | {100 * ann['pixel_accuracy']:.2f} % | "
             f"{ann['iou']:.3f} | {ann['rand_error']:.3f} | – | – |"]
    for name, r in results.items():
        for t in timesteps:
            row = r["rows"].get(t)
            if row is None:
                lines.append(f"| {name} | {t} | no output (readout delay {r['delay']}) "
                             "| – | – | – | – |")
                continue
            m = row["snn"]
            lines.append(f"| {name} | {t} | {100 * m['pixel_accuracy']:.2f} % | "
                         f"{m['iou']:.3f} | {m['rand_error']:.3f} | "
                         f"{1e3 * row['loihi_j']:.2f} mJ | {row['synaptic_ops'] / 1e6:.1f} M |")
    lines.append("")
    lines.append(f"Training the direct SNN, last run: {train_log['train_seconds'] / 60:.0f} min "
                 f"({train_log['command']}, {train_log['threads']} threads), after the ANN's "
                 "own training.")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ann = next(iter(results.values()))["ann"]["pixel_accuracy"]
    ax.axhline(100 * ann, color="black", linestyle="--", label="ANN")
    for name, r in results.items():
        ts = sorted(r["rows"])
        ax.plot(ts, [100 * r["rows"][t]["snn"]["pixel_accuracy"] for t in ts], "o-", label=name)
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("pixel accuracy, slices 20–24 (%)")
    ax.set_ylim(60, 92)
    ax.legend(fontsize=8)
    ax.set_title("loihi mode, 8-bit weights, 320 crops of 64×64")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", default="16,24,32,50,100")
    p.add_argument("--routes", default="0,1,2,3,4",
                   help="which routes to (re)run; the others are read from earlier runs")
    p.add_argument("--out", type=Path, default=HERE.parents[1] / "build" / "em_unet_snn")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    timesteps = sorted(int(t) for t in args.timesteps.split(","))
    wanted = {int(i) for i in args.routes.split(",")}
    results = {}
    for i, (name, compile_args) in enumerate(routes(args.out).items()):
        saved = args.out / f"route{i}.json"
        if i in wanted:
            compiled = args.out / f"route{i}.snncc"
            run("compile", *compile_args, "--target", "loihi", "-o", str(compiled), "--force",
                "--no-progress")
            saved.write_text(json.dumps(evaluate(compiled, timesteps), indent=2) + "\n")
        if saved.is_file():
            r = json.loads(saved.read_text())
            r["rows"] = {int(t): row for t, row in r["rows"].items()}
            results[name] = r
    train_log = json.loads((HERE / "training_log.json").read_text())
    (args.out / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "comparison.md").write_text(table(results, timesteps, train_log))
    plot(results, args.out / "comparison.png")
    print((args.out / "comparison.md").read_text())


if __name__ == "__main__":
    main()
