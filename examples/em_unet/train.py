"""Train the EM U-Net with the percentile firing-rate regularizer; export ONNX and stats.

Writes ``unet.onnx``, ``unet.stats.json`` (read by snncc's ``scale-rates --stats``) and
``training_log.json`` into ``--out`` (default: this directory). The statistics (which set the
converted SNN's firing-rate scales) are measured on ``data.calibration_crops()``: all 1280
non-overlapping 64x64 grid crops of the training slices 0-19, a fixed set. Never on the
validation slices 20-24, on which the model and its SNN are scored. Usage::

    python examples/em_unet/train.py               # the shipped model's settings
    python examples/em_unet/train.py --no-regularizer --out /tmp/noreg
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from data import (
    TRAIN_SLICES,
    VAL_SLICES,
    CropSampler,
    calibration_crops,
    grid_crops,
    load_slices,
)
from model import UNet, parameter_count
from torch import Tensor, nn
from tqdm import tqdm

from snncc.training.export import export_with_stats
from snncc.training.torch_rate import (
    ActivationCapture,
    PercentileRateRegularizer,
    RateTarget,
    to_loihi_rate,
    to_plain_relu,
)

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    p.add_argument("--batch", type=int, default=16, help="crops per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay)")
    p.add_argument("--width", type=int, default=8, help="channels of the first level")
    p.add_argument("--steps-per-epoch", type=int, default=250, help="steps between log lines")
    p.add_argument("--batchnorm", action="store_true", help="BatchNorm after every conv")
    p.add_argument(
        "--upsample",
        choices=("transpose", "nearest"),
        default="transpose",
        help="2x2 transposed conv, or nearest upsampling + 3x3 conv",
    )
    p.add_argument("--no-regularizer", action="store_true", help="train on BCE alone")
    p.add_argument("--percentile", type=float, default=99.9, help="q of the rate regularizer")
    p.add_argument("--lo-hz", type=float, default=100.0, help="lower end of the rate band")
    p.add_argument("--hi-hz", type=float, default=250.0, help="upper end of the rate band")
    p.add_argument("--reg-weight", type=float, default=1e-5, help="regularizer weight")
    p.add_argument("--rate-scale-hz", type=float, default=250.0, help="Hz per unit activation")
    p.add_argument("--dt", type=float, default=0.001, help="Loihi timestep (s)")
    p.add_argument("--loihi-aware", action="store_true", help="train with LoihiRateReLU")
    p.add_argument(
        "--warmup-frac",
        type=float,
        default=0.5,
        help="with --loihi-aware: fraction of steps trained with plain ReLU first",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (1 is many times faster on a machine busy with other jobs)",
    )
    p.add_argument("--out", type=Path, default=HERE, help="output directory")
    return p.parse_args(argv)


@dataclass
class EvalResult:
    """Validation metrics; rates keyed by torch module path."""

    pixel_accuracy: float
    bce: float
    percentile_rates_hz: dict[str, float]


@torch.no_grad()
def evaluate(model: UNet, x: Tensor, y: Tensor, target: RateTarget, batch: int = 64) -> EvalResult:
    """Pixel accuracy (threshold 0.5), BCE and per-layer q-th-percentile rates on all crops."""
    was_training = model.training
    model.eval()
    correct, bce_sum = 0, 0.0
    acts: dict[str, list[np.ndarray]] = {}
    with ActivationCapture(model) as capture:
        for start in range(0, len(x), batch):
            xb, yb = x[start : start + batch], y[start : start + batch]
            logits = model.logits(xb)
            correct += int(((logits > 0).float() == yb).sum())
            bce_sum += float(
                nn.functional.binary_cross_entropy_with_logits(logits, yb, reduction="sum")
            )
            for name, act in zip(capture.names, capture.latest(), strict=True):
                acts.setdefault(name, []).append(act.numpy().ravel())
    model.train(was_training)
    rates = {
        name: float(np.percentile(np.concatenate(a), target.percentile)) * target.rate_scale_hz
        for name, a in acts.items()
    }
    return EvalResult(correct / y.numel(), bce_sum / y.numel(), rates)


def train(args: argparse.Namespace) -> dict[str, object]:
    """Train, evaluate, export; return the training log."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    started = time.perf_counter()
    target = RateTarget(
        percentile=args.percentile,
        lo_hz=args.lo_hz,
        hi_hz=args.hi_hz,
        weight=args.reg_weight,
        rate_scale_hz=args.rate_scale_hz,
    )
    sampler = CropSampler(*load_slices(TRAIN_SLICES), seed=args.seed)
    val_x, val_y = (torch.from_numpy(a) for a in grid_crops(*load_slices(VAL_SLICES)))

    model = UNet(args.width, batchnorm=args.batchnorm, upsample=args.upsample)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    swap_step = round(args.warmup_frac * args.steps) if args.loihi_aware else None
    regularizer = None if args.no_regularizer else PercentileRateRegularizer(model, target)
    history: list[dict[str, object]] = []
    bar = tqdm(range(1, args.steps + 1), desc="train", unit="step", mininterval=2.0)
    for step in bar:
        if step - 1 == swap_step:
            to_loihi_rate(model, args.rate_scale_hz, args.dt)
            if regularizer is not None:
                regularizer.remove()
                regularizer = PercentileRateRegularizer(model, target)
        xb, yb = (torch.from_numpy(a) for a in sampler.sample(args.batch))
        bce = nn.functional.binary_cross_entropy_with_logits(model.logits(xb), yb)
        reg = regularizer.loss() if regularizer is not None else torch.zeros(())
        optimizer.zero_grad()
        (bce + reg).backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(bce=f"{bce.item():.3f}", reg=f"{reg.item():.3f}", refresh=False)
        if step % args.steps_per_epoch == 0 or step == args.steps:
            ev = evaluate(model, val_x, val_y, target)
            history.append({"step": step, "train_bce": bce.item(), "reg": reg.item(), **asdict(ev)})
            rates = " ".join(f"{r:.0f}" for r in ev.percentile_rates_hz.values())
            tqdm.write(
                f"epoch {step // args.steps_per_epoch:2d} step {step:5d} bce {bce.item():.4f} "
                f"reg {reg.item():.4f} val_acc {ev.pixel_accuracy:.4f} "
                f"p{args.percentile:g} Hz [{rates}]"
            )
    bar.close()
    if regularizer is not None:
        regularizer.remove()
    train_time = time.perf_counter() - started

    plain_model, loihi_model = copy.deepcopy(model), copy.deepcopy(model)
    to_plain_relu(plain_model)
    to_loihi_rate(loihi_model, args.rate_scale_hz, args.dt)
    final = evaluate(plain_model, val_x, val_y, target)
    loihi_eval = evaluate(loihi_model, val_x, val_y, target)
    args.out.mkdir(parents=True, exist_ok=True)
    calibration = torch.from_numpy(calibration_crops())  # training slices only
    export = export_with_stats(
        model,
        calibration,
        args.out / "unet.onnx",
        args.out / "unet.stats.json",
        percentile=args.percentile,
        rate_scale_hz=args.rate_scale_hz,
        dt=args.dt,
    )
    print(f"ONNX check passed; onnxruntime vs torch max abs diff {export.max_abs_diff:.3g}")
    return {
        "command": shlex.join(["python", *sys.argv]),
        "seed": args.seed,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parameters": parameter_count(model),
        "train_time_s": round(train_time, 1),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "final": {
            "val_pixel_accuracy": final.pixel_accuracy,
            "val_pixel_accuracy_loihi_rate": loihi_eval.pixel_accuracy,
            "val_bce": final.bce,
            "val_interior_fraction": float(val_y.mean()),
            "val_crops": len(val_x),
            "percentile_rates_hz": {  # on the validation crops: a measurement, not exported
                node: final.percentile_rates_hz[module]
                for node, module in export.node_to_module.items()
            },
        },
        "rate_stats": {  # what unet.stats.json holds, as rates
            "calibration": "all non-overlapping 64x64 grid crops of the training slices "
            f"{TRAIN_SLICES[0]}-{TRAIN_SLICES[-1]} (data.calibration_crops)",
            "crops": len(calibration),
            "percentile_rates_hz": export.stats.percentile_rates_hz(),
        },
        "onnx": {
            "file": export.onnx_path.name,
            "bytes": export.onnx_path.stat().st_size,
            "stats_file": export.stats_path.name,
            "max_abs_diff_onnxruntime": export.max_abs_diff,
        },
        "history": history,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal activations slow CPU convolutions many-fold
    log = train(args)
    path = args.out / "training_log.json"
    path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    fin = log["final"]
    print(
        f"done in {log['wall_time_s']} s: val pixel accuracy {fin['val_pixel_accuracy']:.4f} "
        f"(Loihi rate curve {fin['val_pixel_accuracy_loihi_rate']:.4f}); wrote {path}"
    )


if __name__ == "__main__":
    main()
