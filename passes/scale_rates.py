"""scale-rates: data-based normalization of firing rates (Diehl et al. 2015, Rueckauer et
al. 2017).

A population's spike rate per step codes its ANN activation a as a / u, u = λ / ρ: λ is the
p-th percentile of its activations on calibration data (option `percentile`), ρ the target
rate per step (`target-rate` × dt, at most 1: Loihi spikes at most once per step). So λ
maps to the target rate and larger activations still fit up to 1/ρ times λ. Without a
`target-rate` the rate is chosen against the neurons' rate curve: 1000 Hz when every
population resets by subtraction, 500 Hz when any resets to zero (at dt = 1 ms). Every
projection is rescaled by its **own** source's unit u_src (skip connections and concat
inputs come from layers with different scales):

    W' = W · u_src · θ / u,   bias' = bias · θ / u      (θ: the population's threshold)

A readout gets W' = W · u_src, so its mean current is the ANN's logit. The input
population's threshold becomes u_in (λ_in from the calibration images' pixel values; 1 with
a stats file, i.e. images in [0, 1]). Amplitudes are folded in and set to 1.

Statistics come from `ctx.calibration` (the ANN run by the numpy analog interpreter on the
graph's rate model), from `ctx.stats_file` (the training stats JSON, keyed by ONNX Relu
node names = the populations' locations) or from `ctx.stats` (the same, already read, e.g.
from the ONNX file's metadata). With `compensate` (default), populations that
reset to zero are corrected for the rate they lose (see `snncc.passes.support.rate_compensation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.location import onnx_node
from snncc.ir.op import Op
from snncc.ir.ops import Readout, SpikeInput
from snncc.ir.ops.kinds import Neurons, Population, SpikeSource, source_population
from snncc.ir.properties import NORMALIZED, SPIKING
from snncc.passes.support.options import check
from snncc.passes.support.rate_compensation import zero_reset_gain
from snncc.pipeline.pass_base import Pass, PassContext

# Default target rates (Hz at the percentile activation), measured on the EM U-Nets (see
# docs/conversion.md): a soft-reset neuron's rate is linear up to one spike per step; a
# reset-to-zero neuron's follows Loihi's staircase 1/⌈1/J⌉, which compensation keeps close
# to linear up to about half a spike per step.
SOFT_RESET_RATE_HZ = 1000.0
RESET_ZERO_RATE_HZ = 500.0


@dataclass(frozen=True)
class LayerActivity:
    """What scale-rates knows of one population's ANN activations."""

    percentile: float  # λ
    mean: float
    mean_square: float  # for the rate-loss model (nan when only a stats file is known)


def _node(op: Op) -> str | None:
    return onnx_node(op.loc)


def from_calibration(graph: Graph, images: np.ndarray, percentile: float, batch_size: int,
                     progress: bool) -> dict[str, LayerActivity]:
    """Run the ANN (the graph's rate model) on the images; summarise each population."""
    from tqdm import tqdm

    from snncc.data.images import check_calibration
    from snncc.ir.interp.analog import run_analog
    from snncc.sim.rates import rate_model

    images = check_calibration(images, graph.inputs[0].type, "scale-rates")
    model = rate_model(graph, ann=True)
    watch = {id(v): name for name, v in model.activations.items()}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in model.activations}

    def observe(value, array) -> None:
        parts[watch[id(value)]].append(np.asarray(array, np.float32).ravel())

    for start in tqdm(range(0, len(images), batch_size), disable=not progress,
                      desc="scale-rates: calibration", unit="batch", leave=False):
        run_analog(model.graph, [images[start:start + batch_size]], batch_size,
                   observe=observe, watch=list(model.activations.values()))
    out = {}
    for name, chunks in parts.items():
        values = np.concatenate(chunks).astype(np.float64)
        out[name] = LayerActivity(float(np.percentile(values, percentile)),
                                  float(values.mean()), float((values**2).mean()))
    return out


