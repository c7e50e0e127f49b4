"""Linear maps between populations, and how two of them compose into one (for fuse-linear).

Every linear analog op is read as one of four shapes of map, with dense (groups = 1,
dilation = 1) kernels: a convolution, a transposed convolution, a dense layer, or a sparse
map (`syn.sparse`: COO entries over the flattened per-image tensors). Average
and sum pooling are convolutions with diagonal kernels, nearest upsampling is a transposed
convolution with a diagonal kernel of ones, a constant per-channel affine is a 1x1
convolution. Biases are kept apart (see `fuse_linear.expand`) and pushed through maps with
`apply`, so zero padding at the borders is respected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops import (
    AffineConst,
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    SparseMap,
    SumPool2d,
    Upsample,
)
from snncc.ir.ops.common import pooled_size

Kind = Literal["identity", "conv", "convT", "dense", "sparse"]
Pair = tuple[int, int]
Quad = tuple[int, int, int, int]


class NotComposable(SnnccError):
    """Two linear ops that no single synapse op can express; the message names both."""


@dataclass(frozen=True)
class LinMap:
    """A bias-free linear map from a (C, H, W) or (F,) tensor to another.

    Weight layouts follow the IR: conv (out, in, kh, kw), convT (in, out, kh, kw),
    dense (out, in), sparse (nnz,) with `indices` (nnz, 2) [output, input] flat indices.
    `ops` are the IR ops it was made from (for locations and messages).
    """

    kind: Kind
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    strides: Pair = (1, 1)
    pads: Quad = (0, 0, 0, 0)
    output_padding: Pair = (0, 0)
    ops: tuple[Op, ...] = ()
    indices: np.ndarray | None = None

    def describe(self) -> str:
        return " → ".join(f"{op.name} '%{op.result.name}'" for op in self.ops) or "identity"


def identity(shape: tuple[int, ...]) -> LinMap:
    return LinMap("identity", shape, shape)


def _dilate(w: np.ndarray, dilations: Pair) -> np.ndarray:
    """A kernel with zeros between its taps: the same map as `dilations` on `w`."""
    if dilations == (1, 1):
        return w
    kh, kw = w.shape[2:]
    out = np.zeros((*w.shape[:2], (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1),
                   w.dtype)
    out[:, :, ::dilations[0], ::dilations[1]] = w
    return out


def ungroup(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped kernel as the equivalent block-diagonal kernel with groups = 1.

    Works for both layouts: conv (out, in/g) and convT (in, out/g) — the first axis is
    split into the groups, the second is widened.
    """
    if groups == 1:
        return w
    a, b = w.shape[:2]
    full = np.zeros((a, b * groups, *w.shape[2:]), w.dtype)
    per = a // groups
    for g in range(groups):
        full[g * per:(g + 1) * per, g * b:(g + 1) * b] = w[g * per:(g + 1) * per]
    return full


def _diagonal(channels: int, kernel: Pair, value: float) -> np.ndarray:
    w = np.zeros((channels, channels, *kernel), np.float64)
    w[np.arange(channels), np.arange(channels)] = value
    return w


