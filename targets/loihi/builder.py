"""Spiking IR → a `nengo.Network` configured for nengo-loihi.

Mapping (IR IF step: v += I + b, spike and reset to zero above `v_threshold` θ; a spike
carries `amplitude` into its synapses):

- population → `nengo.Ensemble` driven through `ens.neurons`, gain 1/θ for every neuron
  (a convolution needs one gain for all neurons it targets), bias (b + constant host
  currents) / (θ·dt): nengo-loihi then integrates exactly (I + b)/θ per step against a
  threshold of 1. IF → `LoihiSpikingRectifiedLinear` (with a membrane floor `v_min` < 0:
  its subclass `FlooredIF`, whose builder sets the compartments' `vmin`), LIF → `LoihiLIF`
  (`min_voltage`); the presynaptic neuron type carries `amplitude`.
- synapse ops → `nengo.Convolution` / `ConvolutionTranspose` (`channels_last=False`) or a
  dense transform, neurons to neurons with no synaptic filter. No Node sits between the
  host and a convolution: the image current of an input layer is its bias, and the input
  layer is an off-chip ensemble (`on_chip=False`) whose neurons feed the chip.
- `block_shape` (from tile-cores) → `net.config[ens].block_shape`.
- readouts are computed on the host from spike probes on their source layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.formats import V_MAX
from snncc.hw.loihi.geometry import Layer, Lowered, Projection, projection
from snncc.hw.loihi.limits import DECAY_SCALE_TH, REFRACT_DELAY_MAX
from snncc.ir.dispatch import OpTable
from snncc.ir.graph import Graph, Value
from snncc.ir.op import Op
from snncc.ir.ops import IF, LIF, SpikeInput


def import_nengo() -> tuple[Any, Any]:
    """nengo and nengo_loihi, without nengo-loihi's 'not tested with nengo 4.1' warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has not been tested with your.*")
        import nengo
        import nengo_loihi
    return nengo, nengo_loihi


NeuronCheck = Callable[[Op, float], "str | None"]
NEURON_LIMITS: OpTable[NeuronCheck] = OpTable("Loihi neuron limit check")


@NEURON_LIMITS.register(IF)
def _if_limits(op: Op, dt: float) -> str | None:
    if op.attrs.refractory:
        return (f"{op.describe()}: Loihi's non-leaky neurons (nengo-loihi SpikingRectifiedLinear) "
                f"have no refractory period, got refractory = {op.attrs.refractory} steps; use "
                "0 or neuron.lif")
    return None


@NEURON_LIMITS.register(LIF)
def _lif_limits(op: Op, dt: float) -> str | None:
    a = op.attrs
    if a.refractory + 1 > REFRACT_DELAY_MAX:
        return (f"{op.describe()}: refractory = {a.refractory} steps exceeds Loihi's "
                f"maximum of {REFRACT_DELAY_MAX - 1}")
    if -np.expm1(-dt / a.tau) <= DECAY_SCALE_TH:
        return (f"{op.describe()}: tau = {a.tau} s is too long for Loihi's 12-bit voltage "
                f"decay at dt = {dt} s (nengo-loihi needs 1 - exp(-dt/tau) > "
                f"{DECAY_SCALE_TH:.3g})")
    return None


def neuron_problem(layer: Layer, dt: float) -> str | None:
    """Why Loihi (through nengo-loihi) cannot run this population, or None."""
    op, a = layer.op, layer.op.attrs
    if layer.role != "chip":
        return None  # the host runs input layers (either reset) and readouts
    if a.v_initial:
        return (f"{op.describe()}: nengo-loihi starts every membrane on the chip at zero; "
                f"v_initial = {a.v_initial} cannot run there — convert with v-initial=0")
    if a.reset != "zero":
        return (f"{op.describe()}: Loihi resets the membrane to zero after a spike; reset "
                f"'{a.reset}' cannot run there — convert with convert-activations{{reset=zero}}")
    check = NEURON_LIMITS.get(op)
    return check(op, dt) if check is not None else None


