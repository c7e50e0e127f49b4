"""The time-batched spiking engine: the whole run of one population before the next.

The network is feed-forward and every hop takes one step (or none, in `ideal` mode), so a
population's spikes for a span of steps depend only on its sources' spikes for the same
span (and one step earlier): the engine runs the populations in graph order, each over a
chunk of steps at once. Per population and chunk:

1. every synapse op into it runs once over all (steps × images) spike frames of its source
   (`snncc.sim.synapses`: one big matrix product, or a scatter of the events when few
   inputs are active), summed into one input buffer; a synapse op fed by a host value (not
   spikes) is computed once per batch, as the reference does;
2. one fused, compiled scan updates the neurons over the chunk's steps
   (`snncc.sim.neurons_fast`), writing its spikes and spike counts.

The input buffer is all zeros between populations: the scans zero what they read.
Spike buffers hold a chunk's steps plus the step before it (frame 0), so that `loihi` mode
(synapses act on the previous step's spikes) reads frames [0, L) and `ideal` mode (the same
step's) reads [1, L]. Chunks end at every requested frame, where the outputs are decoded as
in the reference. Values are stored channels last (see `snncc.sim.synapses`).

Memory: chunk buffers (spikes of every spiking value, the largest population's input) are
sized to `MEMORY_BUDGET`: the steps per chunk shrink, and the images per pass too when one
step of a whole batch does not fit; the steps per chunk also keep the input buffer within
`CHUNK_BYTES`, so that it stays in the caches between the synapses and the neuron scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from snncc.ir.graph import Graph, Value
from snncc.ir.interp.analog import ANALOG_KERNELS
from snncc.ir.op import Op
from snncc.ir.ops import Readout, SpikeInput
from snncc.ir.ops.kinds import SpikeSource, View
from snncc.sim import neurons_fast as nf
from snncc.sim.dynamics import FloatNeurons, LoihiNeurons
from snncc.sim.spiking import RunPlan, RunStats, make_neurons, population_bias, run_host_ops
from snncc.sim.synapses import (
    SYNAPSES,
    Synapse,
    channels_last,
    to_channels_first,
    to_channels_last,
)

MEMORY_BUDGET = 1 << 30  # bytes of chunk buffers (spikes, inputs) per pass
CHUNK_BYTES = 32 << 20  # a chunk's input buffer: small enough to stay in the caches


def _per_image(x: np.ndarray | float, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A constant broadcast over one image's canonical `shape`, flattened channels last."""
    full = np.broadcast_to(np.asarray(x, dtype), shape)
    return np.ascontiguousarray(to_channels_last(full[None])[0], dtype).reshape(-1)


def _float_bias(bias: np.ndarray) -> np.ndarray:
    """A float population's bias as its scan adds it: float32 where every value is one
    (biases made of float32 weights), else float64. The reference adds it in float64 and
    rounds to float32 (numpy's `v += bias`); for float32 v and bias that equals the float32
    sum exactly (rounding twice through float64 is innocuous for sums of float32s, as
    53 ≥ 2·24 + 2 bits), and float32 adds vectorize twice as wide."""
    narrow = bias.astype(np.float32)
    return narrow if np.array_equal(narrow.astype(np.float64), bias) else bias


def _frames_last(x: np.ndarray) -> np.ndarray:
    """Canonical (N, ...) rows → contiguous channels-last rows."""
    return np.ascontiguousarray(to_channels_last(x))


@dataclass
class _Node:
    """A spiking population or readout: its kernel arguments and state for one pass."""

    op: Op
    images: int
    n: int  # neurons per image
    kind: str  # "float", "loihi", "float_readout", "loihi_readout"
    params: tuple = ()
    state: dict[str, np.ndarray] = field(default_factory=dict)
    overflows: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))

    def scan(self, q: np.ndarray, spikes: np.ndarray | None, first: int) -> None:
        """Run the chunk's steps; `first`: the chunk's first step a readout integrates."""
        s = self.state
        if self.kind == "float":
            nf.float_scan(q, spikes, s["v"], s["current"], s["ref"], s["counts"], *self.params)
        elif self.kind == "loihi":
            nf.loihi_scan(q, spikes, s["v"], s["current"], s["ref"], s["counts"], *self.params,
                          self.overflows)
        elif self.kind == "float_readout":
            nf.float_readout(q, first, s["sums"], *self.params)
        else:
            nf.loihi_readout(q, first, s["sums"], s["current"], *self.params, self.overflows)