def of_op(graph: Graph, op: Op) -> tuple[LinMap, np.ndarray | None]:
    """The bias-free map an op computes, and its bias (per channel or per-image shape)."""
    in_shape, out_shape = op.inputs[0].type.shape[1:], op.result.type.shape[1:]
    a = op.attrs
    bias = None
    if isinstance(op, Conv2d):
        w = _dilate(ungroup(graph.weights[a.weight].astype(np.float64), a.groups),
                    a.dilations)
        m = LinMap("conv", in_shape, out_shape, w, a.strides, a.pads, ops=(op,))
        bias = None if a.bias is None else graph.weights[a.bias]
    elif isinstance(op, ConvTranspose2d):
        w = _dilate(ungroup(graph.weights[a.weight].astype(np.float64), a.groups),
                    a.dilations)
        m = LinMap("convT", in_shape, out_shape, w, a.strides, a.pads, a.output_padding, (op,))
        bias = None if a.bias is None else graph.weights[a.bias]
    elif isinstance(op, (AvgPool2d, SumPool2d)):
        avg = isinstance(op, AvgPool2d)
        if avg and any(a.pads) and not a.count_include_pad:
            raise NotComposable(f"{op.describe()} pads "
                                "without counting the padding, so its divisor changes at the "
                                "borders and it is no convolution; use count_include_pad or "
                                "no padding")
        floor_shape = [pooled_size(n, k, s, lo, hi, False) for n, k, s, lo, hi in zip(
            in_shape[1:], a.kernel, a.strides, a.pads[:2], a.pads[2:], strict=True)]
        if list(out_shape[1:]) != floor_shape:
            raise NotComposable(f"{op.describe()} uses "
                                "ceil_mode with a partial last window, which no convolution "
                                "computes; export the model without ceil_mode")
        value = 1.0 / (a.kernel[0] * a.kernel[1]) if avg else 1.0
        m = LinMap("conv", in_shape, out_shape, _diagonal(in_shape[0], a.kernel, value),
                   a.strides, a.pads, ops=(op,))
    elif isinstance(op, Upsample):
        m = LinMap("convT", in_shape, out_shape, _diagonal(in_shape[0], a.scale, 1.0),
                   a.scale, ops=(op,))
    elif isinstance(op, SparseMap):
        m = LinMap("sparse", in_shape, out_shape, graph.weights[a.weight].astype(np.float64),
                   ops=(op,), indices=graph.weights[a.indices].astype(np.int64))
        bias = None if a.bias is None else graph.weights[a.bias]
    elif isinstance(op, AffineConst):
        m, bias = _affine(graph, op)
    elif isinstance(op, Dense):
        m = LinMap("dense", in_shape, out_shape,
                   graph.weights[a.weight].astype(np.float64), ops=(op,))
        bias = None if a.bias is None else graph.weights[a.bias]
    else:
        raise NotComposable(f"{op.describe()} is not a "
                            "linear op fuse-linear can compose")
    return m, None if bias is None else np.asarray(bias, np.float64)


def _affine(graph: Graph, op: Op) -> tuple[LinMap, np.ndarray | None]:
    """x * scale + offset with a per-channel scale: a diagonal 1x1 conv (or dense) + bias."""
    shape = op.inputs[0].type.shape
    channels = shape[1]
    scale = np.ones(channels)
    if op.attrs.scale is not None:
        full = np.broadcast_to(graph.weights[op.attrs.scale], shape)[0].reshape(channels, -1)
        if not np.all(full == full[:, :1]):
            raise NotComposable(f"{op.describe()} scales "
                                "positions differently, which no convolution computes")
        scale = full[:, 0].astype(np.float64)
    bias = None
    if op.attrs.offset is not None:
        bias = np.broadcast_to(graph.weights[op.attrs.offset], shape)[0].astype(np.float64)
    per_image = shape[1:]
    if len(shape) == 2:
        return LinMap("dense", per_image, per_image, np.diag(scale), ops=(op,)), bias
    if len(shape) != 4:
        raise NotComposable(f"{op.describe()} on a rank-"
                            f"{len(shape)} tensor cannot be composed")
    w = np.zeros((channels, channels, 1, 1))
    w[np.arange(channels), np.arange(channels), 0, 0] = scale
    return LinMap("conv", per_image, per_image, w, ops=(op,)), bias


def _fail(outer: LinMap, inner: LinMap, why: str) -> NotComposable:
    first = (inner.ops or outer.ops)[0]
    return NotComposable(
        f"{first.loc.describe()}: cannot compose [{inner.describe()}] with "
        f"[{outer.describe()}] into one projection: {why}; put a ReLU between them so each "
        "becomes its own population, or change the model")


