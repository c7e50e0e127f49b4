"""convert-activations: ReLUs become spiking populations, the last layer a readout.

After `fuse-linear` every ReLU reads a sum of synapse ops, each applied to one source
population. This pass turns each ReLU into a population (`neuron.if` by default, or
`neuron.lif`) whose inputs are those synapse ops:

- a conv over a concat becomes one conv per concat part (kernel split along its input
  channels), all into the same population;
- an add of branches becomes one projection per branch into the same population;
- a population fed straight from another population gets an identity 1x1 projection;
- synapse biases move into the population's bias (they are summed).

The linear layer before the host activation (sigmoid / softmax) or before a graph output
becomes `neuron.readout`: a non-spiking population whose mean input current over the run
is the ANN's logit; the `act.*` op stays after it and runs on the host. Its `delay` is the
number of spiking hops on the longest path from the input (each hop costs one step, as on
Loihi) plus the lag of the synaptic filters on it (τ_s / dt each); the host leaves those
steps out of the mean (and `readout-settle` more, to leave out the layers' transient).

The image enters as spikes by default (`input=spikes`): a `neuron.input` population on the
host integrates each pixel value and spikes, as nengo-loihi feeds the first on-chip
convolution from an off-chip ensemble's neurons. `input=current` feeds the pixel values as
a constant current into the first layer instead (exact input, no encoding noise; a
simulator-only option, since the chip takes spikes).

Thresholds are `threshold` (scale-rates then sets the rates); `v-initial` starts every
membrane at that fraction of the threshold. `tau-s` is the synaptic current filter of
every population (seconds; default 0 with `reset=subtract` and 3 ms with `reset=zero`):
a neuron that resets to zero and whose membrane cannot go below zero (Loihi) needs its
excitatory and inhibitory input spikes merged into one current first, or it fires on
every excitatory burst and throws away the overshoot of each large input spike.
`v-min` (a fraction of the threshold, ≤ 0) lowers that floor instead (Loihi's `vmin`):
the membrane keeps inhibition itself, so no filter (and none of its lag) is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Value
from snncc.ir.op import Op
from snncc.ir.ops import (
    IF,
    LIF,
    Add,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Readout,
    Relu,
    SpikeInput,
)
from snncc.ir.ops.kinds import SpikeSource, Synapse, View, through_views
from snncc.ir.properties import LINEAR_FUSED, SPIKING
from snncc.passes.fuse_linear import is_source, restore_names
from snncc.passes.remove_dead_ops import remove_dead_ops
from snncc.passes.support.linear_maps import ungroup
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext
from snncc.sim.arrival import arrival_steps

DEFAULT_TAU_S = 0.003  # seconds; see docs/conversion.md ("Why loihi mode is the hard part")


def _fail(op: Op, what: str) -> SnnccError:
    return SnnccError(f"convert-activations: {op.describe()} "
                      f"{what}; run fuse-linear before convert-activations so every population "
                      "reads synapse ops applied to populations")


def _identity_projection(graph: Graph, src: Value, before: Op) -> Value:
    n = src.type.shape[1]
    if src.type.rank == 2:
        ref = graph.weights.add(f"{src.name}.identity", np.eye(n, dtype=np.float32))
        return graph.add(Dense, [src], Dense.Attrs(ref), name=f"{src.name}_id", before=before)
    ref = graph.weights.add(f"{src.name}.identity", np.eye(n, dtype=np.float32)[:, :, None, None])
    return graph.add(Conv2d, [src], Conv2d.Attrs(ref), name=f"{src.name}_id", before=before)


def _split(graph: Graph, op: Op, before: Op | None, wanted: list[tuple[Value, str]]
           ) -> list[Value]:
    """A synapse op as bias-free ops, one per source (split over a concat's parts)."""
    src = op.inputs[0]
    attrs = replace(op.attrs, bias=None)
    if is_source(src):
        new = graph.add(type(op), [src], attrs, name=op.result.name, loc=op.loc, before=before)
        wanted.append((new, op.result.name))
        return [new]
    cat = src.owner
    if not isinstance(cat, Concat) or not all(is_source(p) for p in cat.inputs):
        raise _fail(op, "reads the result of another linear op")
    w = graph.weights[op.attrs.weight]
    if isinstance(op, Conv2d) and op.attrs.groups > 1:
        w, attrs = ungroup(w, op.attrs.groups), replace(attrs, groups=1)
    elif isinstance(op, ConvTranspose2d) and op.attrs.groups > 1:
        raise _fail(op, "is a grouped transposed convolution over a concat")
    out, start = [], 0
    for i, part in enumerate(cat.inputs):
        stop = start + part.type.shape[1]
        piece = w[start:stop] if isinstance(op, ConvTranspose2d) else w[:, start:stop]
        ref = graph.weights.add(f"{op.attrs.weight.name}.part{i}", piece)
        out.append(graph.add(type(op), [part], replace(attrs, weight=ref),
                             name=f"{op.result.name}_{i}", loc=op.loc, before=before))
        start = stop
    return out


def _projections(graph: Graph, z: Value, before: Op | None, wanted: list[tuple[Value, str]]
                 ) -> tuple[list[Value], np.ndarray | None]:
    """Bias-free synapse ops into a new population, and their summed bias."""
    parts = z.owner.inputs if isinstance(z.owner, Add) else [z]
    shape = z.type.shape[1:]
    values: list[Value] = []
    bias = np.zeros(shape)
    has_bias = False
    for u in parts:
        if is_source(u):
            values.append(_identity_projection(graph, u, before))
            continue
        op = u.owner
        if not isinstance(op, Synapse):
            raise _fail(op, "feeds a population but is not a synapse op")
        values += _split(graph, op, before, wanted)
        if op.attrs.bias is not None:
            b = graph.weights[op.attrs.bias]
            bias = bias + (b.reshape(-1, *([1] * (len(shape) - 1))) if b.ndim == 1 else b)
            has_bias = True
    if not has_bias:
        return values, None
    flat = bias.reshape(shape[0], -1)
    return values, (flat[:, 0] if np.all(flat == flat[:, :1]) else bias).astype(np.float32)


@dataclass(frozen=True)
class ConvertActivations(Pass):
    name = "convert-activations"
    summary = "ReLUs → spiking populations (IF/LIF), last linear layer → readout"
    requires = frozenset({LINEAR_FUSED})
    establishes = frozenset({SPIKING})

    neuron: Literal["if", "lif"] = "if"
    reset: Literal["subtract", "zero"] = "subtract"
    threshold: float = 1.0
    refractory: int = 0
    tau: float = 0.02
    input: Literal["spikes", "current"] = "spikes"
    v_initial: float = 0.0
    tau_s: float | None = None
    v_min: float = 0.0
    readout_settle: int = 0

    def __post_init__(self) -> None:
        check(self.threshold > 0, f"convert-activations: threshold must be > 0, got "
              f"{self.threshold}")
        check(self.refractory >= 0, f"convert-activations: refractory must be ≥ 0 steps, got "
              f"{self.refractory}")
        check(self.tau > 0, f"convert-activations: tau must be > 0 seconds, got {self.tau}")
        check(0 <= self.v_initial < 1, "convert-activations: v-initial is a fraction of the "
              f"threshold in [0, 1), got {self.v_initial}")
        check(self.tau_s is None or self.tau_s >= 0, "convert-activations: tau-s must be ≥ 0 "
              f"seconds, got {self.tau_s}")
        check(self.v_min <= 0, "convert-activations: v-min is a fraction of the threshold "
              f"≤ 0, got {self.v_min}")
        check(self.readout_settle >= 0, "convert-activations: readout-settle must be ≥ 0 "
              f"steps, got {self.readout_settle}")

    @property
    def synapse(self) -> float:
        """τ_s in seconds: as given, else 0 with reset=subtract and DEFAULT_TAU_S with
        reset=zero."""
        if self.tau_s is not None:
            return self.tau_s
        return DEFAULT_TAU_S if self.reset == "zero" else 0.0

    def _population(self, graph: Graph, relu: Op, wanted: list[tuple[Value, str]]) -> Value:
        inputs, bias = _projections(graph, relu.inputs[0], relu, wanted)
        bref = None if bias is None else graph.weights.add(f"{relu.result.name}.bias", bias)
        common = dict(v_threshold=self.threshold, reset=self.reset, refractory=self.refractory,
                      bias=bref, v_initial=self.v_initial * self.threshold, tau_s=self.synapse,
                      v_min=self.v_min * self.threshold)
        if self.neuron == "lif":
            return graph.add(LIF, inputs, LIF.Attrs(tau=self.tau, **common),
                             name=relu.result.name, loc=relu.loc, before=relu)
        return graph.add(IF, inputs, IF.Attrs(**common), name=relu.result.name, loc=relu.loc,
                         before=relu)

    def _readout(self, graph: Graph, z: Value, before: Op | None,
                 wanted: list[tuple[Value, str]]) -> Value:
        anchor = before or z.owner
        assert anchor is not None
        inputs, bias = _projections(graph, z, before, wanted)
        bref = None if bias is None else graph.weights.add(f"{z.name}.bias", bias)
        return graph.add(Readout, inputs, Readout.Attrs(bias=bref), name=f"{z.name}_readout",
                         loc=(z.owner.loc if z.owner is not None else anchor.loc), before=before)

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        if len(graph.inputs) != 1:
            raise SnnccError(f"convert-activations: graph @{graph.name} has "
                             f"{len(graph.inputs)} inputs; only single-input models convert")
        populations, readouts = 0, 0
        wanted: list[tuple[Value, str]] = []
        for op in list(graph.ops):
            if isinstance(op, Relu):
                pop = self._population(graph, op, wanted)
                graph.replace_uses(op.result, pop)
                graph.erase(op)
                wanted.append((pop, op.result.name))
                populations += 1
        for op in graph.ops_of(View):  # a view of a population now relabels spikes
            op.result.type = op.infer([v.type for v in op.inputs], op.attrs, graph.weights)
        # host ops (sigmoid, softmax) and graph outputs read currents or populations
        feeds_host = (Synapse, Add, IF, LIF)
        for op in list(graph.ops):
            if isinstance(op, (Synapse, Add, Concat, SpikeSource, Readout, View)):
                continue
            for z in dict.fromkeys(op.inputs):
                if isinstance(z.owner, feeds_host):
                    graph.replace_uses(z, self._readout(graph, z, op, wanted))
                    readouts += 1
        for z in dict.fromkeys(graph.outputs):
            if isinstance(z.owner, feeds_host):
                graph.replace_uses(z, self._readout(graph, z, None, wanted))
                readouts += 1
        remove_dead_ops(graph)
        restore_names(graph, wanted)
        x = graph.inputs[0]
        if self.input == "spikes":
            first = graph.ops[0]
            spikes = graph.add(SpikeInput, [x], SpikeInput.Attrs(), name=f"{x.name}_spikes",
                               before=first)
            for op in graph.ops:
                if op is not spikes.owner:
                    op.inputs = [spikes if v is x else v for v in op.inputs]
        self._check_spiking(graph)
        hops = arrival_steps(graph)
        for op in graph.ops_of(Readout):
            op.replace_attrs(delay=max(hops[id(v)] for v in op.inputs) + self.readout_settle)
        ctx.record(self.name, populations=populations, readouts=readouts, neuron=self.neuron,
                   reset=self.reset, input=self.input,
                   readout_delays={op.result.name: op.attrs.delay
                                   for op in graph.ops_of(Readout)})
        return populations + readouts > 0

    @staticmethod
    def _check_spiking(graph: Graph) -> None:
        """Every synapse op must read a population (or, with input=current, the input)."""
        for op in graph.ops:
            if isinstance(op, Synapse):
                src = through_views(op.inputs[0])
                if src.owner is not None and not isinstance(src.owner, SpikeSource):
                    raise _fail(op, f"reads {src.owner.name} '%{src.name}', not a population")
