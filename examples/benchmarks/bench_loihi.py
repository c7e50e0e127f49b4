"""Time per timestep: numpy target (loihi mode) vs nengo-loihi's emulator, same network.

    python examples/benchmarks/bench_loihi.py [COMPILED_DIR_OR_SNNIR] [--size 32] [--steps 20]

Without a compiled network, a hand-built spiking U-Net (tests/loihi_graphs.py) of
`--size`² pixels is tiled with tile-cores and used. Both simulators run one image for
`--steps` steps; the emulator's time includes its per-image build, reported separately.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from snncc.evaluate.compiled import load_compiled
from snncc.hw.loihi.geometry import lower
from snncc.pipeline import PassContext
from snncc.sim.spiking import readout_delay
from snncc.targets.loihi import LoihiTarget
from snncc.targets.loihi.builder import build
from snncc.targets.loihi.runner import simulator
from snncc.targets.numpy import NumpyTarget


def graph_from(args: argparse.Namespace):
    if args.compiled is not None:
        return load_compiled(args.compiled)[0]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from loihi_graphs import spiking_unet

    from snncc.passes.tile_cores import TileCores

    g = spiking_unet(args.size, channels=(8, 16))
    TileCores().run(g, PassContext(progress=False))
    g.with_properties("tiled")
    return g


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("compiled", nargs="?", type=Path)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    g = graph_from(args)
    x = np.random.default_rng(0).random((1, *g.inputs[0].type.shape[1:])).astype(np.float32)
    # A run must pass the readout's delay; the difference of two runs is the cost of
    # `steps` more steps, without the per-run setup.
    first = readout_delay(g) + 1
    NumpyTarget().run(g, [x], "loihi", timesteps=first)  # warm-up
    seconds = []
    for steps in (first, first + args.steps):
        start = time.perf_counter()
        NumpyTarget().run(g, [x], "loihi", timesteps=steps)
        seconds.append(time.perf_counter() - start)
    numpy_step = (seconds[1] - seconds[0]) / args.steps

    lowered = lower(g)
    _, report = LoihiTarget().report(g)
    start = time.perf_counter()
    built = build(g, lowered, {g.inputs[0].name: x[0]})
    with simulator(built.network, g.attrs.dt, "sim", {}) as sim:
        build_s = time.perf_counter() - start
        sim.run_steps(2)
        start = time.perf_counter()
        sim.run_steps(args.steps)
        emu_step = (time.perf_counter() - start) / args.steps
    print(f"network: {g.name}, input {list(x.shape)}, {report['neurons']['on_chip']} on-chip "
          f"neurons, {report['synapses']} synapses, {report['cores']} cores")
    print(f"{'simulator':<28}{'ms / step':>12}")
    print(f"{'numpy target (loihi mode)':<28}{1000 * numpy_step:12.2f}")
    print(f"{'nengo-loihi emulator':<28}{1000 * emu_step:12.2f}   (+ {build_s:.2f} s build)")
    print(f"emulator / numpy: {emu_step / numpy_step:.1f}x")


if __name__ == "__main__":
    main()
