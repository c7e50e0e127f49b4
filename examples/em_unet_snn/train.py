"""Train the EM U-Net as a spiking network, through Loihi's own dynamics; export it.

Hybrid training (Rathi et al. 2020): start from the shipped ANN's conversion (snncc's
own, `snncc.training.hybrid.converted_graph`), then train its weights and biases with
surrogate-gradient BPTT over T steps of the exact `loihi`-mode dynamics
(`snncc.sim.differentiable.SpikingNet`), on random 64×64 crops of slices 0–19 (the 8
dihedral symmetries), binary cross-entropy on the readout's mean current. Within a run
the schedule is fixed and the last weights are kept: no weights are picked on the
validation slices (which runs followed which is told in docs/direct-training.md).

    cd examples/em_unet_snn && python train.py            # ≈ 40 min on 2 CPU cores
    python train.py --resume unet.onnx --steps 150 --lr 1e-3  # the shipped model's 2nd run
    python train.py --resume unet.onnx --steps 150 --lr 1e-3 \
        --teacher ../em_unet/unet.onnx --readout-delay first  # and its 3rd

writes ``unet.onnx`` (the trained network as an ONNX ANN with metadata ``snncc.spiking``,
which `snncc compile unet.onnx --target loihi` recognises) and ``training_log.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "em_unet"))

from data import TRAIN_SLICES, VAL_SLICES, CropSampler, grid_crops, load_slices  # noqa: E402

from snncc.sim.arrival import read_out_from  # noqa: E402
from snncc.sim.differentiable import SURROGATE_BETA, SpikingNet  # noqa: E402
from snncc.training.hybrid import (  # noqa: E402
    converted_graph,
    declaration,
    trained_graph,
)
from snncc.training.spiking_export import export_spiking  # noqa: E402


def readout_delay_arg(text: str) -> int | str:
    if text == "first" or text.isdigit():
        return text if text == "first" else int(text)
    raise argparse.ArgumentTypeError(f"expected a step number or 'first', got '{text}'")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ann", type=Path, default=HERE.parent / "em_unet" / "unet.onnx",
                   help="the trained ANN to start from (with its rate statistics)")
    p.add_argument("--resume", type=Path,
                   help="continue training this exported SNN instead of converting --ann")
    p.add_argument("--timesteps", type=int, default=32, help="T trained for")
    p.add_argument("--steps", type=int, default=400, help="optimizer steps")
    p.add_argument("--batch", type=int, default=8, help="crops per step")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay)")
    p.add_argument("--v-min", type=float, default=-1.0,
                   help="membrane floor, in thresholds below zero (Loihi's vmin)")
    p.add_argument("--input-threshold", type=float, default=1.0,
                   help="threshold of the input encoder (pixel 1 spikes every step)")
    p.add_argument("--readout-delay", default=None,
                   type=readout_delay_arg,
                   help="step the readout starts integrating from: a number, or 'first' (when "
                        "the first spikes arrive, through the shortest skip path); default: "
                        "the converted or resumed network's")
    p.add_argument("--teacher", type=Path,
                   help="also distil this ANN (sigmoid head): the loss adds binary cross "
                        "entropy against its probabilities, weighted by --teacher-weight")
    p.add_argument("--teacher-weight", type=float, default=0.5,
                   help="weight of the teacher's term; the labels' term gets 1 − it")
    p.add_argument("--eval-crops", type=int, default=320, help="validation crops at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", type=Path, default=HERE, help="output directory")
    return p.parse_args(argv)


def readout_logits(net: SpikingNet, x: np.ndarray, steps: int) -> tuple[torch.Tensor, dict]:
    readouts, counts = net(x, steps)
    (logits,) = readouts.values()
    return logits, counts


@torch.no_grad()
def evaluate(net: SpikingNet, x: np.ndarray, y: np.ndarray, steps: int,
             batch: int = 16) -> dict[str, float]:
    """Pixel accuracy (probability > 0.5) and BCE of the trainer's own forward pass."""
    correct, bce = 0, 0.0
    for start in tqdm(range(0, len(x), batch), desc="evaluate", unit="batch", leave=False):
        logits, _ = readout_logits(net, x[start:start + batch], steps)
        yb = torch.from_numpy(y[start:start + batch])
        correct += int(((logits > 0).float() == yb).sum())
        bce += float(nn.functional.binary_cross_entropy_with_logits(logits, yb, reduction="sum"))
    return {"pixel_accuracy": correct / y.size, "bce": bce / y.size}


