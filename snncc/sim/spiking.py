"""The numpy spiking simulator: steps a spiking graph for T timesteps, batched over images.

Modes: `ideal` (float dynamics, reset as each population says) and `loihi` (nengo-loihi's
integer dynamics on the quantized graph; an unquantized graph is quantized to 8 bits on the
fly). See `loihi_dynamics` for the neuron models. Synapse ops run the analog interpreter's
kernels on spikes: in `loihi` mode on the previous step's (one step per hop, as on the
chip), in `ideal` mode on the same step's (no transmission delay); the input
population and the readouts run on the host in float, as nengo-loihi runs the off-chip
input ensemble and decodes probes. A readout's output is its mean input current (plus
bias) over the steps after its `delay`; host ops after it (sigmoid, softmax) then run on
that mean. A graph output that is a population gives its mean rate × amplitude.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError, UsageError
from snncc.hw.loihi.formats import current_decay, membrane_floor
from snncc.hw.loihi.quantize import quantize_graph
from snncc.ir.dispatch import OpTable
from snncc.ir.graph import Graph
from snncc.ir.interp import kernels
from snncc.ir.interp.analog import ANALOG_KERNELS
from snncc.ir.location import OnnxLoc
from snncc.ir.op import Op
from snncc.ir.ops import LIF, Conv2d, ConvTranspose2d, Dense, Readout, SparseMap, SpikeInput
from snncc.ir.ops.kinds import Neurons, Population, SpikeSource, Synapse, View, through_views
from snncc.pipeline.target import RunResult
from snncc.sim.dynamics import FloatNeurons, LoihiNeurons, lif_decay

MODES = ("ideal", "loihi")
ENGINES = ("fast", "reference")


# The reference's synapse kernels: the analog kernels on spikes with the op's (scaled) weight.
REFERENCE_SYNAPSES: OpTable[Callable[[Op, np.ndarray, np.ndarray], np.ndarray]] = OpTable(
    "reference synapse kernel")


@REFERENCE_SYNAPSES.register(Conv2d)
def _conv(op: Op, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    a = op.attrs
    return kernels.conv2d(x, weight, None, a.strides, a.pads, a.dilations, a.groups)


@REFERENCE_SYNAPSES.register(ConvTranspose2d)
def _conv_transpose(op: Op, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    a = op.attrs
    return kernels.conv_transpose2d(x, weight, None, a.strides, a.pads, a.dilations,
                                    a.output_padding, a.groups)


@REFERENCE_SYNAPSES.register(Dense)
def _dense(op: Op, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return kernels.dense(x, weight)


@REFERENCE_SYNAPSES.register(SparseMap)
def _sparse(op: Op, x: np.ndarray, weight: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return kernels.sparse_map(x, weight, indices, op.attrs.out_shape)


@dataclass
class _Synapse:
    op: Op
    weight: np.ndarray  # float32; integer-valued (chip units) in loihi mode
    structure: tuple[np.ndarray, ...] = ()  # the op's `connectivity` arrays (sparse indices)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return REFERENCE_SYNAPSES[self.op](self.op, x, self.weight, *self.structure)


@dataclass
class RunPlan:
    """What the step loop does, op by op, and which ops the host runs afterwards."""

    loop: list[Op]
    host: list[Op]
    synapses: dict[int, _Synapse]
    spiking_values: set[int]  # ids of values that carry spikes (populations and views)
    scale: dict[int, float] = field(default_factory=dict)  # loihi: v_scale per population


def population_bias(graph: Graph, op: Op, scale: float = 1.0) -> np.ndarray | float:
    if op.attrs.bias is None:
        return 0.0
    b = graph.weights[op.attrs.bias].astype(np.float64) * scale
    return b.reshape(-1, *([1] * (op.result.type.rank - 2))) if b.ndim == 1 else b


def plan_run(graph: Graph, mode: str) -> RunPlan:
    loop: list[Op] = []
    host: list[Op] = []
    spiking: set[int] = set()
    synapses: dict[int, _Synapse] = {}
    feeds = {id(v) for op in graph.ops if isinstance(op, Population) for v in op.inputs}
    scale = {}
    for op in graph.ops:
        if mode == "loihi" and isinstance(op, Population) and op.attrs.v_scale:
            scale[id(op.result)] = op.attrs.v_scale
            _, u_infactor = current_decay(graph.attrs.dt, getattr(op.attrs, "tau_s", 0.0))
            for v in op.inputs:
                scale[id(v)] = op.attrs.v_scale * u_infactor
    for op in graph.ops:
        if isinstance(op, SpikeSource) or (isinstance(op, View) and id(op.inputs[0]) in spiking):
            spiking.add(id(op.result))
            loop.append(op)
        elif isinstance(op, Readout):
            loop.append(op)
        elif id(op.result) in feeds:
            if not isinstance(op, Synapse):
                raise SnnccError(f"{op.describe()} feeds a "
                                 "population but is not a synapse op; run fuse-linear and "
                                 "convert-activations first")
            w = graph.weights[op.attrs.weight].astype(np.float64)
            src = through_views(op.inputs[0]).owner
            if isinstance(src, SpikeSource):
                w = w * src.attrs.amplitude
            if id(op.result) in scale:
                w = np.rint(w * scale[id(op.result)])
            structure = tuple(graph.weights[getattr(op.attrs, name)] for name in op.connectivity)
            synapses[id(op.result)] = _Synapse(op, w.astype(np.float32), structure)
            loop.append(op)
        else:
            host.append(op)
    if not any(isinstance(op, Population) for op in loop):
        raise SnnccError(f"graph @{graph.name} has no spiking populations; run "
                         "convert-activations (and scale-rates) before a spiking mode")
    return RunPlan(loop, host, synapses, spiking, scale)


def make_neurons(graph: Graph, op: Op, shape: tuple[int, ...], mode: str, plan: RunPlan):
    a = op.attrs
    if isinstance(op, SpikeInput):
        return FloatNeurons(np.full(shape, a.v_initial, np.float32), a.v_threshold,
                            a.reset == "zero")
    dt = graph.attrs.dt
    keep = 1.0 - lif_decay(dt, a.tau) if isinstance(op, LIF) else 1.0
    if mode == "loihi":
        s = plan.scale[id(op.result)]
        keep_v = 4096 - round(lif_decay(dt, a.tau) * 4095) if isinstance(op, LIF) else 4096
        bias = np.rint(np.asarray(population_bias(graph, op, s))).astype(np.int64)
        return LoihiNeurons(np.full(shape, round(a.v_initial * s), np.int64),
                            round(a.v_threshold * s), bias, keep_v, a.refractory,
                            current_decay(dt, a.tau_s)[0], vmin=membrane_floor(a.v_min * s))
    return FloatNeurons(np.full(shape, a.v_initial, np.float32), a.v_threshold,
                        a.reset == "zero", keep, a.refractory, population_bias(graph, op),
                        np.zeros(shape, np.int32) if a.refractory else None,
                        lif_decay(dt, a.tau_s) if a.tau_s > 0 else 1.0)


@dataclass
class RunStats:
    spikes: dict[str, int] = field(default_factory=dict)
    overflows: int = 0
    frame_spikes: dict[int, dict[str, int]] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)  # fast engine: synapse runs per path
    count_from: Mapping[str, int] = field(default_factory=dict)  # population → first step
    counts: dict[str, list[np.ndarray]] = field(default_factory=dict)  # per chunk


def run_host_ops(graph: Graph, ops: list[Op], env: dict[int, np.ndarray]) -> None:
    """Run host (analog) ops whose inputs are known, in order, into `env`."""
    for op in ops:
        if id(op.result) not in env and all(id(v) in env for v in op.inputs):
            env[id(op.result)] = ANALOG_KERNELS[op].run(
                op, [env[id(v)] for v in op.inputs], graph.weights)


def _decode(plan: RunPlan, sums: dict[int, np.ndarray], delays: dict[int, int],
            done: int) -> dict[int, np.ndarray]:
    """Readouts' mean current and populations' mean rate × amplitude after `done` steps."""
    out = {}
    for op in plan.loop:
        key = id(op.result)
        if isinstance(op, Readout):
            out[key] = (sums[key] / (done - delays[key])).astype(np.float32)
        elif isinstance(op, SpikeSource):
            out[key] = (sums[key] * (op.attrs.amplitude / done)).astype(np.float32)
    return out


def _simulate(graph: Graph, plan: RunPlan, env: dict[int, np.ndarray], steps: int, mode: str,
              stats: RunStats, tick: Callable[[int], None],
              frames: dict[int, list[np.ndarray]]) -> None:
    """Run one chunk of images; add decoded values (readouts, populations) to `env`, and the
    graph outputs decoded after t steps to `frames[t]` for every t asked for."""
    n = env[id(graph.inputs[0])].shape[0]
    state: dict[int, object] = {}
    sums: dict[int, np.ndarray] = {}
    prev: dict[int, np.ndarray] = {}
    const: dict[int, np.ndarray] = {}
    for op in plan.loop:
        shape = (n, *op.result.type.shape[1:])
        if isinstance(op, (SpikeSource, Population)):
            if isinstance(op, Readout):
                integer = mode == "loihi" and id(op.result) in plan.scale
                if integer:
                    bias = population_bias(graph, op, plan.scale[id(op.result)])
                    state[id(op.result)] = LoihiNeurons(
                        np.zeros(shape, np.int64), 0,
                        np.rint(np.asarray(bias)).astype(np.int64), 4096)
                else:
                    state[id(op.result)] = population_bias(graph, op)
            else:
                state[id(op.result)] = make_neurons(graph, op, shape, mode, plan)
            sums[id(op.result)] = np.zeros(shape, np.float64)
            if isinstance(op, SpikeSource):
                prev[id(op.result)] = np.zeros(shape, bool)
        elif id(op.result) in plan.synapses and id(op.inputs[0]) in env:
            const[id(op.result)] = plan.synapses[id(op.result)](env[id(op.inputs[0])])
    for op in plan.loop:
        if isinstance(op, View):
            prev[id(op.result)] = ANALOG_KERNELS[op].run(op, [prev[id(op.inputs[0])]],
                                                               graph.weights)
    delays = {id(op.result): op.attrs.delay for op in plan.loop if isinstance(op, Readout)}
    counted = {id(op.result): (op.result.name, stats.count_from[op.result.name])
               for op in plan.loop if op.result.name in stats.count_from}
    window = {key: np.zeros(sums[key].shape, np.float32) for key in counted}
    for t in range(steps):
        cur: dict[int, np.ndarray] = {}
        currents: dict[int, np.ndarray | float] = {}
        for op in plan.loop:
            key = id(op.result)
            if key in plan.synapses:
                if key in const:
                    currents[key] = const[key]
                else:
                    src = (prev if mode == "loihi" else cur)[id(op.inputs[0])]
                    currents[key] = plan.synapses[key](src) if src.any() else 0.0
            elif isinstance(op, View):
                cur[key] = ANALOG_KERNELS[op].run(op, [cur[id(op.inputs[0])]],
                                                        graph.weights)
            elif isinstance(op, SpikeInput):
                cur[key] = state[key].step(env[id(op.inputs[0])])
                sums[key] += cur[key]
            else:
                q = sum((currents[id(v)] for v in op.inputs), 0.0)
                neurons = state[key]
                if isinstance(op, Readout):
                    if t < delays[key]:
                        continue
                    if isinstance(neurons, LoihiNeurons):
                        sums[key] += neurons.input(q) / plan.scale[key]
                    else:
                        sums[key] += q + neurons
                else:
                    cur[key] = neurons.step(q)
                    sums[key] += cur[key]
        for key, (_, start) in counted.items():
            if t >= start:
                window[key] += cur[key]
        prev = cur
        tick(1)
        if t + 1 in frames:
            snapshot = {id(graph.inputs[0]): env[id(graph.inputs[0])],
                        **_decode(plan, sums, delays, t + 1)}
            run_host_ops(graph, plan.host, snapshot)
            frames[t + 1].append([snapshot[id(v)] for v in graph.outputs])
            counts = stats.frame_spikes.setdefault(t + 1, {})
            for op in plan.loop:
                if isinstance(op, SpikeSource):
                    name = op.result.name
                    counts[name] = counts.get(name, 0) + int(sums[id(op.result)].sum())
    env.update(_decode(plan, sums, delays, steps))
    for key, (name, _) in counted.items():
        stats.counts.setdefault(name, []).append(window[key])
    for op in plan.loop:
        key = id(op.result)
        if isinstance(op, SpikeSource):
            stats.spikes[op.result.name] = (stats.spikes.get(op.result.name, 0)
                                            + int(sums[key].sum()))
        if isinstance(state.get(key), LoihiNeurons):
            stats.overflows += state[key].overflows


def _check_inputs(graph: Graph, inputs: Sequence[np.ndarray]) -> np.ndarray:
    if len(graph.inputs) != 1 or len(inputs) != 1:
        raise SnnccError(f"the spiking simulator runs single-input graphs with one input "
                         f"array; graph @{graph.name} has {len(graph.inputs)}, got {len(inputs)}")
    x = np.asarray(inputs[0], np.float32)
    expected = graph.inputs[0].type
    if x.ndim != expected.rank or x.shape[1:] != expected.shape[1:] or not len(x):
        raise SnnccError(f"input of shape {list(x.shape)} does not fit the model input "
                         f"{expected}; expected N×{'×'.join(map(str, expected.shape[1:]))}")
    return x


def _layer_stats(graph: Graph, stats: RunStats, images: int, steps: int) -> dict[str, object]:
    layers: dict[str, dict[str, object]] = {}
    total_spikes, total_neurons = 0, 0
    for op in graph.ops:
        if not isinstance(op, SpikeSource):
            continue
        neurons = int(np.prod(op.result.type.shape[1:]))
        count = stats.spikes.get(op.result.name, 0)
        entry: dict[str, object] = {
            "kind": op.name, "neurons": neurons, "spikes": count,
            "spikes_per_image": count / images,
            "rate_hz": count / (images * neurons * steps * graph.attrs.dt)}
        if isinstance(op.loc, OnnxLoc):
            entry["onnx_node"] = op.loc.node
        layers[op.result.name] = entry
        if not isinstance(op, SpikeInput):
            total_spikes += count
            total_neurons += neurons
    return {"layers": layers,
            "mean_rate_hz": total_spikes / max(images * total_neurons * steps * graph.attrs.dt,
                                               1e-30),
            "spikes_per_image": total_spikes / images}


def readout_delay(graph: Graph) -> int:
    """Steps before the readouts start integrating (the longest; 0 without readouts): a
    run, and every frame of it, must be longer."""
    return max((op.attrs.delay for op in graph.ops_of(Readout)), default=0)


def _advance(bar: Any, images: int, steps: int) -> None:
    bar.update(steps * images)


def run_spiking(graph: Graph, inputs: Sequence[np.ndarray], mode: str = "ideal",
                timesteps: int | None = None, batch_size: int = 16,
                progress: bool = False, frames: Sequence[int] = (),
                engine: str = "fast",
                count_from: Mapping[str, int] | None = None) -> RunResult:
    """Simulate `graph` on N images for `timesteps` steps (default: the graph's own).

    `engine`: "fast" (`snncc.sim.engine`, time-batched, the default) or "reference" (this
    module's step-by-step loop, the readable definition the fast one is tested against).

    `frames` lists timesteps at which to decode the outputs too (`RunResult.frames`, with
    the spike counts up to then in `RunResult.frame_stats`); each must lie past the readout
    delay and within the run. `count_from` (population name → step) asks for every
    neuron's spike count from that step to the end, in `stats["counts"][name]` (N×shape).
    """
    if mode not in MODES:
        raise UsageError(f"spiking mode '{mode}' is unknown (modes: {', '.join(MODES)})")
    if engine not in ENGINES:
        raise UsageError(f"spiking engine '{engine}' is unknown (engines: "
                         f"{', '.join(ENGINES)})")
    steps = graph.attrs.timesteps if timesteps is None else timesteps
    if steps < 1 or batch_size < 1:
        raise UsageError(f"timesteps and batch size must be ≥ 1, got {steps} and {batch_size}")
    delay = readout_delay(graph)
    if steps <= delay:
        raise UsageError(f"{steps} timesteps do not reach past the readout delay of "
                         f"{delay} steps (one step per layer plus the lag of synaptic "
                         "filters); use more")
    first = delay + 1
    bad = [t for t in frames if not first <= t <= steps]
    if bad:
        raise UsageError(f"frame at step {bad[0]} lies outside the run: frames must lie in "
                         f"{first}..{steps} (after the readout delay)")
    x = _check_inputs(graph, inputs)
    on_the_fly = mode == "loihi" and any(
        op.attrs.v_scale is None for op in graph.ops if isinstance(op, Neurons))
    if on_the_fly:
        graph = copy.deepcopy(graph)
        quantize_graph(graph, bits=8)
    plan = plan_run(graph, mode)
    simulate = _simulate
    if engine == "fast":
        from snncc.sim import engine as fast

        simulate = fast.simulate
        batch_size = min(batch_size, fast.images_per_pass(plan))
    stats = RunStats(count_from=dict(count_from or {}))
    outputs: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    per_chunk: dict[int, list[list[np.ndarray]]] = {t: [] for t in frames}
    from tqdm import tqdm

    chunks = range(0, len(x), batch_size)
    # the bar counts image·steps: a run of N images for T steps is N × T of them
    with tqdm(total=len(x) * steps, disable=not progress, unit="image·step",
              unit_scale=True, desc=f"spiking ({mode}, {len(x)} images × {steps} steps)",
              leave=False) as bar:
        for start in chunks:
            batch = x[start:start + batch_size]
            env = {id(graph.inputs[0]): batch}
            run_host_ops(graph, plan.host, env)
            simulate(graph, plan, env, steps, mode, stats,
                     functools.partial(_advance, bar, len(batch)), per_chunk)
            run_host_ops(graph, plan.host, env)
            for k, v in enumerate(graph.outputs):
                outputs[k].append(env[id(v)])
    result_stats: dict[str, object] = {"mode": mode, "timesteps": steps, "dt": graph.attrs.dt,
                                       "images": len(x), **_layer_stats(graph, stats, len(x),
                                                                        steps),
                                       "engine": engine}
    if stats.paths:
        result_stats["synapse_paths"] = stats.paths
    if stats.counts:
        result_stats["counts"] = {name: np.concatenate(c) for name, c in stats.counts.items()}
    if mode == "loihi":
        result_stats["overflows"] = stats.overflows
        result_stats["quantized_on_the_fly"] = on_the_fly
    decoded = {t: [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
               for t, chunks in per_chunk.items()}
    frame_stats = {t: _layer_stats(graph, RunStats(spikes=counts), len(x), t)
                   for t, counts in stats.frame_spikes.items()}
    return RunResult([np.concatenate(parts) for parts in outputs], result_stats, decoded,
                     frame_stats)
