"""The ANN in PyTorch for the GPU baseline: the analog IR (== the ONNX model's math) as a
torch module, and a CUDA-graph runner that replays it one request at a time.

torch is imported only by the baseline command's GPU path (an optional extra); the
compiler never needs it. The module reads weights from the IR and runs each op with
`torch.nn.functional`; ops are shape-agnostic along H and W, so the same module runs a
crop or a whole slice of a fully convolutional network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snncc.diagnostics import SnnccError
from snncc.ir.attributes import WeightRef
from snncc.ir.dispatch import OpTable
from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops import (
    Add,
    AvgPool2d,
    BatchNorm,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Relu,
    Sigmoid,
    Softmax,
    Upsample,
)

Kernel = Callable[[Op, list[Tensor], dict[str, Tensor]], Tensor]
TORCH_KERNELS: OpTable[Kernel] = OpTable("torch kernel")


def _symmetric(pads: tuple[int, int, int, int]) -> tuple[int, int] | None:
    top, left, bottom, right = pads
    return (top, left) if (top, left) == (bottom, right) else None


@TORCH_KERNELS.register(Conv2d)
def _conv(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    a = op.attrs
    top, left, bottom, right = a.pads
    x = F.pad(xs[0], (left, right, top, bottom)) if any(a.pads) else xs[0]
    return F.conv2d(x, w[a.weight.name], None if a.bias is None else w[a.bias.name],
                    a.strides, 0, a.dilations, a.groups)


@TORCH_KERNELS.register(ConvTranspose2d)
def _conv_t(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    a = op.attrs
    return F.conv_transpose2d(xs[0], w[a.weight.name],
                              None if a.bias is None else w[a.bias.name], a.strides,
                              _symmetric(a.pads), a.output_padding, a.groups, a.dilations)


@TORCH_KERNELS.register(AvgPool2d)
def _avgpool(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    a = op.attrs
    return F.avg_pool2d(xs[0], a.kernel, a.strides, _symmetric(a.pads), a.ceil_mode,
                        a.count_include_pad)


@TORCH_KERNELS.register(Upsample)
def _upsample(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    return F.interpolate(xs[0], scale_factor=tuple(float(s) for s in op.attrs.scale),
                         mode="nearest")


@TORCH_KERNELS.register(Concat)
def _concat(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    return torch.cat(xs, op.attrs.axis % op.result.type.rank)


@TORCH_KERNELS.register(Add)
def _add(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


@TORCH_KERNELS.register(BatchNorm)
def _batchnorm(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    a = op.attrs
    return F.batch_norm(xs[0], w[a.mean.name], w[a.var.name], w[a.scale.name],
                        w[a.bias.name], False, 0.0, a.epsilon)


@TORCH_KERNELS.register(Relu)
def _relu(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    return F.relu(xs[0])


@TORCH_KERNELS.register(Sigmoid)
def _sigmoid(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    return torch.sigmoid(xs[0])


@TORCH_KERNELS.register(Softmax)
def _softmax(op: Op, xs: list[Tensor], w: dict[str, Tensor]) -> Tensor:
    return torch.softmax(xs[0], op.attrs.axis % op.result.type.rank)


def _unsupported(op: Op) -> str | None:
    """Why the torch module cannot run `op`, or None."""
    if op not in TORCH_KERNELS:
        return "no torch kernel"
    pads = getattr(op.attrs, "pads", None)
    if isinstance(op, (AvgPool2d, ConvTranspose2d)) and _symmetric(pads) is None:
        return f"asymmetric pads {list(pads)}"
    if isinstance(op, (Concat, Softmax)) and op.attrs.axis % op.result.type.rank == 0:
        return "works along the batch axis"
    return None


class TorchAnn(nn.Module):
    """The analog IR `graph` as a torch module (one input, first output)."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        refused = [(op, why) for op in graph.ops if (why := _unsupported(op)) is not None]
        if refused:
            lines = "\n".join(f"  - {op.describe()}: {why}" for op, why in refused)
            raise SnnccError(f"the torch baseline cannot run these ops of @{graph.name}:\n"
                             f"{lines}\nmeasure it with onnxruntime's CUDA provider "
                             "(onnxruntime-gpu) instead")
        self.graph = graph
        names = sorted({ref.name for op in graph.ops for f in dataclasses.fields(op.attrs)
                        if isinstance(ref := getattr(op.attrs, f.name), WeightRef)})
        self._buffers_of = {name: f"w{k}" for k, name in enumerate(names)}  # no dots allowed
        for name, buffer in self._buffers_of.items():
            self.register_buffer(buffer, torch.tensor(np.asarray(graph.weights[name],
                                                                 np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        weights = {name: getattr(self, buffer) for name, buffer in self._buffers_of.items()}
        env = {id(self.graph.inputs[0]): x}
        for op in self.graph.ops:
            env[id(op.result)] = TORCH_KERNELS[op](op, [env[id(v)] for v in op.inputs],
                                                   weights)
        return env[id(self.graph.outputs[0])]


def cuda_runner(module: TorchAnn, shape: tuple[int, ...], cuda_graph: bool
                ) -> Callable[[], None]:
    """One request as deployed: copy a pinned host input to the GPU, run (replay a CUDA
    graph, or eagerly), copy the output back and wait for it."""
    module = module.cuda().eval()
    host_in = torch.rand(shape).pin_memory()
    device_in = host_in.cuda()
    with torch.no_grad():
        side = torch.cuda.Stream()  # warm-up off the default stream, as capture requires
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                device_out = module(device_in)
        torch.cuda.current_stream().wait_stream(side)
    host_out = torch.empty(device_out.shape).pin_memory()

    def eager() -> None:
        with torch.no_grad():
            host_out.copy_(module(host_in.cuda(non_blocking=True)))  # waits for the result

    if not cuda_graph:
        return eager
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        device_out = module(device_in)

    def replay() -> None:
        device_in.copy_(host_in, non_blocking=True)
        graph.replay()
        host_out.copy_(device_out, non_blocking=True)
        torch.cuda.synchronize()

    return replay