@cache
def zero_reset_type() -> type:
    """Host-side IF with reset to zero that spikes at v ≥ threshold, as `neuron.input`
    specifies (nengo-loihi's LoihiSpikingRectifiedLinear spikes only above it)."""
    nengo, _ = import_nengo()

    class ZeroResetIF(nengo.SpikingRectifiedLinear):
        state = {"voltage": nengo.dists.Choice([0])}

        def step(self, dt: float, J: np.ndarray, output: np.ndarray,
                 voltage: np.ndarray) -> None:
            voltage += J * dt
            spiked = voltage >= 1
            output[:] = spiked * (self.amplitude / dt)
            voltage[spiked] = 0

    return ZeroResetIF


NEURON_TYPES: OpTable[Callable[[Op, float], Any]] = OpTable("nengo neuron type")


@NEURON_TYPES.register(SpikeInput)
def _input_type(op: Op, dt: float) -> Any:
    """On the host, `neuron.input` may also subtract on reset (nengo's
    SpikingRectifiedLinear) and start from `v_initial`."""
    nengo, _ = import_nengo()
    a = op.attrs
    kind = nengo.SpikingRectifiedLinear if a.reset == "subtract" else zero_reset_type()
    start = nengo.dists.Choice([a.v_initial / a.v_threshold])
    return kind(amplitude=a.amplitude, initial_state={"voltage": start})


def min_voltage(op: Op) -> float:
    """The membrane floor `v_min` in units of the threshold, within Loihi's −(2^23 − 1)
    integer units where the population's scale is known (as the numpy `loihi` mode)."""
    a = op.attrs
    floor = a.v_min if a.v_scale is None else max(a.v_min, -V_MAX / a.v_scale)
    return floor / a.v_threshold


@cache
def floored_if_type() -> type:
    """Loihi's IF neuron whose membrane may go below zero, down to `min_voltage` (in
    nengo-loihi's IF voltage units, where the threshold is 1/dt)."""
    _, nengo_loihi = import_nengo()
    from nengo.params import NumberParam
    from nengo_loihi.builder import Builder
    from nengo_loihi.builder.ensemble import build_relu

    class FlooredIF(nengo_loihi.neurons.LoihiSpikingRectifiedLinear):
        min_voltage = NumberParam("min_voltage", high=0)

        def __init__(self, min_voltage: float = 0.0, amplitude: float = 1.0) -> None:
            super().__init__(amplitude=amplitude)
            self.min_voltage = min_voltage

    @Builder.register(FlooredIF)
    def _build(model: Any, neuron_type: Any, neurons: Any, block: Any) -> None:
        build_relu(model, neuron_type, neurons, block)
        block.compartment.vmin = neuron_type.min_voltage

    return FlooredIF


@NEURON_TYPES.register(LIF)
def _lif_type(op: Op, dt: float) -> Any:
    _, nengo_loihi = import_nengo()
    return nengo_loihi.neurons.LoihiLIF(tau_rc=op.attrs.tau, tau_ref=op.attrs.refractory * dt,
                                        min_voltage=min_voltage(op),
                                        amplitude=op.attrs.amplitude)


@NEURON_TYPES.register(IF)
def _if_type(op: Op, dt: float) -> Any:
    _, nengo_loihi = import_nengo()
    if op.attrs.v_min < 0:
        return floored_if_type()(min_voltage=min_voltage(op) / dt, amplitude=op.attrs.amplitude)
    return nengo_loihi.neurons.LoihiSpikingRectifiedLinear(amplitude=op.attrs.amplitude)


def neuron_type(layer: Layer, dt: float) -> Any:
    """The nengo neuron type of a population (refused where Loihi cannot run it)."""
    problem = neuron_problem(layer, dt)
    if problem:
        raise SnnccError(problem)
    return NEURON_TYPES[layer.op](layer.op, dt)


