"""Spiking engines' speed and memory against onnxruntime and nengo-loihi, in one run.

    python examples/benchmarks/bench_engine.py [--model examples/em_unet/unet.onnx]
        [--crops 8] [--no-emulator] [--no-reference]

On `--crops` seeded 64×64 crops of each of 4 validation slices (20–23; 32 by default),
with the `ideal` and `loihi` pipelines of bench_spiking.py, it prints per image·timestep
((wall at T1 − wall at T0) / ((T1 − T0) · N), so setup is left out; the fast engine's
walls are the best of 2 runs) for the fast engine and the step-by-step reference,
onnxruntime's time per inference (one image at a time) on the same crops (the faster of
its default spinning threads and sleeping ones: on a loaded machine the default is up to
twice as slow), the fast engine's and nengo-loihi's emulator's time per step at batch 1
(the emulator both over its first steps, as issue #12 measured it, and past the readout
delay, the span the fast engine's figure covers), and peak memory (tracemalloc: numpy's
arrays) of the fast engine on the crops and on a whole 512×512 slice (64 tiles) at
T = 200. Ratios are against the baselines measured in this run: on a shared machine only
they are comparable between runs.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from bench_spiking import DATA, IDEAL, LOIHI, ROOT, ann, compile_graph, crops

from snncc.data.images import load_labelled, tile_origins
from snncc.sim.spiking import readout_delay, run_spiking


def per_step(run: Callable[[int], object], t0: int, t1: int, repeats: int = 1) -> float:
    """Seconds per step: the difference of a T1 and a T0 run over T1 − T0, each the best
    of `repeats` runs."""
    seconds = []
    for t in (t0, t1):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run(t)
            best = min(best, time.perf_counter() - start)
        seconds.append(best)
    return (seconds[1] - seconds[0]) / (t1 - t0)


def ort_sleeping(model: Path, x: np.ndarray) -> float:
    """`ann`'s seconds per inference with onnxruntime's threads sleeping instead of spinning
    between runs: on a loaded machine spinning threads wait for each other a scheduler time
    slice at a time, as the engine's did before it set OMP_WAIT_POLICY (`snncc.sim`)."""
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: x[:1]})
    start = time.perf_counter()
    for i in range(len(x)):
        session.run(None, {name: x[i:i + 1]})
    return (time.perf_counter() - start) / len(x)


def peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def slice_tiles(index: int, size: int) -> np.ndarray:
    """A whole validation slice cut into size×size tiles, N×1×size×size."""
    image = load_labelled(DATA, (index,)).images[0]
    tiles = [image[y:y + size, x:x + size] for y in tile_origins(image.shape[0], size)
             for x in tile_origins(image.shape[1], size)]
    return np.stack(tiles)[:, None]


def emulator_steps(model: Path, x: np.ndarray, early: int = 20, late: int = 10
                   ) -> tuple[float, float]:
    """nengo-loihi's emulator at batch 1, seconds per step: over steps 3 to 2 + `early`
    (as bench_loihi.py measured it for issue #12), and over `late` steps past the readout
    delay, where every layer is active (the span the fast engine's figure covers). Early
    steps are cheaper: the deep layers have not received spikes yet."""
    from snncc.hw.loihi.geometry import lower
    from snncc.targets.loihi import LoihiTarget
    from snncc.targets.loihi.builder import build
    from snncc.targets.loihi.runner import simulator

    g = compile_graph(model, LoihiTarget.default_pipeline, model.with_suffix(".stats.json"))
    built = build(g, lower(g), {g.inputs[0].name: x[0]})
    seconds = []
    with simulator(built.network, g.attrs.dt, "sim", {}) as sim:
        sim.run_steps(2)
        for steps, skip in ((early, 0), (late, readout_delay(g) - 1 - early)):
            if skip > 0:
                sim.run_steps(skip)
            start = time.perf_counter()
            sim.run_steps(steps)
            seconds.append((time.perf_counter() - start) / steps)
    return seconds[0], seconds[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "examples" / "em_unet" / "unet.onnx")
    p.add_argument("--crops", type=int, default=8, help="crops per validation slice")
    p.add_argument("--no-emulator", action="store_true")
    p.add_argument("--no-reference", action="store_true")
    args = p.parse_args()
    stats = args.model.with_suffix(".stats.json")
    x = crops((20, 21, 22, 23), args.crops, seed=0).images
    n = len(x)
    spinning = min(ann(args.model, x)[1] for _ in range(3))
    sleeping = min(ort_sleeping(args.model, x) for _ in range(3))
    ort_s = min(spinning, sleeping)
    print(f"model {args.model}, {n} crops 64x64; onnxruntime {ort_s * 1e3:.3f} ms per "
          f"inference (one image at a time, best of 3 passes; {spinning * 1e3:.3f} with its "
          f"default spinning threads, {sleeping * 1e3:.3f} with sleeping ones); load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"\n{'':42s}{'ms / image·step':>16s}")

    def row(what: str, seconds: float, note: str) -> None:
        print(f"{what:42s}{seconds * 1e3:16.3f}   {note} (load average "
              f"{os.getloadavg()[0]:.1f})", flush=True)

    graphs = {mode: compile_graph(args.model, pipe, stats)
              for mode, pipe in (("ideal", IDEAL), ("loihi", LOIHI))}
    for mode, g in graphs.items():
        first = readout_delay(g) + 1
        run_spiking(g, [x[:2]], mode, timesteps=first)  # compiles the kernels
        fast = per_step(lambda t, g=g, mode=mode: run_spiking(
            g, [x], mode, timesteps=t, batch_size=n), first + 10, first + 110, 2) / n
        row(f"fast engine, {mode}, batch {n}", fast, f"{fast / ort_s:.2f}x onnxruntime")
        if not args.no_reference:
            ref = per_step(lambda t, g=g, mode=mode: run_spiking(
                g, [x], mode, timesteps=t, batch_size=16, engine="reference"),
                first, first + 20) / n
            row(f"reference engine, {mode}, batch 16", ref,
                f"{ref / ort_s:.2f}x onnxruntime; fast is {ref / fast:.1f}x faster")
    g = graphs["loihi"]
    first = readout_delay(g) + 1
    one = per_step(lambda t: run_spiking(g, [x[:1]], "loihi", timesteps=t), first,
                   first + 100, 2)
    row("fast engine, loihi, batch 1, per step", one, "")
    if not args.no_emulator:
        early, late = emulator_steps(args.model, x[:1])
        row("emulator, batch 1, steps 3-22", early,
            f"fast is {early / one:.0f}x faster (issue #12's measure)")
        row("emulator, batch 1, past the readout delay", late, f"fast is {late / one:.0f}x faster")
    crops_peak = peak_bytes(lambda: run_spiking(g, [x], "loihi", timesteps=160,
                                                batch_size=n))
    tiles = slice_tiles(20, 64)
    slice_peak = peak_bytes(lambda: run_spiking(g, [tiles], "loihi", timesteps=200))
    print(f"\npeak memory (numpy arrays), loihi mode: {crops_peak / 2**20:.0f} MiB for {n} "
          f"crops at T = 160; {slice_peak / 2**20:.0f} MiB for a 512x512 slice "
          f"({len(tiles)} tiles) at T = 200")


if __name__ == "__main__":
    main()
