"""Running a compiled graph on nengo-loihi: emulator (`target="sim"`) or hardware.

nengo-loihi's Simulator cannot be reset, and the image enters as biases (see builder), so
every image gets its own build. Before running, the time is estimated from the emulator's
measured time per step on a small reference network, scaled by the number of neurons, and
the memory from the probe buffers and synapse memory; runs beyond the target's limits are
refused. Readouts are computed on the host from the probed spikes of their sources.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError, UsageError
from snncc.hw.loihi.geometry import Layer, Lowered, lower
from snncc.hw.loihi.limits import CoreUse, block_grid
from snncc.ir.graph import Graph
from snncc.ir.ops import IF, Conv2d, Sigmoid, Softmax, SpikeInput
from snncc.ir.types import TensorType
from snncc.pipeline.target import RunResult
from snncc.targets.loihi.builder import Built, build, host_current, import_nengo

PROBE_BYTES = 8  # nengo stores probe data as float64


@dataclass(frozen=True)
class Estimate:
    seconds: float
    bytes: int
    seconds_per_step: float

    def describe(self) -> str:
        return (f"estimated {self.seconds:.1f} s ({1000 * self.seconds_per_step:.1f} ms per "
                f"step) and {self.bytes / 2**20:.0f} MiB")


def simulator(network: Any, dt: float, target: str, options: dict[str, Any]) -> Any:
    """A nengo-loihi Simulator, built without the emulator's harmless NaN-cast warnings
    (it fills integer arrays with NaN placeholders before setting them)."""
    _, nengo_loihi = import_nengo()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        return nengo_loihi.Simulator(network, dt=dt, target=target,
                                     hardware_options=options or None)


def _reference_graph() -> Graph:
    """A small fixed network (1×16×16 → 8 channels 3×3 → 8 channels 3×3) for timing."""
    g = Graph("timing")
    x = g.add_input("x", TensorType((1, 1, 16, 16)))
    s = g.add(SpikeInput, [x], SpikeInput.Attrs(reset="zero"))
    rng = np.random.default_rng(0)
    for i, c_in in enumerate((1, 8)):
        w = g.weights.add(f"w{i}", (rng.standard_normal((8, c_in, 3, 3)) * 0.3).astype(
            np.float32))
        s = g.add(IF, [g.add(Conv2d, [s], Conv2d.Attrs(w, pads=(1, 1, 1, 1)))],
                  IF.Attrs(reset="zero"))
    g.outputs = [s]
    return g


@cache
def emulator_seconds_per_neuron_step() -> float:
    """Measured once per process: emulator seconds per on-chip neuron per step."""
    g = _reference_graph()
    lowered = lower(g)
    built = build(g, lowered, {"x": np.full((1, 16, 16), 0.5)}, probe_all=False)
    steps = 20
    with simulator(built.network, g.attrs.dt, "sim", {}) as sim:
        sim.run_steps(2)
        start = time.perf_counter()
        sim.run_steps(steps)
        seconds = time.perf_counter() - start
    neurons = sum(int(np.prod(x.shape)) for x in lowered.chip_layers())
    return seconds / steps / neurons


def estimate(lowered: Lowered, images: int, timesteps: int, mode: str) -> Estimate:
    """Time and memory of a run, before building anything large."""
    chip = sum(int(np.prod(x.shape)) for x in lowered.chip_layers())
    probed = sum(int(np.prod(x.shape)) for x in lowered.layers if x.role != "readout")
    per_step = emulator_seconds_per_neuron_step() * chip if mode == "emulator" else 1e-3
    counter = CoreUse(lowered)
    shapes = {id(x.op): x.op.attrs.block_shape for x in lowered.chip_layers()}
    bits = sum(counter.block(x, shapes[id(x.op)] or x.shape, b, shapes)["synapse_bits"]
               for x in lowered.chip_layers()
               for b in block_grid(x.shape, shapes[id(x.op)] or x.shape))
    # nengo-loihi keeps each stored weight as a float32 and an int32 index, twice (float
    # and discretized copies): about 16 bytes per ~10 bits of synapse memory
    memory = probed * timesteps * PROBE_BYTES + bits // 10 * 16
    return Estimate(per_step * timesteps * images, int(memory), per_step)


def numpy_loihi_seconds(graph: Graph, inputs: list[np.ndarray], timesteps: int) -> float:
    """Seconds the numpy simulator's loihi mode would take for the same run, extrapolated
    from a short run of one image (just past the readout delay)."""
    from snncc.sim.spiking import readout_delay, run_spiking

    steps = min(timesteps, readout_delay(graph) + 1)
    sample = [x[:1] for x in inputs]
    start = time.perf_counter()
    run_spiking(graph, sample, mode="loihi", timesteps=steps)
    seconds = time.perf_counter() - start
    return seconds * len(inputs[0]) / len(sample[0]) * timesteps / steps


def _hardware_options(lowered: Lowered, built: Built) -> dict[str, Any]:
    from snncc.targets.loihi.allocator import placement_allocator

    chips = {built.ensembles[x.op.result.name]: x.op.attrs.chips for x in lowered.chip_layers()}
    if not all(chips.values()):
        return {}  # no placement from partition-chips: nengo-loihi's default allocator
    return {"allocator": placement_allocator(chips),
            "n_chips": 1 + max(c for placed in chips.values() for c in placed)}


def run_image(graph: Graph, lowered: Lowered, images: dict[str, np.ndarray],
              timesteps: int, target: str, bar: Any) -> dict[str, np.ndarray]:
    """Spikes per step (T × neurons, bool) of every non-readout layer, for one image."""
    built = build(graph, lowered, images)
    options = _hardware_options(lowered, built) if target == "loihi" else {}
    chunk = max(1, timesteps // 50)
    with simulator(built.network, graph.attrs.dt, target, options) as sim:
        done = 0
        while done < timesteps:
            n = min(chunk, timesteps - done)
            sim.run_steps(n)
            done += n
            if bar is not None:
                bar.update(n)
        return {name: sim.data[p] > 0 for name, p in built.probes.items()}


def readout_value(layer: Layer, lowered: Lowered, graph: Graph, spikes: dict[str, np.ndarray],
                  images: dict[str, np.ndarray]) -> np.ndarray:
    """Mean current of a readout over steps [delay, T): each projection carries the spikes
    its source emitted one step earlier (one hop, as on the chip)."""
    delay = layer.op.attrs.delay
    value = host_current(layer, graph, images)
    for p in layer.projections:
        src = lowered.source(p)
        s = spikes[src.op.result.name]
        window = s[max(delay - 1, 0):len(s) - 1]
        rate = window.mean(0) * src.op.attrs.amplitude if len(window) else 0 * s[0]
        value = value + p.apply(rate.reshape((1, *src.shape)))[0].reshape(layer.shape)
    return value


def host_ops(graph: Graph, values: dict[int, np.ndarray]) -> None:
    """Evaluate the host's output ops (sigmoid, softmax) on readout values (batch first,
    as the ops' axes count), in place."""
    for op in graph.ops:
        if isinstance(op, Sigmoid):
            values[id(op.result)] = 1 / (1 + np.exp(-values[id(op.inputs[0])]))
        elif isinstance(op, Softmax):
            z = values[id(op.inputs[0])]
            e = np.exp(z - z.max(axis=op.attrs.axis, keepdims=True))
            values[id(op.result)] = e / e.sum(axis=op.attrs.axis, keepdims=True)