def _conv_conv(b: LinMap, a: LinMap) -> LinMap:
    ka, kb = a.weight.shape[2:], b.weight.shape[2:]
    size, mid, out = a.in_shape[1:], a.out_shape[1:], b.out_shape[1:]
    kc, sc, pc_lo, pc_hi = [], [], [], []
    for i in range(2):
        sa, sb = a.strides[i], b.strides[i]
        pa_lo, pb_lo, pb_hi = a.pads[i], b.pads[i], b.pads[i + 2]
        if pb_lo > 0 and ka[i] > sa + pa_lo:
            raise _fail(b, a, "the outer op zero-pads where the inner op's windows overlap the "
                        "image, so the border is not a convolution of the input")
        reads_to = (out[i] - 1) * sb - pb_lo + kb[i] - 1
        if pb_hi > 0 and reads_to >= mid[i] and mid[i] * sa - pa_lo < size[i]:
            raise _fail(b, a, "the outer op zero-pads past the end where the inner op's "
                        "windows still cover the image")
        k = ka[i] + (kb[i] - 1) * sa
        s = sa * sb
        lo = pa_lo + pb_lo * sa
        hi = max(0, (out[i] - 1) * s - lo + k - 1 - (size[i] - 1))
        if pooled_size(size[i], k, s, lo, hi, False) != out[i]:
            raise _fail(b, a, "the composed convolution would not keep the output size")
        kc.append(k), sc.append(s), pc_lo.append(lo), pc_hi.append(hi)
    w = np.zeros((b.weight.shape[0], a.weight.shape[1], *kc))
    for vy in range(kb[0]):
        for vx in range(kb[1]):
            y, x = vy * a.strides[0], vx * a.strides[1]
            w[:, :, y:y + ka[0], x:x + ka[1]] += np.einsum("om,mihw->oihw",
                                                           b.weight[:, :, vy, vx], a.weight)
    return LinMap("conv", a.in_shape, b.out_shape, w, (sc[0], sc[1]),
                  (pc_lo[0], pc_lo[1], pc_hi[0], pc_hi[1]), ops=a.ops + b.ops)


def _conv_convt(b: LinMap, a: LinMap) -> LinMap:
    if b.strides != (1, 1):
        raise _fail(b, a, "a strided convolution after a transposed one is no single "
                    "transposed convolution")
    if any(a.pads):
        raise _fail(b, a, "the transposed convolution crops its output (pads), so the "
                    "composed kernel would reach the cropped border")
    ka, kb = a.weight.shape[2:], b.weight.shape[2:]
    pads = tuple(kb[i % 2] - 1 - b.pads[i] for i in range(4))
    if min(pads) < 0:
        raise _fail(b, a, "the convolution pads more than its kernel reaches")
    w = np.zeros((a.weight.shape[0], b.weight.shape[0], ka[0] + kb[0] - 1, ka[1] + kb[1] - 1))
    for vy in range(kb[0]):
        for vx in range(kb[1]):
            y, x = kb[0] - 1 - vy, kb[1] - 1 - vx
            w[:, :, y:y + ka[0], x:x + ka[1]] += np.einsum("imhw,om->iohw", a.weight,
                                                           b.weight[:, :, vy, vx])
    out = tuple(a.strides[i] * (a.in_shape[1 + i] - 1) + a.output_padding[i] + w.shape[2 + i]
                - pads[i] - pads[i + 2] for i in range(2))
    if out != tuple(b.out_shape[1:]):
        raise _fail(b, a, "the composed transposed convolution would not keep the output size")
    return LinMap("convT", a.in_shape, b.out_shape, w, a.strides, pads,  # type: ignore[arg-type]
                  a.output_padding, a.ops + b.ops)


