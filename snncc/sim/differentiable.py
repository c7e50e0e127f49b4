"""A spiking IR graph as a PyTorch module that trains through the dynamics snncc runs.

`SpikingNet(graph)` takes a converted, normalized graph (convert-activations{reset=zero
tau-s=0}, then scale-rates: training starts from the ANN's converted weights, the hybrid
training of Rathi et al. 2020) and makes its synapse weights and population biases
trainable. Its forward pass is the `loihi` mode of snncc's simulator
(`snncc.sim.dynamics.LoihiNeurons`), in the chip's integer units:

- each population's weights, bias, threshold and membrane floor are put, at every forward,
  into the block format quantize-weights will give them (`snncc.hw.loihi.formats`, chosen
  from the current weights); weights and bias are rounded straight-through. Membranes are
  integers held in float32, exact below 2^24 (each synapse sum is rounded back to an
  integer straight-through, so no convolution algorithm's rounding can flip a spike);
- one step per hop: a population's synapses at step t read their sources' spikes of t − 1;
- current = q + ⌊current/4096⌋ (the chip's unfiltered current keeps 1/4096 of itself);
  v ← clip(v + current + bias, vmin, 2^23 − 1); a spike where v > vth; then v ← 0;
- a readout's value is its mean current plus bias over the steps from its `delay` on;
- the input is the host's `neuron.input`, run by the simulator's own `FloatNeurons`.

Spikes are a step function forward. Backward uses the fast-sigmoid surrogate
∂s/∂v = 1 / (vth · (1 + β|v − vth| / vth)²) (SuperSpike, Zenke & Ganguli 2018): it is
nonzero for every neuron, so layers that a short conversion leaves silent still learn, and
its shape matters little (Zenke & Vogels 2021, who also found detaching the reset helps:
the reset is not differentiated here). Without recurrence and with one step per hop, the
network runs layer by layer over all T steps at once (one batched convolution over T × N
frames per synapse op, then a scan over t of the neurons), which makes BPTT affordable on a
CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.formats import (
    BIAS_MAN_MAX,
    BIAS_MAX,
    DECAY_BITS,
    V_MAX,
    BlockFormat,
    choose_format,
    membrane_floor,
    quantize_threshold,
)
from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops import IF, Conv2d, ConvTranspose2d, Dense, Flatten, Readout, Reshape, SpikeInput
from snncc.ir.ops.kinds import SpikeSource, Synapse, View
from snncc.sim.dynamics import FloatNeurons

SURROGATE_BETA = 5.0


def _carry_step(current: Tensor) -> Tensor:
    """What the chip's unfiltered current keeps of itself: ⌊current / 4096⌋ toward zero."""
    return torch.trunc(current / 2**DECAY_BITS)


SCAN_BLOCK = 512  # neurons per scan block: its state stays in cache, its inner loop vectorizes