def run(graph: Graph, inputs: list[np.ndarray], mode: str, timesteps: int,
        progress: bool, max_seconds: float, max_memory_gb: float) -> RunResult:
    if mode == "hardware":
        from nengo_loihi.hardware import HAS_NXSDK

        if not HAS_NXSDK:
            raise SnnccError("loihi hardware mode needs Intel's NxSDK, which is not installed "
                             "here; run with --mode emulator (nengo-loihi's emulator) or on a "
                             "machine with Loihi access")
    elif mode != "emulator":
        raise UsageError(f"loihi target has no mode '{mode}' (modes: emulator, hardware)")
    lowered = lower(graph)
    n_images = len(inputs[0])
    est = estimate(lowered, n_images, timesteps, mode)
    if est.seconds > max_seconds or est.bytes > max_memory_gb * 2**30:
        numpy_seconds = numpy_loihi_seconds(graph, inputs, timesteps)
        raise SnnccError(
            f"this run of {n_images} image(s) × {timesteps} steps is too big: {est.describe()}, "
            f"limits {max_seconds:g} s and {max_memory_gb:g} GiB. The numpy target's loihi "
            f"mode (the same integer dynamics, bit-faithful) would take about "
            f"{numpy_seconds:.0f} s: --target numpy --mode loihi. To run the emulator anyway, "
            "raise the limits with --target 'loihi{max-seconds=... max-memory-gb=...}', or use "
            "fewer images or --timesteps")
    if progress and est.seconds > 5:
        print(f"loihi {mode}: {n_images} image(s) × {timesteps} steps, {est.describe()}",
              file=sys.stderr)
    from tqdm import tqdm

    bar = tqdm(total=n_images * timesteps, desc=f"loihi {mode}", unit="step",
               disable=not progress, file=sys.stderr)
    target = "loihi" if mode == "hardware" else "sim"
    outputs: dict[int, list[np.ndarray]] = {id(v): [] for v in graph.outputs}
    counts: dict[str, float] = {}
    start = time.perf_counter()
    with bar:
        for n in range(n_images):
            images = {v.name: np.asarray(x[n], dtype=np.float64)
                      for v, x in zip(graph.inputs, inputs, strict=True)}
            spikes = run_image(graph, lowered, images, timesteps, target, bar)
            for name, s in spikes.items():
                counts[name] = counts.get(name, 0) + float(s.sum()) / n_images
            values = {id(x.op.result): readout_value(x, lowered, graph, spikes, images)[None]
                      for x in lowered.layers if x.role == "readout"}  # batch of one
            host_ops(graph, values)
            for v in graph.outputs:
                if id(v) not in values:
                    raise SnnccError(f"graph output %{v.name} is not a readout (or a sigmoid / "
                                     "softmax of one); the loihi target returns readouts only")
                outputs[id(v)].append(values[id(v)])
    seconds = time.perf_counter() - start
    neurons = {x.op.result.name: int(np.prod(x.shape)) for x in lowered.layers
               if x.role != "readout"}
    stats = {
        "mode": mode,
        "timesteps": timesteps,
        "images": n_images,
        "seconds": round(seconds, 3),
        "seconds_per_step": seconds / max(n_images * timesteps, 1),
        "estimate": {"seconds": round(est.seconds, 3), "bytes": est.bytes},
        "spikes_per_layer": counts,
        "rate_per_layer": {k: counts[k] / (neurons[k] * timesteps) for k in counts},
    }
    return RunResult([np.concatenate(outputs[id(v)]) for v in graph.outputs], stats)