def _crop_correction(b: LinMap, a: LinMap) -> LinMap:
    """What the conv `b` reads of its zero padding where the transposed conv `a` cropped
    nonzero values (its pads): −(b's taps on a's cropped border), as a sparse map. Added to
    the composed transposed conv (which reads those values), it gives `b` after `a`."""
    c_in, c_out = a.in_shape[0], b.out_shape[0]
    per_axis = []
    for i in range(2):
        n_in, n_mid, n_out = a.in_shape[1 + i], a.out_shape[1 + i], b.out_shape[1 + i]
        ka, kb = a.weight.shape[2 + i], b.weight.shape[2 + i]
        inp, ta, out, tb = np.meshgrid(np.arange(n_in), np.arange(ka), np.arange(n_out),
                                       np.arange(kb), indexing="ij")
        mid = inp * a.strides[i] - a.pads[i] + ta  # the cropped output a writes
        ok = (out == mid + b.pads[i] - tb) & (out >= 0)
        cropped = (mid < 0) | (mid >= n_mid)
        per_axis.append([arr[ok] for arr in (inp, ta, out, tb, cropped)])
    (iy, tay, oy, tby, cy), (ix, tax, ox, tbx, cx) = per_axis
    pairs = np.nonzero(cy[:, None] | cx[None, :])
    k = np.einsum("ocyx,icuv->uvyxoi", b.weight, a.weight)  # (ka, ka, kb, kb, C_out, C_in)
    y, x = pairs
    block = -k[tay[y], tax[x], tby[y], tbx[x]]  # (pairs, C_out, C_in)
    n_pix_out, n_pix_in = b.out_shape[1] * b.out_shape[2], a.in_shape[1] * a.in_shape[2]
    opix, ipix = oy[y] * b.out_shape[2] + ox[x], iy[y] * a.in_shape[2] + ix[x]
    rows = opix[:, None, None] + np.arange(c_out)[None, :, None] * n_pix_out
    cols = ipix[:, None, None] + np.arange(c_in)[None, None, :] * n_pix_in
    rows, cols = np.broadcast_arrays(rows, cols, block)[:2]
    values, indices = coalesce(rows.ravel(), cols.ravel(), block.ravel(), c_in * n_pix_in)
    return LinMap("sparse", a.in_shape, b.out_shape, values, ops=a.ops + b.ops,
                  indices=indices)


def _conv_after_cropped_convt(b: LinMap, a: LinMap) -> list[LinMap]:
    """A conv after a transposed conv that crops (pads): the transposed conv composed
    with `b` as if nothing were cropped, plus the sparse border correction."""
    if b.strides != (1, 1):
        raise _fail(b, a, "a strided convolution after a transposed one is no single "
                    "transposed convolution")
    full = tuple(a.strides[i] * (a.in_shape[1 + i] - 1) + a.output_padding[i]
                 + a.weight.shape[2 + i] for i in range(2))
    uncropped = replace(a, out_shape=(a.out_shape[0], *full), pads=(0, 0, 0, 0))
    shifted = replace(b, in_shape=uncropped.out_shape,
                      pads=tuple(b.pads[i] - a.pads[i] for i in range(4)))
    band = _conv_convt(shifted, uncropped)
    band = replace(band, ops=a.ops + b.ops)
    fix = _crop_correction(b, a)
    return [band, fix] if len(fix.weight) else [band]


def _pointwise(m: LinMap) -> bool:
    return (m.kind == "conv" and m.weight.shape[2:] == (1, 1) and m.strides == (1, 1)
            and not any(m.pads))


def compose_terms(outer: LinMap, inner: LinMap) -> list[LinMap]:
    """Maps that sum to `outer` after `inner`: one, or a transposed conv and its sparse
    border correction when a conv reads past the border a transposed conv cropped."""
    if outer.kind == "conv" and inner.kind == "convT" and any(inner.pads):
        return _conv_after_cropped_convt(outer, inner)
    return [compose(outer, inner)]