@nb.njit(cache=True, parallel=True)
def _scan_forward(q, bias, vth, vmin, pre, spikes):  # pragma: no cover - compiled
    """Arrays T×M, bias M: see `_IFScan`. Blocks of neurons in parallel, each stepping
    through t with its neurons innermost (contiguous rows of q: 3–5× faster than one
    neuron at a time down a column; the same float32 operations per neuron)."""
    steps, m = q.shape
    for block in nb.prange((m + SCAN_BLOCK - 1) // SCAN_BLOCK):
        lo = block * SCAN_BLOCK
        n = min(SCAN_BLOCK, m - lo)
        v, carry = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for t in range(steps):
            for j in range(n):
                current = q[t, lo + j] + carry[j]
                carry[j] = np.float32(np.trunc(current / np.float32(2**DECAY_BITS)))
                p = v[j] + current + bias[lo + j]
                pre[t, lo + j] = p
                clipped = min(max(p, vmin), np.float32(V_MAX))
                fired = clipped > vth
                spikes[t, lo + j] = np.float32(1.0) if fired else np.float32(0.0)
                v[j] = np.float32(0.0) if fired else clipped


@nb.njit(cache=True, parallel=True)
def _scan_backward(grad, pre, spikes, vth, vmin, beta, g_pre):  # pragma: no cover - compiled
    steps, m = grad.shape
    for block in nb.prange((m + SCAN_BLOCK - 1) // SCAN_BLOCK):
        lo = block * SCAN_BLOCK
        n = min(SCAN_BLOCK, m - lo)
        g_next = np.zeros(n, np.float32)
        for t in range(steps - 1, -1, -1):
            for j in range(n):
                p = pre[t, lo + j]
                v = min(max(p, vmin), np.float32(V_MAX))
                x = np.float32(1.0) + beta * abs(v - vth) / vth
                g_v = (grad[t, lo + j] / (vth * x * x)
                       + g_next[j] * (np.float32(1.0) - spikes[t, lo + j]))
                g = g_v if vmin <= p and p <= np.float32(V_MAX) else np.float32(0.0)
                g_next[j] = g
                g_pre[t, lo + j] = g


class _IFScan(torch.autograd.Function):
    """Integrate-and-fire neurons resetting to zero, over all T steps at once.

    Forward, per step: current = q + carry; v = clip(v + current + bias, vmin, 2^23 − 1);
    s = v > vth; v ← 0 where s. Backward is BPTT through v with the surrogate for s; the
    reset and the current's carry are not differentiated. One autograd node and one
    compiled loop for the whole scan (instead of a dozen tensor ops per step) keep training
    fast and its memory at one membrane tensor per layer.
    """

    @staticmethod
    def forward(ctx, q: Tensor, bias: Tensor, vth: float, vmin: float
                ) -> Tensor:  # type: ignore[override]
        steps, shape = len(q), q.shape[1:]
        flat = q.detach().reshape(steps, -1).contiguous().numpy()
        b = np.ascontiguousarray(np.broadcast_to(bias.detach().numpy(), shape)).ravel()
        pre, spikes = np.empty_like(flat), np.empty_like(flat)
        _scan_forward(flat, b.astype(np.float32), np.float32(vth), np.float32(vmin), pre,
                      spikes)
        ctx.save_for_backward(torch.from_numpy(pre), torch.from_numpy(spikes))
        ctx.vth, ctx.vmin, ctx.bias_shape = vth, vmin, bias.shape
        return torch.from_numpy(spikes).reshape(q.shape)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        pre, spikes = ctx.saved_tensors
        g = grad.reshape(pre.shape).contiguous().numpy()
        g_pre = np.empty_like(g)
        _scan_backward(g, pre.numpy(), spikes.numpy(), np.float32(ctx.vth),
                       np.float32(ctx.vmin), np.float32(SURROGATE_BETA), g_pre)
        g_q = torch.from_numpy(g_pre).reshape(grad.shape)
        return g_q, g_q.sum(0).sum_to_size(ctx.bias_shape), None, None


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def _param_key(name: str) -> str:
    return name.replace(".", "__")


@dataclass
class _Block:
    """One population's format this forward, in integer units."""

    fmt: BlockFormat
    vth: float
    vmin: float


class SpikingNet(nn.Module):
    """The trainable spiking network of a converted graph (see the module docstring)."""

    def __init__(self, graph: Graph, bits: int = 8) -> None:
        super().__init__()
        self.graph, self.bits = graph, bits
        self.weights = nn.ParameterDict()
        self.biases = nn.ParameterDict()
        for op in graph.ops:
            if isinstance(op, SpikeSource | Readout) and not isinstance(op, SpikeInput):
                self._check_population(op)
                if op.attrs.bias is not None:
                    b = graph.weights[op.attrs.bias]
                    self.biases[_param_key(op.result.name)] = nn.Parameter(
                        torch.tensor(np.asarray(b, np.float32)))
            elif isinstance(op, Synapse):
                self._check_synapse(op)
                self.weights[_param_key(op.result.name)] = nn.Parameter(
                    torch.tensor(np.asarray(graph.weights[op.attrs.weight], np.float32)))
            elif not isinstance(op, SpikeInput | View) and any(
                    isinstance(v.owner, SpikeSource | Synapse) for v in op.inputs
                    if v.owner is not None and not isinstance(v.owner, Readout)):
                raise SnnccError(f"spiking training: {op.describe()} sits between spiking "
                                 "layers; only synapse ops, views and populations can")

    @staticmethod
    def _check_population(op: Op) -> None:
        a = op.attrs
        if isinstance(op, Readout):
            return
        if not isinstance(op, IF) or a.reset != "zero" or a.tau_s != 0 or a.refractory:
            raise SnnccError(f"spiking training: {op.describe()} must be neuron.if with "
                             "reset=zero, tau_s=0 and no refractory period; convert with "
                             "convert-activations{reset=zero tau-s=0}")
        if a.amplitude != 1.0:
            raise SnnccError(f"spiking training: {op.describe()} has spike amplitude "
                             f"{a.amplitude:g}; run scale-rates first")

    @staticmethod
    def _check_synapse(op: Op) -> None:
        if not isinstance(op, Conv2d | ConvTranspose2d | Dense):
            raise SnnccError(f"spiking training: {op.describe()} ({op.name}) has no PyTorch "
                             "form here (conv2d, conv_transpose2d and dense do)")

    # formats -----------------------------------------------------------------------
    def _block(self, op: Op) -> _Block:
        """quantize-weights' format for this population, from the current weights."""
        maxima = [float(self.weights[_param_key(v.name)].detach().abs().max())
                  for v in op.inputs]
        bias = self.biases.get(_param_key(op.result.name))
        b_max = 0.0 if bias is None else float(bias.detach().abs().max())
        threshold = getattr(op.attrs, "v_threshold", 0.0)
        fmt = choose_format(maxima, threshold, b_max, self.bits)
        vth = round(quantize_threshold(threshold, fmt) * fmt.v_scale) if threshold else 0.0
        vmin = float(membrane_floor(op.attrs.v_min * fmt.v_scale)) if isinstance(op, IF) else 0.0
        return _Block(fmt, vth, vmin)

    def _int_weight(self, syn: Op, fmt: BlockFormat, group: int) -> Tensor:
        """The synapse group's weights in integer units, rounded straight-through."""
        w = self.weights[_param_key(syn.result.name)]
        shift = fmt.group_shifts[group]
        unit = 2.0**fmt.shift_bits / (fmt.w_scale * 2.0**shift)
        mant = torch.clamp(torch.round(w.detach() / unit), -fmt.mantissa_max, fmt.mantissa_max)
        exact = mant * 2.0 ** (fmt.shift_bits + 6 + fmt.w_exp - shift)
        scaled = w * fmt.v_scale
        return scaled + (exact - scaled).detach()

    def _int_bias(self, op: Op, fmt: BlockFormat, ndim: int) -> Tensor | float:
        bias = self.biases.get(_param_key(op.result.name))
        if bias is None:
            return 0.0
        scaled = bias * fmt.v_scale
        b = torch.clamp(torch.round(scaled.detach()), -BIAS_MAX, BIAS_MAX)
        exp = torch.ceil(torch.log2(torch.clamp(b.abs() / BIAS_MAN_MAX, min=1.0)))
        exact = torch.round(b / 2.0**exp) * 2.0**exp
        out = scaled + (exact - scaled).detach()
        return out.reshape(-1, *([1] * (ndim - 2))) if out.ndim == 1 else out

    # forward -----------------------------------------------------------------------
    @staticmethod
    def _apply(syn: Op, x: Tensor, w: Tensor) -> Tensor:
        a = syn.attrs
        if isinstance(syn, Dense):
            return x @ w.T
        top, left, bottom, right = a.pads
        if isinstance(syn, Conv2d):
            x = F.pad(x, (left, right, top, bottom))
            return F.conv2d(x, w, stride=a.strides, dilation=a.dilations, groups=a.groups)
        y = F.conv_transpose2d(x, w, stride=a.strides, dilation=a.dilations, groups=a.groups,
                               output_padding=a.output_padding)
        return y[:, :, top:y.shape[2] - bottom, left:y.shape[3] - right]

    def _input_spikes(self, op: Op, x: np.ndarray, steps: int) -> Tensor:
        a = op.attrs
        neurons = FloatNeurons(np.full(x.shape, a.v_initial, np.float32), a.v_threshold,
                               a.reset == "zero")
        return torch.from_numpy(np.stack([neurons.step(x) for _ in range(steps)])).float()

    def _current(self, op: Op, spikes: dict[int, Tensor], steps: int, n: int,
                 block: _Block) -> Tensor:
        """Σ synapse(source spikes of the step before), integer units, (T, N, ...)."""
        total: Tensor | None = None
        for group, v in enumerate(op.inputs):
            syn = v.owner
            src = spikes[id(syn.inputs[0])][: steps - 1]
            frames = src.reshape((steps - 1) * n, *src.shape[2:])
            q = self._apply(syn, frames, self._int_weight(syn, block.fmt, group))
            total = q if total is None else total + q
        assert total is not None
        total = _round_ste(total).reshape(steps - 1, n, *total.shape[1:])
        return torch.cat([torch.zeros_like(total[:1]), total])

    def forward(self, image: np.ndarray | Tensor, steps: int, lengths: Sequence[int] = ()
                ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Readout values (N, ...) by readout name, and spike counts per population
        ((N, ...) summed over the steps) by population name. With `lengths`, each readout's
        values are (len(lengths), N, ...): what a run of each length reads, from this one
        run (the dynamics are causal, so a run of L steps is this run's first L)."""
        x = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
        x = x.astype(np.float32)
        n = len(x)
        spikes: dict[int, Tensor] = {}
        readouts: dict[str, Tensor] = {}
        counts: dict[str, Tensor] = {}
        for op in self.graph.ops:
            if isinstance(op, SpikeInput):
                spikes[id(op.result)] = self._input_spikes(op, x, steps)
            elif isinstance(op, View):
                src = spikes[id(op.inputs[0])]
                if not isinstance(op, Flatten | Reshape):
                    raise SnnccError(f"spiking training: view {op.describe()} is not supported")
                spikes[id(op.result)] = src.reshape(steps, n, *op.result.type.shape[1:])
            elif isinstance(op, IF):
                block = self._block(op)
                q = self._current(op, spikes, steps, n, block)
                bias = self._int_bias(op, block.fmt, q.ndim - 1)
                out = _IFScan.apply(q, torch.as_tensor(bias, dtype=q.dtype), block.vth,
                                    block.vmin)
                spikes[id(op.result)] = out
                counts[op.result.name] = out.sum(0)
            elif isinstance(op, Readout):
                block = self._block(op)
                q = self._current(op, spikes, steps, n, block)
                delay = op.attrs.delay
                runs = list(lengths) or [steps]
                if delay >= min(runs) or max(runs) > steps:
                    raise SnnccError(f"spiking training: {op.describe()} reads out from step "
                                     f"{delay}; run more than {delay} steps (and read runs "
                                     f"no longer than the {steps} simulated)")
                totals = self._readout_totals(q[delay:])  # the host reads from `delay` on
                picks = torch.tensor([length - delay - 1 for length in runs])
                counted = torch.tensor([float(length - delay) for length in runs])
                mean = totals[picks] / counted.reshape(-1, *[1] * (q.ndim - 1))
                mean = (mean + self._int_bias(op, block.fmt, q.ndim - 1)) / block.fmt.v_scale
                readouts[op.result.name] = mean if lengths else mean[0]
        return readouts, counts

    @staticmethod
    def _readout_totals(q: Tensor) -> Tensor:
        """Σ_{t ≤ k} current_t for every k: q plus the carry each earlier step left (the
        carry is not differentiated)."""
        with torch.no_grad():
            carry, carried = torch.zeros_like(q[0]), torch.zeros_like(q)
            for t in range(len(q) - 1):  # the carry step t leaves enters step t + 1
                carry = _carry_step(q[t] + carry)
                carried[t + 1] = carried[t] + carry
        return q.cumsum(0) + carried

    # results -----------------------------------------------------------------------
    def write_back(self) -> None:
        """Put the trained (unquantized) weights and biases into the graph's weight store."""
        for op in self.graph.ops:
            if isinstance(op, Synapse):
                w = self.weights[_param_key(op.result.name)].detach().cpu().numpy()
                op.replace_attrs(weight=self.graph.weights.add(op.attrs.weight.name, w))
            elif op.result.name is not None and _param_key(op.result.name) in self.biases:
                b = self.biases[_param_key(op.result.name)].detach().cpu().numpy()
                op.replace_attrs(bias=self.graph.weights.add(op.attrs.bias.name, b))

    @torch.no_grad()
    def mean_rates(self, image: np.ndarray | Tensor, steps: int) -> dict[str, float]:
        """Spikes per neuron per step of every population on `image`, over `steps` steps."""
        _, counts = self(image, steps)
        return {name: float(c.mean()) / steps for name, c in counts.items()}

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
