"""fuse-linear: one projection from each population to the next, as on the chip.

On Loihi a population's synapses read the spikes of another population; there is nowhere
to hold an intermediate analog tensor. So every chain of linear ops between two
nonlinearities (ReLUs, the graph input, the host's sigmoid/softmax) must become synapse ops
(`syn.conv2d`, `syn.conv_transpose2d`, `syn.dense`) applied directly to the source
populations, summed by `syn.add`:

- avg pool → conv becomes one strided conv (kernel = conv kernel ⊛ pool window);
- a conv after a transposed conv that crops its border (pads) becomes the composed
  transposed conv plus a sparse correction for what the conv's zero padding hides;
- nearest upsample → conv, and conv-transpose → conv, become one transposed conv with a
  larger kernel; through a concat, the consumer conv's kernel is split along its input
  channels first, and each part composes with its own branch;
- a per-channel affine (input normalisation) folds into the next conv;
- a sparse map (`syn.sparse`, bilinear upsampling's border) followed by convolutions stays
  one sparse map (each entry spread through the kernels' taps);
- an add of branches becomes the sum of each branch's composed projection.

Biases of inner ops are pushed through the outer ops with their zero padding, so near the
borders the bias can vary spatially: it is then stored with the full (C, H, W) shape.
Chains that no single synapse op computes exactly (e.g. a padded conv after a padded
conv) are refused with a message naming the ops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Value
from snncc.ir.location import fuse
from snncc.ir.op import Op
from snncc.ir.ops import (
    Add,
    AffineConst,
    AvgPool2d,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Dense,
    SparseMap,
    SumPool2d,
    Upsample,
)
from snncc.ir.ops.kinds import Synapse, View
from snncc.ir.properties import LINEAR_FUSED
from snncc.passes.remove_dead_ops import remove_dead_ops
from snncc.passes.support.linear_maps import (
    LinMap,
    NotComposable,
    apply,
    as_weighted,
    coalesce,
    compose_terms,
    identity,
    input_slice,
    of_op,
    output_embed,
)
from snncc.pipeline.pass_base import Pass, PassContext

LINEAR = (Conv2d, ConvTranspose2d, AvgPool2d, SumPool2d, Upsample, AffineConst, Dense,
          SparseMap)
LINEAR_LIKE = (*LINEAR, Concat, Add, View)  # what a linear chain may pass through


def is_source(v: Value) -> bool:
    """A population, the graph input, or any non-linear result (or a flatten view of one)."""
    op = v.owner
    if op is None:
        return True
    if isinstance(op, View):
        return is_source(op.inputs[0])
    return not isinstance(op, (*LINEAR, Concat, Add))


def _direct(v: Value) -> bool:
    """A synapse op on a source, or a kernel op on a concat of sources (which
    convert-activations splits)."""
    op = v.owner
    if not isinstance(op, Synapse):
        return False
    u = op.inputs[0]
    return is_source(u) or (isinstance(u.owner, Concat) and not isinstance(op, SparseMap)
                            and u.owner.attrs.axis % 4 == 1
                            and all(is_source(p) for p in u.owner.inputs))


def is_normal(v: Value) -> bool:
    """Already one projection per source: nothing for fuse-linear to do."""
    if is_source(v) or _direct(v):
        return True
    return isinstance(v.owner, Add) and all(_direct(u) or is_source(u) for u in v.owner.inputs)


@dataclass
class Expansion:
    """A value as a sum of maps of sources plus a constant (per-image shape, or None)."""

    terms: list[tuple[LinMap, Value]]
    bias: np.ndarray | None


def _full(b: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if b is None:
        return None
    if b.shape == (shape[0],) and len(shape) > 1:
        b = b.reshape(-1, *([1] * (len(shape) - 1)))
    return np.broadcast_to(b, shape).astype(np.float64)


def _add(a: np.ndarray | None, b: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    a, b = _full(a, shape), _full(b, shape)
    return b if a is None else a if b is None else a + b


def expand(graph: Graph, v: Value) -> Expansion:
    """Write `v` as Σ map(source) + bias, composing every chain of linear ops."""
    shape = v.type.shape[1:]
    if is_source(v):
        return Expansion([(identity(shape), v)], None)
    op = v.owner
    assert op is not None
    if isinstance(op, Add):
        terms: list[tuple[LinMap, Value]] = []
        bias = None
        for u in op.inputs:
            e = expand(graph, u)
            terms += e.terms
            bias = _add(bias, e.bias, shape)
        return Expansion(terms, bias)
    if isinstance(op, Concat):
        if op.attrs.axis % len(v.type.shape) != 1:
            raise NotComposable(f"{op.describe()} joins "
                                "along a non-channel axis; only channel concats compose")
        terms, bias, start = [], None, 0
        for u in op.inputs:
            e = expand(graph, u)
            terms += [(output_embed(m, start, shape), src) for m, src in e.terms]
            if e.bias is not None:
                part = np.zeros(shape)
                part[start:start + u.type.shape[1]] = _full(e.bias, u.type.shape[1:])
                bias = _add(bias, part, shape)
            start += u.type.shape[1]
        return Expansion(terms, bias)
    if not isinstance(op, LINEAR):
        raise NotComposable(f"{op.describe()} sits between "
                            "two populations but is not a linear op fuse-linear can compose")
    m, own_bias = of_op(graph, op)
    inner = op.inputs[0]
    parts = [(m, inner)]
    cat = inner.owner
    if isinstance(cat, Concat) and cat.attrs.axis % len(inner.type.shape) == 1:
        parts, start = [], 0
        for u in cat.inputs:
            stop = start + u.type.shape[1]
            parts.append((input_slice(m, start, stop, u.type.shape[1:]), u))
            start = stop
    terms, bias = [], None
    for mk, uk in parts:
        e = expand(graph, uk)
        terms += [(c, src) for t, src in e.terms for c in compose_terms(mk, t)]
        if e.bias is not None:
            bias = _add(bias, apply(mk, e.bias), shape)
    return Expansion(terms, _add(bias, own_bias, shape))


def reduce_bias(b: np.ndarray | None) -> np.ndarray | None:
    """A full (C, H, W) bias that is constant per channel, stored as (C,)."""
    if b is None or b.ndim == 1:
        return b
    flat = b.reshape(b.shape[0], -1)
    return flat[:, 0].copy() if np.all(flat == flat[:, :1]) else b


def build_projection(graph: Graph, m: LinMap, src: Value, bias: np.ndarray | None,
                     before: Op | None, hint: str, loc_from: Op) -> Value:
    """A synapse op computing `m` (plus `bias`) on `src`, inserted before `before`."""
    m = as_weighted(m)
    name = m.ops[-1].result.name if m.ops else hint
    wref = graph.weights.add(f"{name}.weight", m.weight.astype(np.float32))
    b = reduce_bias(bias)
    bref = None if b is None else graph.weights.add(f"{name}.bias", b.astype(np.float32))
    loc = fuse(*(op.loc for op in m.ops)) if m.ops else loc_from.loc
    if m.kind == "conv":
        return graph.add(Conv2d, [src], Conv2d.Attrs(wref, bref, m.strides, m.pads),
                         name=name, loc=loc, before=before)
    if m.kind == "convT":
        attrs = ConvTranspose2d.Attrs(wref, bref, m.strides, m.pads,
                                      output_padding=m.output_padding)
        return graph.add(ConvTranspose2d, [src], attrs, name=name, loc=loc, before=before)
    if m.kind == "sparse":
        iref = graph.weights.add(f"{name}.indices", m.indices.astype(np.int32))
        attrs = SparseMap.Attrs(wref, iref, tuple(m.out_shape), bref)
        return graph.add(SparseMap, [src], attrs, name=name, loc=loc, before=before)
    return graph.add(Dense, [src], Dense.Attrs(wref, bref), name=name, loc=loc, before=before)


def restore_names(graph: Graph, wanted: list[tuple[Value, str]]) -> None:
    """Give rewritten values back the names of the values they replaced, once free."""
    taken = {v.name for v in graph.inputs} | {op.result.name for op in graph.ops}
    for value, name in wanted:
        if name not in taken and value.name != name:
            taken.discard(value.name)
            value.name = name
            taken.add(name)


def merge_sparse(terms: list[tuple[LinMap, Value]]) -> list[tuple[LinMap, Value]]:
    """One sparse map per source: sparse terms that read the same source are summed."""
    out: list[tuple[LinMap, Value]] = []
    first: dict[int, int] = {}
    for m, src in terms:
        if m.kind != "sparse":
            out.append((m, src))
        elif id(src) not in first:
            first[id(src)] = len(out)
            out.append((m, src))
        else:
            k = first[id(src)]
            prev = out[k][0]
            values, indices = coalesce(np.concatenate([prev.indices[:, 0], m.indices[:, 0]]),
                                       np.concatenate([prev.indices[:, 1], m.indices[:, 1]]),
                                       np.concatenate([prev.weight, m.weight]),
                                       int(np.prod(m.in_shape)))
            ops = prev.ops + tuple(op for op in m.ops if op not in prev.ops)
            out[k] = (replace(prev, weight=values, indices=indices, ops=ops), src)
    return out


def _rewrite(graph: Graph, z: Value, before: Op | None, consumer: Op | None,
             wanted: list[tuple[Value, str]]) -> list[str]:
    e = expand(graph, z)
    e = Expansion(merge_sparse(e.terms), e.bias)
    loc_op = consumer or z.owner
    assert loc_op is not None
    values = [build_projection(graph, m, src, e.bias if i == 0 else None, before,
                               z.name, loc_op) for i, (m, src) in enumerate(e.terms)]
    new = values[0] if len(values) == 1 else graph.add(
        Add, values, name=z.name, loc=loc_op.loc, before=before)
    graph.replace_uses(z, new)
    wanted.append((new, z.name))
    return [" → ".join(op.result.name for op in m.ops) or "identity" for m, _ in e.terms]


@dataclass(frozen=True)
class FuseLinear(Pass):
    name = "fuse-linear"
    summary = "compose chains of linear ops into one projection per pair of populations"
    establishes = frozenset({LINEAR_FUSED})

    def ensures(self, graph: Graph) -> str | None:
        ends = [v for op in graph.ops if not isinstance(op, LINEAR_LIKE) for v in op.inputs]
        v = next((v for v in [*ends, *graph.outputs] if not is_normal(v)), None)
        return None if v is None else f"{v.owner.describe()} ends an uncomposed linear chain"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        fused: list[dict[str, object]] = []
        wanted: list[tuple[Value, str]] = []
        try:
            for op in list(graph.ops):
                if isinstance(op, LINEAR_LIKE) or op not in graph.ops:
                    continue
                for z in dict.fromkeys(op.inputs):
                    if not is_normal(z):
                        chains = _rewrite(graph, z, op, op, wanted)
                        fused.append({"into": op.result.name, "projections": chains})
            for z in dict.fromkeys(graph.outputs):
                if not is_normal(z):
                    chains = _rewrite(graph, z, None, None, wanted)
                    fused.append({"into": "output", "projections": chains})
        except NotComposable as err:
            raise SnnccError(f"fuse-linear: {err}") from None
        removed = remove_dead_ops(graph) if fused else 0
        restore_names(graph, wanted)
        ctx.record(self.name, fused=fused, removed_ops=removed)
        return bool(fused)