def compose(outer: LinMap, inner: LinMap) -> LinMap:
    """The single map equal to `outer` after `inner`; NotComposable names both otherwise."""
    if inner.kind == "identity":
        return outer
    if outer.kind == "identity":
        return inner
    if outer.kind == "conv" and inner.kind == "conv":
        return _conv_conv(outer, inner)
    if outer.kind == "conv" and inner.kind == "convT":
        return _conv_convt(outer, inner)
    if outer.kind == "convT" and _pointwise(inner):
        w = np.einsum("mi,mohw->iohw", inner.weight[:, :, 0, 0], outer.weight)
        return replace(outer, in_shape=inner.in_shape, weight=w, ops=inner.ops + outer.ops)
    if inner.kind == "sparse" and outer.kind in ("conv", "convT", "sparse"):
        return _after_sparse(outer, inner)
    if outer.kind == "sparse" and _pointwise(inner):
        return _sparse_after_pointwise(outer, inner)
    if outer.kind == "dense" and inner.kind == "dense":
        return replace(outer, in_shape=inner.in_shape, weight=outer.weight @ inner.weight,
                       ops=inner.ops + outer.ops)
    raise _fail(outer, inner, f"a {outer.kind} after a {inner.kind} is not one linear op of "
                "a kind the chip runs")


