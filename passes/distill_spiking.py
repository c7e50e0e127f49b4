"""distill-spiking: train the converted network to reproduce its ANN, through the chip's dynamics.

Conversion maps an ANN's activations onto firing rates; at small T the chip's dynamics miss
them (reset to zero throws charge away, the first spikes of each layer arrive one hop
later, inhibition stops at the membrane floor), and a synaptic filter that smooths this out
costs most of the latency. This pass instead makes the network learn its own dynamics:
knowledge distillation from the ANN (the rate model of the graph as it comes in, which is the
ANN the graph was converted from) into the spiking network, with the calibration images as
the only data. `snncc.sim.differentiable.SpikingNet` runs the exact `loihi`-mode dynamics for
`timesteps` steps with weights and biases fake-quantized to Loihi's 8-bit formats, and Adam
trains them by surrogate-gradient BPTT (cosine-decayed learning rate) so that every
readout's value matches the ANN's pre-head output, with the head's own loss: binary cross
entropy against the ANN's probabilities for a sigmoid head, cross entropy against them for a
softmax, mean squared error (divided by the targets' variance) for raw outputs. No labels
are used. It is the network-wide, gradient-based form of the calibration of Li et al. 2021
("A free lunch from ANN: towards efficient, accurate spiking neural networks calibration"),
and the hybrid training of Rathi et al. 2020 with the ANN as the teacher.

The network must be converted to the neuron the trainer simulates:
`convert-activations{reset=zero tau-s=0 v-min=-1}` (no synaptic filter, so the readout
delay is the number of hops), then scale-rates; the pass runs before quantize-weights, which
then gives the trained weights exactly the formats training used. Each population's
`mean_rate` becomes the rate measured on the calibration images after training, the graph's
`timesteps` the T it was trained for, and its `trained` attribute says where its weights came
from. With `read-from=first` every readout integrates from its first spikes' arrival (in a
U-Net through the shortest skip path) instead of the slowest path's, and training teaches
the network to use those steps. With `shortest=S` the loss is averaged over every run length
from S to `timesteps` (one simulation gives them all: the dynamics are causal), so that one
compile serves a range of run lengths instead of the one it was trained for. Without
calibration images it changes nothing and says so.
It needs PyTorch (`pip install 'snncc[train]'`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops import Readout, Sigmoid, Softmax
from snncc.ir.ops.kinds import Neurons
from snncc.ir.properties import NORMALIZED, QUANTIZED, SPIKING
from snncc.passes.support.calibration import calibration_images
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext

if TYPE_CHECKING:
    from torch import Tensor


def teacher_outputs(graph: Graph, images: np.ndarray, batch_size: int
                    ) -> dict[str, np.ndarray]:
    """Every readout's value in the graph's rate model (the ANN's pre-head output), by
    readout name, for `images`."""
    from snncc.ir.interp.analog import run_analog
    from snncc.sim.rates import rate_model

    model = rate_model(graph)
    names = {id(v): name for name, v in model.readouts.items()}
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in model.readouts}

    def observe(value, array) -> None:
        chunks[names[id(value)]].append(np.asarray(array, np.float32))

    run_analog(model.graph, [images], batch_size, observe=observe,
               watch=list(model.readouts.values()))
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def head_loss(graph: Graph, readout: Readout) -> tuple[str, Callable]:
    """The distillation loss for a readout, by the host head that reads it."""
    import torch
    import torch.nn.functional as F

    users = graph.users(readout.result)
    head = users[0] if len(users) == 1 else None
    if isinstance(head, Sigmoid):
        return "binary cross entropy", lambda out, want: F.binary_cross_entropy_with_logits(
            out, torch.sigmoid(want))
    if isinstance(head, Softmax):
        axis = head.attrs.axis
        return "cross entropy", lambda out, want: -(
            torch.softmax(want, axis) * torch.log_softmax(out, axis)).sum(axis).mean()
    return "mean squared error", lambda out, want: F.mse_loss(out, want) / want.var().clamp(
        min=1e-12)


def runs_as_batch(out: Tensor, want: Tensor, runs: int) -> tuple[Tensor, Tensor]:
    """Readouts of `runs` run lengths (runs, N, ...) and their one target (N, ...) as one
    batch of runs × N, so every loss sees the batch axis first; unchanged when runs is 0."""
    if not runs:
        return out, want
    return out.flatten(0, 1), want.repeat(runs, *[1] * (want.ndim - 1))


@dataclass(frozen=True)
class DistillSpiking(Pass):
    name = "distill-spiking"
    summary = "train weights and biases through the loihi-mode dynamics to match the ANN"
    requires = frozenset({SPIKING, NORMALIZED})
    invalidates = frozenset({QUANTIZED})

    timesteps: int = 64
    steps: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    read_from: Literal["slowest", "first"] = "slowest"
    shortest: int = 0

    def __post_init__(self) -> None:
        check(self.timesteps >= 2, f"distill-spiking: timesteps must be ≥ 2, got "
              f"{self.timesteps}")
        check(0 <= self.shortest <= self.timesteps, f"distill-spiking: shortest must be 0 "
              f"(off) or at most timesteps={self.timesteps}, got {self.shortest}")
        check(self.steps >= 1, f"distill-spiking: steps must be ≥ 1, got {self.steps}")
        check(self.batch_size >= 1, f"distill-spiking: batch-size must be ≥ 1, got "
              f"{self.batch_size}")
        check(self.lr > 0, f"distill-spiking: lr must be > 0, got {self.lr:g}")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        images = calibration_images(graph, ctx, self.name, "weights")
        if images is None:
            return False
        try:
            import torch
        except ImportError:
            raise SnnccError(f"{self.name} trains with PyTorch, which is not installed: "
                             "pip install 'snncc[train]'") from None
        from tqdm import tqdm

        from snncc.sim.arrival import read_out_from
        from snncc.sim.differentiable import SpikingNet
        from snncc.sim.spiking import readout_delay

        started = time.perf_counter()
        if self.read_from == "first":  # trained to use the steps before the deep paths arrive
            read_out_from(graph, "first")
        delay = readout_delay(graph)
        option, first_run = ("shortest", self.shortest) if self.shortest else (
            "timesteps", self.timesteps)
        if first_run <= delay:
            raise SnnccError(f"{self.name}: {option}={first_run} ends before the readout "
                             f"starts (step {delay}); give {option} > {delay}")
        lengths = range(self.shortest, self.timesteps + 1) if self.shortest else ()
        try:
            net = SpikingNet(graph)
        except SnnccError as err:
            raise SnnccError(f"{self.name}: {err}") from None
        teacher = {name: torch.from_numpy(t) for name, t in
                   teacher_outputs(graph, images, self.batch_size).items()}
        losses = {op.result.name: head_loss(graph, op) for op in graph.ops_of(Readout)}
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / self.steps)))
        batch = min(self.batch_size, len(images))
        history = []
        for _ in tqdm(range(self.steps), desc=self.name, unit="step", disable=not ctx.progress,
                      file=ctx.log):
            pick = rng.choice(len(images), batch, replace=False)
            out, _ = net(images[pick], self.timesteps, lengths)
            loss = sum(fn(*runs_as_batch(out[name], teacher[name][pick], len(lengths)))
                       for name, (_, fn) in losses.items())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            history.append(float(loss.detach()))
        net.write_back()
        rates = net.mean_rates(images[:self.batch_size], self.timesteps)
        for op in graph.ops:
            if isinstance(op, Neurons) and op.result.name in rates:
                op.replace_attrs(mean_rate=rates[op.result.name])
        runs = f"{self.shortest}–{self.timesteps}" if self.shortest else f"{self.timesteps}"
        origin = (f"{self.name}: {self.steps} steps at T = {runs} on "
                  f"{len(images)} calibration images, from the ANN's outputs")
        graph.attrs = dataclasses.replace(graph.attrs, timesteps=self.timesteps, trained=origin)
        tail = max(1, self.steps // 10)
        ctx.record(self.name, timesteps=self.timesteps, shortest=self.shortest,
                   steps=self.steps, readout_delay=delay,
                   images=len(images), seconds=round(time.perf_counter() - started, 1),
                   loss={name: kind for name, (kind, _) in losses.items()},
                   loss_first=float(np.mean(history[:tail])),
                   loss_last=float(np.mean(history[-tail:])))
        return True
