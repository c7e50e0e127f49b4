"""`snncc run OUTDIR --input X`: run a compiled network on an image or an array.

Inputs: `.npy` (N×C×H×W, C×H×W or H×W) or an image file (8-bit gray → [0, 1]). Output:
`.npy` with the raw outputs, or `.png` with the first output channel of the first image
as an 8-bit picture (probabilities 0..1 → 0..255).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from snncc.cli.common import load_compiled, parse_target
from snncc.diagnostics import SnnccError
from snncc.ir.types import TensorType


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a compiled network on an input",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("compiled", type=Path, help="a directory written by `snncc compile`")
    p.add_argument("--input", type=Path, required=True, help="an .npy array or an image file")
    p.add_argument("--target", help="target to run on (default: the one compiled for)")
    p.add_argument("--mode", help="simulation mode (see `snncc targets`; default: the "
                   "target's first)")
    p.add_argument("--timesteps", type=int, help="timesteps for spiking modes")
    p.add_argument("-o", "--output", type=Path, help="output .npy or .png (default: print)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def load_input(path: Path, expected: TensorType) -> np.ndarray:
    """Read an array or image and shape it as a batch of the graph's input."""
    if not path.is_file():
        raise SnnccError(f"{path}: no such input file")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False).astype(np.float32)
        except ValueError as err:
            raise SnnccError(f"{path}: not a readable .npy array: {err}") from None
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            array = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as err:
            raise SnnccError(f"{path}: not a readable image: {err}") from None
    per_image = expected.shape[1:]
    while array.ndim < len(expected.shape):
        array = array[None]
    if array.shape[1:] != per_image:
        raise SnnccError(f"{path}: input of shape {list(array.shape)} does not fit the model "
                         f"input {expected} (each image must be {'x'.join(map(str, per_image))})")
    return array


def run(args: argparse.Namespace) -> int:
    graph, report = load_compiled(args.compiled)
    target = parse_target(args.target or report.get("target", "numpy"))
    mode = args.mode or target.modes[0]
    inputs = [load_input(args.input, graph.inputs[0].type)]
    result = target.run(graph, inputs, mode, timesteps=args.timesteps,
                        progress=not args.no_progress)
    out = result.outputs[0]
    if args.output is None:
        np.set_printoptions(precision=4, threshold=64)
        print(out)
    elif args.output.suffix == ".npy":
        np.save(args.output, out)
    else:
        from PIL import Image

        picture = np.clip(out[0, 0] if out.ndim == 4 else out[0], 0, 1)
        Image.fromarray((picture * 255).round().astype(np.uint8)).save(args.output)
    if args.output is not None:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