def from_stats_file(graph: Graph, path, percentile: float) -> dict[str, LayerActivity]:
    """Per-population statistics from a training stats file, matched by ONNX node name."""
    from snncc.data.stats import RateStats, RateStatsError

    try:
        stats = RateStats.load(path)
    except (OSError, ValueError, RateStatsError) as err:
        raise SnnccError(f"{path}: not a usable rate stats file: {err}") from None
    return from_stats(graph, stats, str(path), percentile)


def from_stats(graph: Graph, stats, path: str, percentile: float) -> dict[str, LayerActivity]:
    """Per-population statistics from a `RateStats` read from `path`, matched by ONNX node
    name."""
    if abs(stats.percentile - percentile) > 1e-9:
        raise SnnccError(f"{path}: holds the {stats.percentile:g}th percentile of each layer's "
                         f"activations but scale-rates asks for the {percentile:g}th; pass "
                         f"scale-rates{{percentile={stats.percentile:g}}} or use calibration "
                         "images (--calibration)")
    pops = [op for op in graph.ops if isinstance(op, Neurons)]
    unnamed = [op.result.name for op in pops if _node(op) is None]
    if unnamed:
        raise SnnccError(f"scale-rates: populations {', '.join(unnamed)} carry no ONNX node "
                         f"name, so {path} cannot be matched to them; use calibration images")
    nodes = {_node(op): op.result.name for op in pops}
    missing = sorted(n for n in nodes if n not in stats.layers)
    unknown = sorted(n for n in stats.layers if n not in nodes)
    if missing:
        raise SnnccError(f"{path}: no statistics for the Relu node(s) {', '.join(missing)}; "
                         "the file belongs to another model or is incomplete: re-export it "
                         "with the model, or use calibration images")
    if unknown:
        raise SnnccError(f"{path}: names layer(s) {', '.join(unknown)}, which are not Relu "
                         f"nodes of this model (its Relu nodes: {', '.join(sorted(nodes))}); "
                         "use the stats file written with this model")
    out = {nodes[n]: LayerActivity(s.percentile_activation, s.mean_activation, float("nan"))
           for n, s in stats.layers.items()}
    for op in graph.ops_of(SpikeInput):
        out[op.result.name] = LayerActivity(1.0, float("nan"), float("nan"))
    return out


def expected_rate(mean_activation: float, unit: float) -> float | None:
    """Spikes per step of an average neuron: its mean activation in units of `unit` (the
    activation that fires once per step), at most one; None when the mean is unknown."""
    rate = mean_activation / unit
    return min(max(rate, 0.0), 1.0) if math.isfinite(rate) else None


def _unit(activity: LayerActivity, rho: float) -> float:
    """u = λ / ρ: the activation one spike per step stands for."""
    return (activity.percentile if activity.percentile > 0 else 1.0) / rho


def rescale(graph: Graph, units: dict[str, float], gains: dict[str, float]) -> None:
    """Apply W' = W·A_src·u_src·θ·g/u and bias' = bias·θ·g/u (readouts: u = θ = g = 1)."""
    for pop in [op for op in graph.ops if isinstance(op, Population)]:
        name = pop.result.name
        if isinstance(pop, Readout):
            factor, bias_factor = 1.0, 1.0
        else:
            factor = pop.attrs.v_threshold * gains.get(name, 1.0) / units[name]
            bias_factor = factor
        for v in pop.inputs:
            syn = v.owner
            assert syn is not None
            src = source_population(syn.inputs[0])
            u_src = units[src.result.name] * src.attrs.amplitude if src is not None else 1.0
            w = graph.weights[syn.attrs.weight] * np.float32(u_src * factor)
            syn.replace_attrs(weight=graph.weights.add(syn.attrs.weight.name, w))
        if pop.attrs.bias is not None and bias_factor != 1.0:
            b = graph.weights[pop.attrs.bias] * np.float32(bias_factor)
            pop.replace_attrs(bias=graph.weights.add(pop.attrs.bias.name, b))
    for op in graph.ops:
        if isinstance(op, SpikeInput):
            u = units[op.result.name]
            op.replace_attrs(v_threshold=u, v_initial=op.attrs.v_initial * u / op.attrs.v_threshold,
                             amplitude=1.0)
        elif isinstance(op, Neurons):
            op.replace_attrs(amplitude=1.0)


