"""calibrate-spiking: correct the quantized network's biases from the rates it really fires.

The conversion's rate model (each population fires relu(input + bias) / θ spikes per step,
divided by the `rate_gain` scale-rates applied) is what the next layers expect; at small T
the chip's dynamics miss it: reset to zero throws charge away, filters and hops delay the
start, inhibition is clipped at the membrane floor. This pass measures the miss and
corrects it (after Li et al. 2021, "A free lunch from ANN: towards efficient, accurate
spiking neural networks calibration"): it runs the `loihi`-mode simulator on the
calibration images for `timesteps` steps (default: twice the readout delay plus 32, so that
the deepest layers have settled for most of the run), counts every population's spikes over
the steps the readouts integrate (from the readout delay on), and moves each channel's bias
by the mean rate error times the threshold (the input that changes the rate by that much),

    bias_c ← bias_c + θ · (r_target,c − r_measured,c),

and the readouts' biases by their mean current error. Targets are the rate model's, taken
once from the graph as it comes in (so every layer is corrected towards the ANN, not
towards its corrected inputs), capped at one spike per step. Each of `iterations` rounds
runs the whole network once and corrects every layer; the corrections of the layers near
the input reach the deeper ones in the next round. Biases stay in Loihi's format
(mantissa · 2^exponent at the population's `v_scale`), so the pass runs after
quantize-weights on the network the chip runs. Without calibration images it changes
nothing and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from snncc.hw.loihi.formats import quantize_bias
from snncc.ir.graph import Graph
from snncc.ir.interp import kernels
from snncc.ir.op import Op
from snncc.ir.ops import Conv2d, ConvTranspose2d, Readout
from snncc.ir.ops.kinds import Neurons, source_population
from snncc.ir.properties import NORMALIZED, QUANTIZED, SPIKING
from snncc.passes.support.calibration import calibration_images
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext


def _channel_mean(x: np.ndarray) -> np.ndarray:
    """Mean over images and positions, per channel (axis 1)."""
    return x.mean(axis=tuple(i for i in range(x.ndim) if i != 1), dtype=np.float64)


def target_rates(graph: Graph, images: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """Per population, the rate model's spike rate per step of every neuron (÷ rate_gain,
    at most one), averaged over the images (1×shape)."""
    from snncc.ir.interp.analog import run_analog
    from snncc.sim.rates import rate_model

    model = rate_model(graph)
    pops = {op.result.name: op for op in graph.ops if isinstance(op, Neurons)}
    watch = {id(v): name for name, v in model.activations.items() if name in pops}
    sums = {name: np.zeros((1, *op.result.type.shape[1:])) for name, op in pops.items()}

    def observe(value, array) -> None:
        op = pops[watch[id(value)]]
        a = op.attrs
        rate = np.minimum(np.asarray(array, np.float64) * a.amplitude
                          / (a.v_threshold * a.rate_gain), 1.0)
        sums[op.result.name] += rate.sum(axis=0, keepdims=True)

    for start in range(0, len(images), batch_size):
        run_analog(model.graph, [images[start:start + batch_size]], batch_size,
                   observe=observe, watch=[model.activations[n] for n in pops])
    return {name: s / len(images) for name, s in sums.items()}


def _apply(op: Op, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    a = op.attrs
    if isinstance(op, Conv2d):
        return kernels.conv2d(x, w, None, a.strides, a.pads, a.dilations, a.groups)
    if isinstance(op, ConvTranspose2d):
        return kernels.conv_transpose2d(x, w, None, a.strides, a.pads, a.dilations,
                                        a.output_padding, a.groups)
    return kernels.dense(x, w)


def readout_current(graph: Graph, readout: Op, rates: dict[str, np.ndarray]) -> np.ndarray:
    """A readout's mean input current per channel for source rate maps `rates` (name →
    1×shape mean rate per neuron over the images): projections are linear, so the mean
    over images commutes with them."""
    total = 0.0
    for v in readout.inputs:
        syn = v.owner
        assert syn is not None
        src = source_population(syn.inputs[0])
        assert src is not None
        total = total + _apply(syn, rates[src.result.name], graph.weights[syn.attrs.weight])
    return _channel_mean(np.asarray(total, np.float64))


def _bias(graph: Graph, op: Op) -> np.ndarray:
    if op.attrs.bias is None:
        return np.zeros(op.result.type.shape[1], np.float32)
    return graph.weights[op.attrs.bias]


def _set_bias(graph: Graph, op: Op, base: np.ndarray, delta: np.ndarray) -> None:
    """bias = base + delta (per channel), quantized at the block's v_scale."""
    d = delta.reshape(-1, *([1] * (base.ndim - 1))) if base.ndim > 1 else delta
    new = quantize_bias(base + d, op.attrs.v_scale).astype(np.float32)
    name = op.attrs.bias.name if op.attrs.bias is not None else f"{op.result.name}.bias"
    op.replace_attrs(bias=graph.weights.add(name, new))


