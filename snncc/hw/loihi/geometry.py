"""Spiking IR → what nengo-loihi will build: layers and projections in nengo's geometry.

Both `tile-cores` (which counts core resources) and the network builder read the graph
through this module, so the resources counted are those of the transforms actually built.
Nothing here imports nengo.

- Every `neuron.if` / `neuron.lif` runs **on chip**. The input layer `neuron.input` runs on
  the host (an `on_chip=False` ensemble) and its spikes feed the first on-chip
  convolutions.
- A `neuron.readout` runs on the **host**: its current is a linear function of the spikes
  of its sources, so the host computes it from their probed spike counts.
- A current read straight from a graph input (or a synapse op applied to one: the
  `input=current` conversion) is constant for a static image: the host computes it and adds
  it to the population's bias, which is exact.
- `syn.flatten` / `syn.reshape` between a population and a dense projection keep the
  neuron order (NCHW, as nengo-loihi's), so they are looked through.

Convolutions are expressed as nengo `Convolution` / `ConvolutionTranspose` transforms
(`channels_last=False`, kernel `(kh, kw, c_in, c_out)`). nengo only has "valid" and "same"
padding; other ONNX paddings are reproduced exactly by adding zero taps to the kernel.
Groups and dilations are expanded into a dense kernel with zeros; pooling and nearest
upsampling become per-channel (diagonal) kernels. `syn.sparse` becomes a
`nengo.transforms.Sparse` connection from the presynaptic neurons it reads (discrete axons).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.dispatch import OpTable
from snncc.ir.graph import Graph, Value
from snncc.ir.interp.kernels import sparse_map
from snncc.ir.op import Op
from snncc.ir.ops import (
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Readout,
    SparseMap,
    SpikeInput,
    SumPool2d,
    Upsample,
)
from snncc.ir.ops.kinds import Population, SpikeSource, through_views

Role = Literal["chip", "input", "readout"]


@dataclass(frozen=True)
class Projection:
    """One synapse op as nengo builds it: `kind` conv / transpose (kernel (kh, kw, ci, co),
    nengo padding), dense (weight (out, in)) or sparse (weights (nnz,) with `indices`
    (nnz, 2) [output, input] flat neuron indices); shapes exclude the batch axis."""

    op: Op
    kind: Literal["conv", "transpose", "dense", "sparse"]
    kernel: np.ndarray
    strides: tuple[int, int]
    padding: Literal["valid", "same"]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    bias: np.ndarray | None  # per output neuron, flattened, or None
    indices: np.ndarray | None = None  # sparse only

    @cached_property
    def sources(self) -> np.ndarray:
        """Sparse: the presynaptic neurons it reads, sorted (one discrete axon each)."""
        assert self.indices is not None
        return np.unique(self.indices[:, 1])

    def nengo_pad(self, axis: int) -> int:
        """The padding nengo-loihi applies along spatial `axis` (its `conv2d_loihi_weights`)."""
        k, s = self.kernel.shape[axis], self.strides[axis]
        n_in, n_out = self.in_shape[1 + axis], self.out_shape[1 + axis]
        if self.padding == "valid":
            return 0
        if self.kind == "conv":
            return max((n_out - 1) * s + k - n_in, 0) // 2
        return -(min(max(n_out + k - 1 - ((n_in - 1) * s + 1), 0), (k - 1) * 2) // 2)

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Per spatial axis, (n_in, k) int arrays: the output index that input i reaches
        through kernel tap t, or -1."""
        out = []
        for axis in range(2):
            k, s = self.kernel.shape[axis], self.strides[axis]
            n_in, n_out = self.in_shape[1 + axis], self.out_shape[1 + axis]
            pad = self.nengo_pad(axis)
            i, t = np.arange(n_in)[:, None], np.arange(k)[None, :]
            if self.kind == "conv":
                num = i + pad - t
                o = num // s
                ok = (num % s == 0) & (o >= 0) & (o < n_out)
            else:
                o = i * s + pad + t
                ok = (o >= 0) & (o < n_out)
            out.append(np.where(ok, o, -1))
        return out[0], out[1]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The current this projection delivers for input `x` (batch first), bias excluded."""
        if self.kind == "dense":
            return x.reshape(len(x), -1) @ self.kernel.T
        if self.kind == "sparse":
            return sparse_map(x, self.kernel, self.indices, self.out_shape).astype(np.float64)
        rows, cols = self.tables
        _, n_r, n_c = self.out_shape
        y = np.zeros((len(x), self.kernel.shape[3], n_r, n_c))
        for t_r, t_c in itertools.product(range(rows.shape[1]), range(cols.shape[1])):
            mr = np.zeros((n_r, rows.shape[0]))
            ir = np.nonzero(rows[:, t_r] >= 0)[0]
            mr[rows[ir, t_r], ir] = 1
            mc = np.zeros((n_c, cols.shape[0]))
            ic = np.nonzero(cols[:, t_c] >= 0)[0]
            mc[cols[ic, t_c], ic] = 1
            y += np.einsum("cf,ri,ncij,sj->nfrs", self.kernel[t_r, t_c], mr, x, mc,
                           optimize=True)
        return y


@dataclass(frozen=True)
class Layer:
    """A population, where it runs, its projections from spiking populations, and its
    currents computed on the host (graph inputs, or synapse ops reading them)."""

    op: Op
    role: Role
    projections: tuple[Projection, ...]  # from spiking sources
    host_currents: tuple[Op | Value, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.op.result.type.shape[1:]


@dataclass(frozen=True)
class Lowered:
    """The graph as layers, in topological order, plus who consumes each population."""

    layers: tuple[Layer, ...]

    @cached_property
    def by_op(self) -> dict[int, Layer]:
        return {id(layer.op): layer for layer in self.layers}

    def source(self, proj: Projection) -> Layer:
        return self.by_op[id(through_views(proj.op.inputs[0]).owner)]

    @cached_property
    def consumers(self) -> dict[int, list[tuple[Projection, Layer]]]:
        """id(population op) → [(projection, consuming layer)] for on-chip consumers."""
        out: dict[int, list[tuple[Projection, Layer]]] = {id(x.op): [] for x in self.layers}
        for layer in self.layers:
            if layer.role == "chip":
                for p in layer.projections:
                    out[id(self.source(p).op)].append((p, layer))
        return out

    def chip_layers(self) -> list[Layer]:
        return [x for x in self.layers if x.role == "chip"]


def _padding_search(kind: str, ks: tuple[int, int], strides: tuple[int, int],
                    pads: tuple[int, int, int, int], n_in: tuple[int, int],
                    n_out: tuple[int, int]) -> tuple[str, list[tuple[int, int]]] | None:
    """A nengo padding mode and, per axis, (leading, trailing) zero taps that make nengo's
    geometry equal to ONNX's (input i reaches output o through the same taps), or None."""
    for mode in ("valid", "same"):
        found = []
        for a in range(2):
            k, s, lo, ni, no = ks[a], strides[a], pads[a], n_in[a], n_out[a]
            for lead, trail in itertools.product(range(2 * k + 2 * s + 2), repeat=2):
                kk = k + lead + trail
                if kind == "conv":
                    ok_out = (-(-(ni - kk + 1) // s) if mode == "valid" else -(-ni // s)) == no
                    pad = 0 if mode == "valid" else max((no - 1) * s + kk - ni, 0) // 2
                    # ONNX: input o*s - lo + t; nengo: o*s - pad + (t + lead)
                    if ok_out and ni >= (kk if mode == "valid" else 1) and pad - lead == lo:
                        found.append((lead, trail))
                        break
                else:
                    fwd = -(-(no - kk + 1) // s) if mode == "valid" else -(-no // s)
                    pad = 0 if mode == "valid" else -(
                        min(max(no + kk - 1 - ((ni - 1) * s + 1), 0), (kk - 1) * 2) // 2)
                    # ONNX: output i*s - lo + t; nengo: i*s + pad + (t + lead)
                    if fwd == ni and no >= (kk if mode == "valid" else 1) and pad + lead == -lo:
                        found.append((lead, trail))
                        break
            else:
                break
        if len(found) == 2:
            return mode, found
    return None


PROJECTIONS: OpTable[Callable[[Op, Graph], Projection]] = OpTable("Loihi projection")


@PROJECTIONS.register(Conv2d, ConvTranspose2d)
def _conv_projection(op: Op, graph: Graph) -> Projection:
    """Conv2d / ConvTranspose2d → a nengo-geometry projection (kernel (kh, kw, ci, co))."""
    a = op.attrs
    w = graph.weights[a.weight].astype(np.float64)
    in_shape, out_shape = op.inputs[0].type.shape[1:], op.result.type.shape[1:]
    transpose = isinstance(op, ConvTranspose2d)
    if transpose:  # (ci, co/g, kh, kw) → dense (ci, co, kh, kw)
        ci, cog = w.shape[:2]
        full = np.zeros((ci, cog * a.groups, *w.shape[2:]))
        per = ci // a.groups
        for g in range(a.groups):
            full[g * per:(g + 1) * per, g * cog:(g + 1) * cog] = w[g * per:(g + 1) * per]
        kernel = full.transpose(2, 3, 0, 1)
    else:  # (co, ci/g, kh, kw) → dense (co, ci, kh, kw)
        co, cig = w.shape[:2]
        full = np.zeros((co, cig * a.groups, *w.shape[2:]))
        per = co // a.groups
        for g in range(a.groups):
            full[g * per:(g + 1) * per, g * cig:(g + 1) * cig] = w[g * per:(g + 1) * per]
        kernel = full.transpose(2, 3, 1, 0)
    if a.dilations != (1, 1):
        dh, dw = a.dilations
        kh, kw = kernel.shape[:2]
        dil = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1, *kernel.shape[2:]))
        dil[::dh, ::dw] = kernel
        kernel = dil
    found = _padding_search("transpose" if transpose else "conv", kernel.shape[:2],
                            a.strides, a.pads, in_shape[1:], out_shape[1:])
    if found is None:
        raise SnnccError(
            f"{op.describe()}: nengo-loihi convolutions cannot reproduce strides "
            f"{list(a.strides)} with pads {list(a.pads)} from {list(in_shape)} to "
            f"{list(out_shape)}; use symmetric 'same' or zero padding in the model")
    mode, ((lh, th), (lw, tw)) = found
    kernel = np.pad(kernel, ((lh, th), (lw, tw), (0, 0), (0, 0)))
    bias = None
    if a.bias is not None:
        bias = np.broadcast_to(graph.weights[a.bias].reshape(-1, 1, 1), out_shape).ravel()
    return Projection(op, "transpose" if transpose else "conv", kernel, a.strides, mode,
                      in_shape, out_shape, bias)


@PROJECTIONS.register(Upsample)
def _upsample_projection(op: Op, graph: Graph) -> Projection:
    """Nearest upsampling as a per-channel transposed kernel of ones."""
    in_shape, out_shape = op.inputs[0].type.shape[1:], op.result.type.shape[1:]
    c = in_shape[0]
    kernel = np.zeros((*op.attrs.scale, c, c))
    kernel[:, :, range(c), range(c)] = 1.0
    return Projection(op, "transpose", kernel, op.attrs.scale, "valid", in_shape, out_shape,
                      None)


@PROJECTIONS.register(AvgPool2d, SumPool2d)
def _pool_projection(op: Op, graph: Graph) -> Projection:
    """Pooling as a per-channel kernel."""
    a = op.attrs
    in_shape, out_shape = op.inputs[0].type.shape[1:], op.result.type.shape[1:]
    c = in_shape[0]
    if isinstance(op, AvgPool2d) and any(a.pads) and not a.count_include_pad:
        raise SnnccError(f"{op.describe()}: average pooling over padding that is not counted "
                         "has no convolution form on Loihi; use count_include_pad or no pads")
    value = 1.0 / (a.kernel[0] * a.kernel[1]) if isinstance(op, AvgPool2d) else 1.0
    kernel = np.zeros((*a.kernel, c, c))
    kernel[:, :, range(c), range(c)] = value
    found = _padding_search("conv", a.kernel, a.strides, a.pads, in_shape[1:], out_shape[1:])
    if found is None:
        raise SnnccError(f"{op.describe()}: pooling with pads {list(a.pads)} has no nengo form")
    mode, ((lh, th), (lw, tw)) = found
    kernel = np.pad(kernel, ((lh, th), (lw, tw), (0, 0), (0, 0)))
    return Projection(op, "conv", kernel, a.strides, mode, in_shape, out_shape, None)


@PROJECTIONS.register(Dense)
def _dense_projection(op: Op, graph: Graph) -> Projection:
    w = graph.weights[op.attrs.weight].astype(np.float64)
    bias = None if op.attrs.bias is None else graph.weights[op.attrs.bias].ravel()
    return Projection(op, "dense", w, (1, 1), "valid", op.inputs[0].type.shape[1:],
                      op.result.type.shape[1:], bias)


@PROJECTIONS.register(SparseMap)
def _sparse_projection(op: Op, graph: Graph) -> Projection:
    a = op.attrs
    bias = None
    out_shape = op.result.type.shape[1:]
    if a.bias is not None:
        b = graph.weights[a.bias]
        bias = (b.reshape(-1, *([1] * (len(out_shape) - 1))) * np.ones(out_shape)).ravel() \
            if b.ndim == 1 else b.ravel()
    return Projection(op, "sparse", graph.weights[a.weight].astype(np.float64), (1, 1),
                      "valid", op.inputs[0].type.shape[1:], out_shape, bias,
                      graph.weights[a.indices].astype(np.int64))


def projection(op: Op, graph: Graph) -> Projection:
    """The synapse op in nengo's geometry (a registered lowering per op kind)."""
    return PROJECTIONS[op](op, graph)


def lower(graph: Graph) -> Lowered:
    """Classify populations and express their synapse ops in nengo's geometry.

    Raises SnnccError naming the op for anything nengo-loihi cannot build."""
    graph_inputs = {id(v) for v in graph.inputs}
    layers: list[Layer] = []
    for op in graph.ops:
        if isinstance(op, SpikeInput):
            layers.append(Layer(op, "input", (), tuple(op.inputs)))
            continue
        if not isinstance(op, Population):
            continue
        projections: list[Projection] = []
        host: list[Op | Value] = []
        for v in op.inputs:
            src = v.owner
            pre = through_views(src.inputs[0]) if src is not None and src in PROJECTIONS else None
            if id(v) in graph_inputs or (pre is not None and id(pre) in graph_inputs):
                host.append(v if id(v) in graph_inputs else src)
            elif pre is not None and isinstance(pre.owner, SpikeSource):
                projections.append(projection(src, graph))
            else:
                what = src.name if src is not None else "a value"
                raise SnnccError(
                    f"{op.describe()}: its input %{v.name} comes from {what}, which the Loihi "
                    "target cannot build: population inputs must be synapse ops "
                    "(syn.conv2d, syn.conv_transpose2d, syn.dense, syn.sparse, pooling, "
                    "upsampling) "
                    "reading spikes or a graph input; run the spiking conversion passes")
        role: Role = "readout" if isinstance(op, Readout) else "chip"
        layers.append(Layer(op, role, tuple(projections), tuple(host)))
    if not any(x.role == "chip" for x in layers):
        raise SnnccError(f"graph @{graph.name} has no spiking population to put on chip; "
                         "run convert-activations first")
    return Lowered(tuple(layers))