@dataclass(frozen=True)
class ScaleRates(Pass):
    name = "scale-rates"
    summary = "map each layer's p-th percentile activation to the target firing rate"
    requires = frozenset({SPIKING})
    establishes = frozenset({NORMALIZED})

    percentile: float = 99.9
    target_rate: float | None = None
    compensate: bool = True
    batch_size: int = 16

    def __post_init__(self) -> None:
        check(0 < self.percentile <= 100, f"scale-rates: percentile must be in (0, 100], got "
              f"{self.percentile}")
        check(self.target_rate is None or self.target_rate > 0, "scale-rates: target-rate "
              f"must be > 0 Hz, got {self.target_rate}")
        check(self.batch_size >= 1, f"scale-rates: batch-size must be ≥ 1, got {self.batch_size}")

    def rate_hz(self, graph: Graph) -> float:
        """The target rate: as given, else chosen against the populations' rate curve."""
        if self.target_rate is not None:
            return self.target_rate
        zero = any(op.attrs.reset == "zero" for op in graph.ops if isinstance(op, Neurons))
        return min(RESET_ZERO_RATE_HZ if zero else SOFT_RESET_RATE_HZ, 1 / graph.attrs.dt)

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        dt = graph.attrs.dt
        target = self.rate_hz(graph)
        rho = target * dt
        if rho > 1.0 + 1e-12:
            raise SnnccError(f"scale-rates: target-rate {target:g} Hz at dt = "
                             f"{dt * 1e3:g} ms asks for {rho:g} spikes per step, but a neuron "
                             f"spikes at most once per step (Loihi too): use at most "
                             f"{1 / dt:g} Hz")
        if ctx.calibration is not None:
            source = "calibration"
            acts = from_calibration(graph, ctx.calibration, self.percentile, self.batch_size,
                                    ctx.progress)
        elif ctx.stats_file is not None:
            source = str(ctx.stats_file)
            acts = from_stats_file(graph, ctx.stats_file, self.percentile)
        elif ctx.stats is not None:
            source = ctx.stats_origin or "statistics given with the model"
            acts = from_stats(graph, ctx.stats, source, self.percentile)
        else:
            raise SnnccError(
                "scale-rates needs activation statistics; give them one of three ways:\n"
                "  1. export the model with snncc.training (export_with_stats), which writes "
                "them into the ONNX file's metadata (key 'snncc.rate-stats');\n"
                "  2. a training stats file: --stats FILE, or NAME.stats.json beside NAME.onnx;\n"
                "  3. calibration images: --calibration DIR_OR_NPY")
        units = {name: _unit(a, rho) for name, a in acts.items()}
        gains = {}
        if self.compensate:
            for op in graph.ops:
                if isinstance(op, Neurons) and op.attrs.reset == "zero":
                    gains[op.result.name] = zero_reset_gain(acts[op.result.name], rho)
        rescale(graph, units, gains)
        layers = {}
        for op in graph.ops:
            if isinstance(op, SpikeSource):
                a = acts[op.result.name]
                op.replace_attrs(mean_rate=expected_rate(a.mean, units[op.result.name]))
                if op.result.name in gains:
                    op.replace_attrs(rate_gain=gains[op.result.name])
                layers[op.result.name] = {
                    "onnx_node": _node(op), "percentile_activation": a.percentile,
                    "mean_activation": a.mean, "scale": units[op.result.name] * rho,
                    "unit": units[op.result.name], "gain": gains.get(op.result.name, 1.0),
                    "dead": a.percentile <= 0}
        ctx.record(self.name, source=source, percentile=self.percentile,
                   target_rate_hz=target, spikes_per_step_at_percentile=rho,
                   layers=layers)
        return True
