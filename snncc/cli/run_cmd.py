"""`snncc run OUTDIR --input X`: run a compiled network on an image or an array.

Inputs: `.npy` (N×C×H×W, C×H×W or H×W) or an image file (8-bit gray → [0, 1]); one gray
image larger than the model input (an EM slice, say) is overlap-tiled as `snncc eval` does:
mirrored at its borders, cut into model-sized tiles that overlap by --margin pixels on each
side, each tile contributing its centre to the stitched output. Output: `.npy` with the raw
outputs, or `.png` with the foreground probability of the first image as an 8-bit picture
(0..1 → 0..255; a model that outputs logits is passed through its sigmoid or softmax).

A network compiled for Loihi runs by default on the numpy target's `loihi` mode
(nengo-loihi's integer dynamics, bit-faithful to its emulator and far faster); the
emulator runs only when asked for (--target loihi or --mode emulator).

Spiking modes (`--mode ideal|loihi`; `spiking` means `ideal`, the default for a spiking
graph on the numpy target) can show the prediction converging: `--frames FILE` writes
the output decoded after K evenly spaced numbers of steps (`--frame-count K`), as a
left-to-right PNG strip or an .npy stack (K×N×C×H×W). `--report FILE` writes what the
run measured (per-layer firing rates and spike counts) as JSON.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from snncc.cli.common import check_at_least, json_text, parse_target
from snncc.cli.outputs import (
    REPORT,
    StagedOutputs,
    check_output_file,
    encode_image,
    encode_npy,
    image_suffixes,
    staged_outputs,
)
from snncc.data.images import Tiling, check_values, read_gray
from snncc.diagnostics import SnnccError, UsageError
from snncc.evaluate.compiled import load_compiled
from snncc.evaluate.metrics import Head, output_head
from snncc.ir.graph import Graph
from snncc.ir.types import TensorType
from snncc.pipeline.target import Target


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a compiled network on an input",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("compiled", type=Path,
                   help="a compiled directory (`snncc compile -o DIR`) or an .snnir file")
    p.add_argument("--input", type=Path, required=True, help="an .npy array or an image file")
    p.add_argument("--target", help="target to run on (default: the one compiled for; numpy "
                   "for a network compiled for loihi)")
    p.add_argument("--mode", help="simulation mode (see `snncc targets`; default: the "
                   "target's first, loihi for a network compiled for loihi)")
    p.add_argument("--timesteps", type=int, help="timesteps for spiking modes")
    p.add_argument("--margin", type=int, metavar="PX",
                   help="overlap-tile margin for an image larger than the model input "
                   "(default: a quarter of the tile, 16 for a 64×64 model)")
    p.add_argument("-o", "--output", type=Path, help="output .npy or .png (default: print)")
    p.add_argument("--frames", type=Path, metavar="FILE",
                   help="spiking modes: the output as it converges, a .png strip or .npy")
    p.add_argument("--frame-count", type=int, default=8, metavar="K",
                   help="how many frames --frames shows (default 8)")
    p.add_argument("--report", type=Path, metavar="FILE",
                   help="write the run's measurements (rates, spike counts) as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def load_input(path: Path, expected: TensorType, margin: int | None
               ) -> tuple[np.ndarray, Tiling | None]:
    """Read an array or image and shape it as a batch of the graph's input (overlap-tiled
    when it is one gray image larger than the input)."""
    if not path.is_file():
        raise SnnccError(f"{path}: no such input file")
    if path.suffix == ".npy":
        try:
            array = check_values(np.load(path, allow_pickle=False), str(path))
        except (OSError, ValueError, EOFError) as err:
            raise SnnccError(f"{path}: not a readable .npy array: {err}") from None
    else:
        array = read_gray(path)
    per_image = expected.shape[1:]
    channels, height, width = per_image if len(per_image) == 3 else (0, 0, 0)
    gray = array.squeeze()
    if (channels == 1 and gray.ndim == 2 and gray.shape != (height, width)
            and gray.shape[0] >= height and gray.shape[1] >= width):
        tiling = Tiling.plan(gray.shape, (height, width), margin)
        return tiling.cut(gray)[:, None], tiling
    while array.ndim < len(expected.shape):
        array = array[None]
    if array.shape[1:] != per_image:
        raise SnnccError(f"{path}: input of shape {list(array.shape)} does not fit the model "
                         f"input {expected} (each image must be {'x'.join(map(str, per_image))}"
                         ", or one gray image at least that large)")
    return array, None


def frame_steps(first: int, steps: int, count: int) -> list[int]:
    """`count` evenly spaced timesteps from just past the readout delay to `steps`."""
    return sorted({round(first + (steps - first) * (k + 1) / count) for k in range(count)})


def _picture(out: np.ndarray, head: Head) -> np.ndarray:
    """Foreground probability of the first image as 8-bit gray (0..1 → 0..255)."""
    picture = np.clip(head.probability(out[0]) if out.ndim == 4 else out[0], 0, 1)
    return (picture * 255).round().astype(np.uint8)


def _encode(path: Path, array: np.ndarray) -> bytes:
    return encode_npy(array) if path.suffix == ".npy" else encode_image(array, path.suffix)


def check_outputs(args: argparse.Namespace) -> None:
    """Every output path and numeric option, before any work."""
    check_at_least("--frame-count", args.frame_count, 1)
    check_at_least("--timesteps", args.timesteps, 1)
    ir = args.compiled / "model.snnir" if args.compiled.is_dir() else args.compiled
    inputs = [args.input, ir, *ir.parent.glob("*.npz"), args.compiled / REPORT]
    pictures = (".npy", *image_suffixes())
    for option, path, suffixes in (("-o", args.output, pictures),
                                   ("--frames", args.frames, pictures),
                                   ("--report", args.report, (".json",))):
        if path is not None:
            check_output_file(path, option, suffixes, inputs)
    given = [p.resolve() for p in (args.output, args.frames, args.report) if p is not None]
    if len(set(given)) < len(given):
        raise UsageError("-o, --frames and --report must name different files")


def choose_target(compiled_for: str, target: str | None, mode: str | None
                  ) -> tuple[Target, str | None]:
    """The target and mode a run uses: as asked, else the one compiled for, except that a
    network compiled for Loihi runs on the numpy target's bit-faithful `loihi` mode unless
    the emulator (or hardware) is asked for by --target or --mode."""
    mode = {"spiking": "ideal"}.get(mode, mode) if mode else None
    if target is None and compiled_for == "loihi" and mode not in ("emulator", "hardware"):
        return parse_target("numpy"), mode or "loihi"
    return parse_target(target or compiled_for), mode


def run(args: argparse.Namespace) -> int:
    check_outputs(args)
    graph, report = load_compiled(args.compiled)
    target, mode = choose_target(report.get("target", "numpy"), args.target, args.mode)
    if mode is None:
        spiking = "spiking" in graph.attrs.properties and "ideal" in target.modes
        mode = "ideal" if spiking else target.modes[0]
    batch, tiling = load_input(args.input, graph.inputs[0].type, args.margin)
    inputs = [batch]
    whole = (lambda out: tiling.stitch(out)[None]) if tiling is not None else (lambda out: out)
    if mode in ("ideal", "loihi", "emulator", "hardware"):
        steps = args.timesteps or graph.attrs.timesteps
        from snncc.sim.spiking import readout_delay

        if steps <= readout_delay(graph):
            raise SnnccError(f"--timesteps {steps} does not reach past the readout delay of "
                             f"{readout_delay(graph)} steps (one step per layer plus the lag "
                             "of synaptic filters); use more")
    with staged_outputs() as out:
        _run(args, graph, report, target, mode, inputs, tiling, whole, out)
    for path in (args.frames, args.output, args.report):
        if path is not None:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace, graph: Graph, report: dict, target: Target, mode: str,
         inputs: list[np.ndarray], tiling: Tiling | None,
         whole: Callable[[np.ndarray], np.ndarray], staged: StagedOutputs) -> None:
    """Run, and stage the output files (renamed into place together when all succeeded)."""
    head = Head(output_head(graph))
    if args.frames is None:
        result = target.run(graph, inputs, mode, timesteps=args.timesteps,
                            progress=not args.no_progress)
    else:
        if mode not in ("ideal", "loihi") or target.name != "numpy":
            raise UsageError("--frames needs a spiking mode of the numpy target (--target "
                             "numpy --mode ideal or loihi)")
        from snncc.sim.spiking import readout_delay, run_spiking

        steps = args.timesteps or graph.attrs.timesteps
        delay = readout_delay(graph)
        result = run_spiking(graph, inputs, mode, timesteps=steps,
                             progress=not args.no_progress,
                             frames=frame_steps(delay + 1, steps, args.frame_count))
        stack = {t: whole(result.frames[t][0]) for t in sorted(result.frames)}
        if args.frames.suffix == ".npy":
            staged.write(args.frames, encode_npy(np.stack(list(stack.values()))))
        else:
            from snncc.evaluate.plots import plot_frames

            picture = io.BytesIO()
            plot_frames(picture, {t: head.probability(o[0]) for t, o in stack.items()},
                        f"{Path(report.get('source_model', args.compiled)).name}, {mode} mode",
                        steps, delay)
            staged.write(args.frames, picture.getvalue())
        print(f"frames after {', '.join(map(str, stack))} steps; the first {delay} steps are "
              "the readout delay, before any spike reaches the output", file=sys.stderr)
    out = whole(result.outputs[0])
    if args.output is None:
        np.set_printoptions(precision=4, threshold=64)
        print(out)
    else:
        staged.write(args.output, _encode(args.output, out if args.output.suffix == ".npy"
                                          else _picture(out, head)))
    if args.report is not None:
        staged.write(args.report, json_text({**result.stats, "target": target.name,
                                             "mode": mode,
                                             "input": _input_facts(args.input, inputs[0],
                                                                   tiling)}))


def _input_facts(path: Path, batch: np.ndarray, tiling: Tiling | None) -> dict[str, object]:
    """What was run: the images given, and how many model inputs (tiles) they became (the
    run's `images` count model inputs)."""
    if tiling is None:
        return {"file": str(path), "images": len(batch), "model_inputs": len(batch)}
    return {"file": str(path), "images": 1, "image_size": list(tiling.size),
            "model_inputs": len(batch), "tiles": len(tiling.origins),
            "tile": list(tiling.tile), "margin": tiling.margin}