def per_neuron(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A bias given per channel (C,) or per neuron, as an array of `shape`."""
    if array.shape == (shape[0],):
        array = array.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.broadcast_to(array, shape)


def host_current(layer: Layer, graph: Graph, images: dict[str, np.ndarray]) -> np.ndarray:
    """Per-neuron constant current (per step) from biases and the image, for one image."""
    shape = layer.shape
    total = np.zeros(shape)
    bias = None if isinstance(layer.op, SpikeInput) else layer.op.attrs.bias
    if bias is not None:
        total += per_neuron(graph.weights[bias], shape)
    for p in layer.projections:
        if p.bias is not None:
            total += p.bias.reshape(shape)
    for src in layer.host_currents:
        if isinstance(src, Value):
            total += images[src.name].reshape(shape)
            continue
        proj = projection(src, graph)
        total += proj.apply(images[src.inputs[0].name][None])[0].reshape(shape)
        if proj.bias is not None:
            total += proj.bias.reshape(shape)
    return total


@dataclass
class Built:
    """A network for one image, with the handles the runner needs."""

    network: Any
    ensembles: dict[str, Any]  # population result name → Ensemble
    probes: dict[str, Any]  # spiking population name → spike probe


def transform(p: Projection) -> Any:
    nengo, _ = import_nengo()
    if p.kind == "dense":
        return nengo.transforms.Dense(p.kernel.shape, init=p.kernel)
    if p.kind == "sparse":  # from the neurons it reads (`p.sources`), as columns 0..n-1
        cols = np.searchsorted(p.sources, p.indices[:, 1])
        shape = (int(np.prod(p.out_shape)), len(p.sources))
        return nengo.transforms.Sparse(shape, indices=np.stack([p.indices[:, 0], cols], 1),
                                       init=p.kernel)
    common = dict(n_filters=p.kernel.shape[3], input_shape=p.in_shape,
                  kernel_size=p.kernel.shape[:2], strides=p.strides, padding=p.padding,
                  channels_last=False, init=p.kernel)
    if p.kind == "conv":
        return nengo.Convolution(**common)
    return nengo.transforms.ConvolutionTranspose(output_shape=p.out_shape, **common)


def build(graph: Graph, lowered: Lowered, images: dict[str, np.ndarray],
          probe_all: bool = True) -> Built:
    """The nengo network for one image (`images`: graph input name → C×H×W array)."""
    nengo, nengo_loihi = import_nengo()
    dt = graph.attrs.dt
    needed = {lowered.source(p).op.result.name
              for x in lowered.layers if x.role == "readout" for p in x.projections}
    with nengo.Network(label=graph.name, seed=0) as net:
        nengo_loihi.add_params(net)
        ensembles: dict[str, Any] = {}
        probes: dict[str, Any] = {}
        for layer in lowered.layers:
            if layer.role == "readout":
                continue
            name = layer.op.result.name
            n = int(np.prod(layer.shape))
            theta = layer.op.attrs.v_threshold
            bias = host_current(layer, graph, images).ravel() / (theta * dt)
            ens = nengo.Ensemble(n, 1, neuron_type=neuron_type(layer, dt),
                                 gain=np.full(n, 1.0 / theta), bias=bias, label=name)
            ensembles[name] = ens
            if layer.role == "input":
                net.config[ens].on_chip = False
            elif layer.op.attrs.block_shape is not None:
                net.config[ens].block_shape = nengo_loihi.BlockShape(
                    tuple(layer.op.attrs.block_shape), tuple(layer.shape))
            tau_s = getattr(layer.op.attrs, "tau_s", 0.0)
            synapse = nengo.Lowpass(tau_s) if tau_s > 0 else None
            for p in layer.projections:
                src = ensembles[lowered.source(p).op.result.name]
                pre = src.neurons[p.sources] if p.kind == "sparse" else src.neurons
                nengo.Connection(pre, ens.neurons, transform=transform(p),
                                 synapse=synapse, label=p.op.result.name)
            if probe_all or name in needed:
                probes[name] = nengo.Probe(ens.neurons, "output", synapse=None)
    return Built(net, ensembles, probes)