@dataclass(frozen=True)
class CalibrateSpiking(Pass):
    name = "calibrate-spiking"
    summary = "correct per-channel biases from the loihi-mode rates on calibration images"
    requires = frozenset({SPIKING, NORMALIZED, QUANTIZED})

    timesteps: int | None = None
    iterations: int = 2
    images: int = 16
    batch_size: int = 16
    readout: bool = True

    def __post_init__(self) -> None:
        check(self.timesteps is None or self.timesteps >= 2, "calibrate-spiking: timesteps "
              f"must be ≥ 2, got {self.timesteps}")
        check(self.iterations >= 1, f"calibrate-spiking: iterations must be ≥ 1, got "
              f"{self.iterations}")
        check(self.images >= 1, f"calibrate-spiking: images must be ≥ 1, got {self.images}")
        check(self.batch_size >= 1, f"calibrate-spiking: batch-size must be ≥ 1, got "
              f"{self.batch_size}")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        from snncc.sim.spiking import readout_delay, run_spiking

        images = calibration_images(graph, ctx, self.name, "biases")
        if images is None:
            return False
        started = time.perf_counter()
        images = images[:self.images]
        delay = readout_delay(graph)
        steps = max(self.timesteps or 2 * delay + 32, delay + 1)
        pops = [op for op in graph.ops if isinstance(op, Neurons)]
        start = {op.result.name: delay for op in pops}  # the readouts' window
        targets = target_rates(graph, images, self.batch_size)
        readouts = list(graph.ops_of(Readout)) if self.readout else []
        readout_bias = {op.result.name: _bias(graph, op) for op in readouts}
        history = []
        for _ in range(self.iterations):
            result = run_spiking(graph, [images], "loihi", timesteps=steps,
                                 batch_size=self.batch_size, count_from=start)
            rates = {name: c.mean(axis=0, keepdims=True, dtype=np.float64)
                     / (steps - start[name]) for name, c in result.stats["counts"].items()}
            errors = {}
            for op in readouts:  # the readout's bias makes up for its inputs' error
                want = readout_current(graph, op, targets)
                got = readout_current(graph, op, rates)
                errors[op.result.name] = float(np.abs(want - got).mean())
                _set_bias(graph, op, readout_bias[op.result.name], want - got)
            for op in pops:  # the measured rate includes the bias: corrections add up
                name = op.result.name
                err = _channel_mean(targets[name] - rates[name])
                errors[name] = float(np.abs(err).mean())
                _set_bias(graph, op, _bias(graph, op), err * op.attrs.v_threshold)
            history.append(errors)
        seconds = time.perf_counter() - started
        ctx.record(self.name, timesteps=steps, iterations=self.iterations,
                   images=len(images), seconds=round(seconds, 2),
                   mean_abs_rate_error=[
                       float(np.mean([e for n, e in h.items() if n in start])) for h in history])
        return True