def coalesce(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_in: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """COO entries with repeated (row, col) pairs summed and zeros dropped, sorted:
    (values, indices (nnz, 2))."""
    keys, inverse = np.unique(rows * n_in + cols, return_inverse=True)
    summed = np.bincount(inverse.ravel(), values, minlength=len(keys))
    keep = summed != 0
    keys = keys[keep]
    return summed[keep], np.stack([keys // n_in, keys % n_in], axis=1)


def _tap_targets(m: LinMap, mid: np.ndarray, ty: int, tx: int) -> tuple[np.ndarray, ...]:
    """For flat input indices `mid` of the conv / convT `m` and tap (ty, tx): which reach
    an output pixel (mask), the output pixel's flat index (per channel) and the channel."""
    _, h, w = m.in_shape
    _, ho, wo = m.out_shape
    c, y, x = mid // (h * w), (mid // w) % h, mid % w
    (sh, sw), (ph, pw) = m.strides, m.pads[:2]
    if m.kind == "conv":  # output o reads input o·s − p + t
        ny, nx = y + ph - ty, x + pw - tx
        oy, ox = ny // sh, nx // sw
        ok = (ny % sh == 0) & (nx % sw == 0)
    else:  # input i writes output i·s − p + t
        oy, ox = y * sh - ph + ty, x * sw - pw + tx
        ok = np.ones(len(mid), bool)
    ok &= (oy >= 0) & (oy < ho) & (ox >= 0) & (ox < wo)
    return ok, oy * wo + ox, c


def _after_sparse(outer: LinMap, inner: LinMap) -> LinMap:
    """A conv / convT / sparse map after a sparse one: sparse (each inner entry spreads
    through the outer map's taps)."""
    n_in = int(np.prod(inner.in_shape))
    mid, src, v = inner.indices[:, 0], inner.indices[:, 1], inner.weight
    rows, cols, vals = [], [], []
    if outer.kind == "sparse":
        order = np.argsort(outer.indices[:, 1], kind="stable")
        o_in = outer.indices[order, 1]
        lo, hi = np.searchsorted(o_in, mid, "left"), np.searchsorted(o_in, mid, "right")
        for k in np.nonzero(hi > lo)[0]:
            sel = order[lo[k]:hi[k]]
            rows.append(outer.indices[sel, 0])
            cols.append(np.full(len(sel), src[k]))
            vals.append(outer.weight[sel] * v[k])
    else:
        w = outer.weight if outer.kind == "conv" else outer.weight.transpose(1, 0, 2, 3)
        n_pix = int(np.prod(outer.out_shape[1:]))
        co = np.arange(w.shape[0])[:, None] * n_pix
        for ty in range(w.shape[2]):
            for tx in range(w.shape[3]):
                ok, pix, c = _tap_targets(outer, mid, ty, tx)
                tap = w[:, c[ok], ty, tx] * v[ok][None]  # (C_out, entries)
                rows.append((co + pix[ok][None]).ravel())
                cols.append(np.broadcast_to(src[ok], tap.shape).ravel())
                vals.append(tap.ravel())
    if not rows:
        return replace(outer, kind="sparse", in_shape=inner.in_shape, weight=np.zeros(0),
                       indices=np.zeros((0, 2), np.int64), ops=inner.ops + outer.ops)
    values, indices = coalesce(np.concatenate(rows), np.concatenate(cols),
                               np.concatenate(vals), n_in)
    return LinMap("sparse", inner.in_shape, outer.out_shape, values, ops=inner.ops + outer.ops,
                  indices=indices)


def _sparse_after_pointwise(outer: LinMap, inner: LinMap) -> LinMap:
    """A sparse map after a 1x1 convolution: each entry reads every input channel."""
    c_in = inner.in_shape[0]
    n_pix = int(np.prod(inner.in_shape[1:]))
    c, pix = outer.indices[:, 1] // n_pix, outer.indices[:, 1] % n_pix
    p = inner.weight[:, :, 0, 0]  # (C_mid, C_in)
    vals = outer.weight[:, None] * p[c]  # (entries, C_in)
    rows = np.broadcast_to(outer.indices[:, :1], vals.shape)
    cols = np.arange(c_in)[None] * n_pix + pix[:, None]
    values, indices = coalesce(rows.ravel(), cols.ravel(), vals.ravel(), c_in * n_pix)
    return LinMap("sparse", inner.in_shape, outer.out_shape, values, ops=inner.ops + outer.ops,
                  indices=indices)


def apply(m: LinMap, x: np.ndarray) -> np.ndarray:
    """`m` applied to one per-image tensor (used to push biases through maps)."""
    from snncc.ir.interp import kernels

    if m.kind == "identity":
        return x
    if m.kind == "dense":
        return m.weight @ x
    if m.kind == "sparse":
        flat = np.broadcast_to(x, m.in_shape).ravel()
        out = np.bincount(m.indices[:, 0], m.weight * flat[m.indices[:, 1]],
                          minlength=int(np.prod(m.out_shape)))
        return out.reshape(m.out_shape)
    batch = np.broadcast_to(x, m.in_shape)[None]
    if m.kind == "conv":
        return kernels.conv2d(batch, m.weight, None, m.strides, m.pads)[0].astype(np.float64)
    return kernels.conv_transpose2d(batch, m.weight, None, m.strides, m.pads,
                                    output_padding=m.output_padding)[0].astype(np.float64)


def as_weighted(m: LinMap) -> LinMap:
    """An identity as an explicit 1x1 convolution (or dense) with an identity kernel."""
    if m.kind != "identity":
        return m
    n = m.in_shape[0]
    if len(m.in_shape) == 1:
        return LinMap("dense", m.in_shape, m.out_shape, np.eye(n))
    return LinMap("conv", m.in_shape, m.out_shape, np.eye(n)[:, :, None, None])


def input_slice(m: LinMap, start: int, stop: int, part_shape: tuple[int, ...]) -> LinMap:
    """The part of `m` that reads input channels [start, stop) (a concat's part)."""
    if m.kind == "sparse":
        n_pix = int(np.prod(part_shape[1:]))
        cols = m.indices[:, 1]
        keep = (cols >= start * n_pix) & (cols < stop * n_pix)
        indices = np.stack([m.indices[keep, 0], cols[keep] - start * n_pix], axis=1)
        return replace(m, in_shape=part_shape, weight=m.weight[keep], indices=indices)
    w = m.weight[start:stop] if m.kind == "convT" else m.weight[:, start:stop]
    return replace(m, in_shape=part_shape, weight=w)


def output_embed(m: LinMap, start: int, out_shape: tuple[int, ...]) -> LinMap:
    """`m` writing output channels [start, start + its channels) of a wider output."""
    m = as_weighted(m)
    w = m.weight
    if m.kind == "sparse":
        shift = start * int(np.prod(m.out_shape[1:]))
        return replace(m, out_shape=out_shape,
                       indices=m.indices + np.array([[shift, 0]]))
    if m.kind == "convT":
        full = np.zeros((w.shape[0], out_shape[0], *w.shape[2:]))
        full[:, start:start + w.shape[1]] = w
    else:
        full = np.zeros((out_shape[0], *w.shape[1:]))
        full[start:start + w.shape[0]] = w
    return replace(m, out_shape=out_shape, weight=full)