def _node(graph: Graph, op: Op, images: int, mode: str, plan: RunPlan) -> _Node:
    """State and parameters as the reference builds them (`make_neurons`), in kernel form."""
    shape = op.result.type.shape[1:]
    n = int(np.prod(shape))
    zeros = np.zeros((images, n), np.int64)
    if isinstance(op, Readout):
        if mode == "loihi" and id(op.result) in plan.scale:
            s = plan.scale[id(op.result)]
            bias = np.rint(np.asarray(population_bias(graph, op, s))).astype(np.int64)
            return _Node(op, images, n, "loihi_readout",
                         (_per_image(bias, shape, np.int64), s),
                         {"sums": np.zeros((images, n)), "current": zeros},
                         np.zeros(images, np.int64))
        return _Node(op, images, n, "float_readout",
                     (_per_image(population_bias(graph, op), shape, np.float64),),
                     {"sums": np.zeros((images, n))})
    neurons = make_neurons(graph, op, (images, *shape), mode, plan)
    v = _frames_last(neurons.v).reshape(images, n)
    counts = np.zeros((images, n), np.int32)
    ref = np.zeros((images, n) if neurons.refractory else (1, 0), np.int32)
    if isinstance(neurons, LoihiNeurons):
        params = (_per_image(neurons.bias, shape, np.int64), neurons.vth, neurons.keep_v,
                  2**12 - 1 - neurons.decay_u, neurons.refractory, neurons.vmin)
        blocks = images * -(-n // nf.BLOCK)
        return _Node(op, images, n, "loihi", params,
                     {"v": v.astype(np.int64), "current": zeros, "ref": ref,
                      "counts": counts}, np.zeros(blocks, np.int64))
    assert isinstance(neurons, FloatNeurons)
    d = neurons.filter_d
    params = (_float_bias(_per_image(neurons.bias, shape, np.float64)),
              np.float32(neurons.threshold),
              float(neurons.threshold), bool(neurons.reset_to_zero), np.float32(neurons.keep),
              np.float32(d), np.float32(1.0 - d), d != 1.0, int(neurons.refractory))
    current = np.zeros((images, n) if d != 1.0 else (1, 0), np.float32)
    return _Node(op, images, n, "float", params,
                 {"v": v.astype(np.float32), "current": current, "ref": ref,
                  "counts": counts})


@dataclass
class _Pass:
    """One pass over some images: buffers, nodes and the synapses' chosen paths."""

    graph: Graph
    plan: RunPlan
    mode: str
    images: int
    chunk: int  # steps per chunk
    nodes: dict[int, _Node] = field(default_factory=dict)
    spikes: dict[int, np.ndarray] = field(default_factory=dict)  # (chunk + 1, images, n)
    const: dict[int, np.ndarray] = field(default_factory=dict)
    synapses: dict[int, Synapse] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    q: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _values(plan: RunPlan) -> list[Op]:
    return [op for op in plan.loop if isinstance(op, (SpikeSource, View, Readout))]


def step_bytes(plan: RunPlan) -> int:
    """Chunk-buffer bytes per image and step: every spiking value's spikes, plus the
    largest population's float32 input."""
    sizes = [int(np.prod(op.result.type.shape[1:])) for op in _values(plan)]
    spiking = [s for op, s in zip(_values(plan), sizes, strict=True)
               if id(op.result) in plan.spiking_values]
    return sum(spiking) + 4 * max(sizes)


def _setup(graph: Graph, plan: RunPlan, env: dict[int, np.ndarray], mode: str, chunk: int
           ) -> _Pass:
    images = env[id(graph.inputs[0])].shape[0]
    p = _Pass(graph, plan, mode, images, chunk)
    biggest = 0
    for op in plan.loop:
        key = id(op.result)
        n = int(np.prod(op.result.type.shape[1:]))
        if isinstance(op, (SpikeSource, Readout)):
            p.nodes[key] = _node(graph, op, images, mode, plan)
            biggest = max(biggest, n)
        if key in plan.spiking_values:
            p.spikes[key] = np.zeros((chunk + 1, images, n), np.uint8)
        elif key in plan.synapses:
            if id(op.inputs[0]) in env:
                p.const[key] = _frames_last(plan.synapses[key](env[id(op.inputs[0])]))
            else:
                syn = plan.synapses[key]
                p.synapses[key] = SYNAPSES[op](op, syn.weight, *syn.structure)
    p.q = np.zeros(chunk * images * biggest, np.float32)
    return p


def _frames(p: _Pass, value: Value, lo: int, hi: int) -> np.ndarray:
    """Frames [lo, hi) of a spiking value as (frames × images, *channels-last shape)."""
    return p.spikes[id(value)][lo:hi].reshape(-1, *channels_last(value.type.shape[1:]))


def _run_chunk(p: _Pass, env: dict[int, np.ndarray], t0: int, steps: int) -> None:
    """Steps [t0, t0 + steps) of every population, in graph order."""
    lag = 0 if p.mode == "ideal" else 1
    for op in p.plan.loop:
        key = id(op.result)
        if isinstance(op, View):
            src = to_channels_first(_frames(p, op.inputs[0], 0, steps + 1))
            out = ANALOG_KERNELS[type(op)].run(op, [src], p.graph.weights)
            p.spikes[key][:steps + 1] = _frames_last(out).reshape(steps + 1, p.images, -1)
            continue
        if not isinstance(op, (SpikeSource, Readout)):
            continue
        node = p.nodes[key]
        spikes = p.spikes[key][1:steps + 1] if key in p.spikes else None
        q = p.q[:steps * p.images * node.n].reshape(steps, p.images, node.n)  # zeros
        if isinstance(op, SpikeInput):  # the same image every step
            q[:] = _frames_last(env[id(op.inputs[0])]).reshape(1, p.images, node.n)
            node.scan(q, spikes, 0)
            continue
        shape = channels_last(op.result.type.shape[1:])
        for v in op.inputs:
            if id(v) in p.const:
                q += p.const[id(v)].reshape(1, p.images, node.n)
                continue
            syn = p.synapses[id(v)]
            frames = _frames(p, syn.op.inputs[0], 1 - lag, steps + 1 - lag)
            taken = syn.run(frames, q.reshape(-1, *shape))
            p.paths[taken] = p.paths.get(taken, 0) + 1
        first = min(max(op.attrs.delay - t0, 0), steps) if isinstance(op, Readout) else 0
        node.scan(q, spikes, first)
    for buf in p.spikes.values():
        buf[0] = buf[steps]


def _decode(p: _Pass, done: int) -> dict[int, np.ndarray]:
    """As the reference's `_decode`: readouts' mean current, populations' mean rate ×
    amplitude after `done` steps, canonical layout."""
    out = {}
    for key, node in p.nodes.items():
        shape = channels_last(node.op.result.type.shape[1:])
        if isinstance(node.op, Readout):
            value = node.state["sums"] / (done - node.op.attrs.delay)
        else:
            value = node.state["counts"] * (node.op.attrs.amplitude / done)
        out[key] = np.ascontiguousarray(to_channels_first(
            value.astype(np.float32).reshape(node.images, *shape)))
    return out


def _spike_counts(p: _Pass) -> dict[str, int]:
    return {n.op.result.name: int(n.state["counts"].sum()) for n in p.nodes.values()
            if isinstance(n.op, SpikeSource)}


def _boundaries(steps: int, chunk: int, frames: Iterable[int]) -> list[int]:
    """Chunk ends: every `chunk` steps, every frame (or count-window start) and the last
    step."""
    return sorted({*range(chunk, steps, chunk), *frames, steps})


def images_per_pass(plan: RunPlan, budget: int | None = None) -> int:
    """How many images one pass may hold: one step of each must fit the budget (default
    `MEMORY_BUDGET`)."""
    return max(1, (MEMORY_BUDGET if budget is None else budget) // step_bytes(plan))


def simulate(graph: Graph, plan: RunPlan, env: dict[int, np.ndarray], steps: int, mode: str,
             stats: RunStats, tick: Callable[[int], None],
             frames: dict[int, list[list[np.ndarray]]], budget: int | None = None) -> None:
    """The reference's `_simulate`, time-batched: run the images of `env` for `steps` steps
    (at most `images_per_pass`), add the decoded values to `env` and the outputs after t
    steps to `frames[t]`. Each synapse op picks its path per chunk (`Synapse.run`)."""
    budget = MEMORY_BUDGET if budget is None else budget
    images = len(env[id(graph.inputs[0])])
    biggest = max(int(np.prod(op.result.type.shape[1:])) for op in _values(plan))
    chunk = max(1, min(steps, budget // (step_bytes(plan) * images),
                       CHUNK_BYTES // (4 * biggest * images)))
    p = _setup(graph, plan, env, mode, chunk)
    counted = {key: (node, stats.count_from[node.op.result.name])
               for key, node in p.nodes.items() if node.op.result.name in stats.count_from}
    before = {key: np.zeros_like(node.state["counts"]) for key, (node, _) in counted.items()}
    starts = {start for _, start in counted.values() if 0 < start < steps}
    done = 0
    for end in _boundaries(steps, chunk, [*frames, *starts]):
        _run_chunk(p, env, done, end - done)
        tick(end - done)
        done = end
        for key, (node, start) in counted.items():
            if end == start:  # the count window opens after `start` steps
                before[key] = node.state["counts"].copy()
        if end in frames:
            snapshot = {id(graph.inputs[0]): env[id(graph.inputs[0])], **_decode(p, end)}
            run_host_ops(graph, plan.host, snapshot)
            frames[end].append([snapshot[id(v)] for v in graph.outputs])
            counts = stats.frame_spikes.setdefault(end, {})
            for name, c in _spike_counts(p).items():
                counts[name] = counts.get(name, 0) + c
    for key, (node, start) in counted.items():
        window = (node.state["counts"] - before[key] if start < steps
                  else np.zeros_like(before[key])).astype(np.float32)
        shape = channels_last(node.op.result.type.shape[1:])
        stats.counts.setdefault(node.op.result.name, []).append(np.ascontiguousarray(
            to_channels_first(window.reshape(node.images, *shape))))
    for name, c in _spike_counts(p).items():
        stats.spikes[name] = stats.spikes.get(name, 0) + c
    stats.overflows += int(sum(n.overflows.sum() for n in p.nodes.values()))
    for taken, count in p.paths.items():
        stats.paths[taken] = stats.paths.get(taken, 0) + count
    env.update(_decode(p, steps))