def teacher_probabilities(model: Path) -> Callable[[np.ndarray], torch.Tensor]:
    """The ANN's output probabilities for a batch of crops (onnxruntime)."""
    from snncc.evaluate.compare import OnnxModel

    session = OnnxModel(model)
    return lambda x: torch.from_numpy(session(x))


def train(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    graph = (trained_graph(args.resume) if args.resume else
             converted_graph(args.ann, v_min=args.v_min, input_threshold=args.input_threshold))
    if args.readout_delay is not None:
        print(f"readout from step {read_out_from(graph, args.readout_delay)}")
    net = SpikingNet(graph)
    sampler = CropSampler(*load_slices(TRAIN_SLICES), seed=args.seed)
    val_x, val_y = grid_crops(*load_slices(VAL_SLICES))
    val_x, val_y = val_x[:args.eval_crops], val_y[:args.eval_crops]
    before = evaluate(net, val_x, val_y, args.timesteps)
    print(f"start, T = {args.timesteps}: pixel accuracy {before['pixel_accuracy']:.4f}")
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / args.steps)))
    teacher = teacher_probabilities(args.teacher) if args.teacher else None
    history, rates = [], {}
    bar = tqdm(range(args.steps), desc="train", unit="step")
    for step in bar:
        x, y = sampler.sample(args.batch)
        logits, counts = readout_logits(net, x, args.timesteps)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
        if teacher is not None:
            soft = nn.functional.binary_cross_entropy_with_logits(logits, teacher(x))
            loss = (1 - args.teacher_weight) * loss + args.teacher_weight * soft
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        acc = float(((logits.detach() > 0).float() == torch.from_numpy(y)).float().mean())
        history.append({"step": step, "loss": float(loss), "train_pixel_accuracy": acc})
        bar.set_postfix(loss=f"{float(loss):.4f}", acc=f"{acc:.3f}")
        for name, c in counts.items():  # spikes per neuron per step, running over training
            rate = float(c.detach().mean()) / args.timesteps
            rates[name] = rate if name not in rates else 0.98 * rates[name] + 0.02 * rate
    train_seconds = time.perf_counter() - started
    after = evaluate(net, val_x, val_y, args.timesteps)
    print(f"trained: pixel accuracy {after['pixel_accuracy']:.4f} (trainer's own forward)")
    net.write_back()
    start = (f"continued from {args.resume}" if args.resume
             else f"converted from {args.ann.name} (snncc.training.hybrid)")
    training = {"init": start,
                "surrogate": f"fast-sigmoid, beta {SURROGATE_BETA:g}", "optimizer": "Adam",
                "lr": args.lr, "steps": args.steps, "batch": args.batch, "seed": args.seed,
                "train_slices": list(TRAIN_SLICES)}
    if args.teacher:
        training["teacher"] = {"model": args.teacher.name, "weight": args.teacher_weight}
    if args.resume:
        from snncc.data.trained import read_onnx_trained

        training["earlier"] = read_onnx_trained(args.resume).training
    declared = declaration(graph, args.timesteps, rates, training)
    args.out.mkdir(parents=True, exist_ok=True)
    export_spiking(graph, declared, args.out / "unet.onnx")
    log = {"command": "python train.py " + " ".join(sys.argv[1:]),
           "timesteps": args.timesteps, "v_min": args.v_min,
           "input_threshold": args.input_threshold, "readout_delay": declared.readout_delay,
           "parameters": net.parameter_count(), "train_seconds": round(train_seconds, 1),
           "threads": args.threads,
           "validation": {"crops": len(val_x), "slices": list(VAL_SLICES),
                          "start": before, "trained": after},
           "mean_rates": rates, "history": history[:: max(1, len(history) // 100)]}
    (args.out / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return log


if __name__ == "__main__":
    train(parse_args())
