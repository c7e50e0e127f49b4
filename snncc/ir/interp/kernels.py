"""Vectorized float32 numpy kernels, one per analog op kind, batch first (NCHW).

Each kernel takes plain arrays and parameters (not IR attributes), so the analog
interpreter and the spiking simulator share them. Inputs may be float32, or bool / integer
spike arrays (converted to float32); results are float32. Layouts and attribute meanings
are those of the IR (see `snncc.ir.ops.analog`): conv weights (C_out, C_in/groups, kH, kW),
transposed conv weights (C_in, C_out/groups, kH, kW), pads (top, left, bottom, right),
dense weights (out, in).

Convolutions loop over the kH×kW kernel taps and do one batched matrix product per tap
(shift-and-accumulate): memory stays at one tap's worth of input instead of a full im2col
matrix, and each product still runs in BLAS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from snncc.ir.ops.common import pooled_size

Pair = tuple[int, int]
Quad = tuple[int, int, int, int]


def as_f32(x: np.ndarray) -> np.ndarray:
    """`x` as float32, without a copy when it already is."""
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _bias_shape(bias: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel bias (C,) reshaped to broadcast over axis 1; a full per-image bias as is."""
    return bias.reshape((-1,) + (1,) * (ndim - 2)) if bias.ndim == 1 else bias


def _pad_hw(x: np.ndarray, pads: Quad, extra: Pair = (0, 0)) -> np.ndarray:
    """Zero-pad the two spatial axes; `extra` adds more at the bottom / right."""
    top, left, bottom, right = pads
    if not any(pads) and not any(extra):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom + extra[0]), (left, right + extra[1])))


def _per_tap(weight: np.ndarray) -> np.ndarray:
    """(G, A, B, kH, kW) → contiguous float32 (kH, kW, G, A, B): one matrix stack per tap."""
    return np.ascontiguousarray(as_f32(weight).transpose(3, 4, 0, 1, 2))


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    strides: Pair = (1, 1),
    pads: Quad = (0, 0, 0, 0),
    dilations: Pair = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """2-D cross-correlation (ONNX Conv)."""
    x = _pad_hw(as_f32(x), pads)
    n, _, hp, wp = x.shape
    o, cg, kh, kw = weight.shape
    (sh, sw), (dh, dw), g = strides, dilations, groups
    ho = (hp - (kh - 1) * dh - 1) // sh + 1
    wo = (wp - (kw - 1) * dw - 1) // sw + 1
    xg = x.reshape(n, g, cg, hp, wp)
    # (kH, kW, G, O/G, C/G), contiguous per tap: matmul only uses BLAS on contiguous operands
    wg = _per_tap(weight.reshape(g, o // g, cg, kh, kw))
    out = np.zeros((n, g, o // g, ho * wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            tap = xg[:, :, :, i * dh: i * dh + sh * (ho - 1) + 1: sh,
                     j * dw: j * dw + sw * (wo - 1) + 1: sw]
            out += np.matmul(wg[i, j], tap.reshape(n, g, cg, ho * wo))
    out = out.reshape(n, o, ho, wo)
    if bias is not None:
        out += _bias_shape(as_f32(bias), 4)
    return out


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    strides: Pair = (1, 1),
    pads: Quad = (0, 0, 0, 0),
    dilations: Pair = (1, 1),
    output_padding: Pair = (0, 0),
    groups: int = 1,
) -> np.ndarray:
    """2-D transposed convolution (ONNX ConvTranspose with explicit pads).

    Every tap scatters the whole input, scaled, onto a strided grid of the uncropped output;
    the pads are then cropped away (output_padding extends the bottom / right).
    """
    x = as_f32(x)
    n, c, h, w = x.shape
    _, og, kh, kw = weight.shape
    (sh, sw), (dh, dw), g = strides, dilations, groups
    cg = c // g
    full_h = sh * (h - 1) + (kh - 1) * dh + 1 + output_padding[0]
    full_w = sw * (w - 1) + (kw - 1) * dw + 1 + output_padding[1]
    full = np.zeros((n, g * og, full_h, full_w), np.float32)
    xg = x.reshape(n, g, cg, h * w)
    wg = _per_tap(weight.reshape(g, cg, og, kh, kw).transpose(0, 2, 1, 3, 4))
    for i in range(kh):
        for j in range(kw):
            contrib = np.matmul(wg[i, j], xg).reshape(n, g * og, h, w)
            full[:, :, i * dh: i * dh + sh * (h - 1) + 1: sh,
                 j * dw: j * dw + sw * (w - 1) + 1: sw] += contrib
    top, left, bottom, right = pads
    out = full[:, :, top: full_h - bottom, left: full_w - right]
    if bias is not None:
        out = out + _bias_shape(as_f32(bias), 4)
    return np.ascontiguousarray(out)


def _windows(x: np.ndarray, kernel: Pair, strides: Pair) -> np.ndarray:
    """Strided view (N, C, H_out, W_out, kH, kW) of the pooling windows."""
    view = sliding_window_view(x, kernel, axis=(2, 3))
    return view[:, :, :: strides[0], :: strides[1]]


def _pool_geometry(
    size: tuple[int, int], kernel: Pair, strides: Pair, pads: Quad, ceil_mode: bool
) -> tuple[Pair, Pair]:
    """Output size, and the zeros to add beyond the bottom / right pads (ceil mode)."""
    out, extra = [], []
    for axis in range(2):
        lo, hi = pads[axis], pads[axis + 2]
        length = pooled_size(size[axis], kernel[axis], strides[axis], lo, hi, ceil_mode)
        out.append(length)
        needed = (length - 1) * strides[axis] + kernel[axis]
        extra.append(max(0, needed - (size[axis] + lo + hi)))
    return (out[0], out[1]), (extra[0], extra[1])


def sum_pool2d(
    x: np.ndarray, kernel: Pair, strides: Pair = (1, 1), pads: Quad = (0, 0, 0, 0)
) -> np.ndarray:
    """Sum over each window (zero padding)."""
    x = as_f32(x)
    (ho, wo), _ = _pool_geometry(x.shape[2:], kernel, strides, pads, False)
    win = _windows(_pad_hw(x, pads), kernel, strides)[:, :, :ho, :wo]
    return win.sum(axis=(4, 5), dtype=np.float32)


def avg_pool2d(
    x: np.ndarray,
    kernel: Pair,
    strides: Pair = (1, 1),
    pads: Quad = (0, 0, 0, 0),
    count_include_pad: bool = False,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Average over each window (ONNX AveragePool).

    The divisor counts the window's elements inside the input, or also those on the
    explicit pads when `count_include_pad`; never the extra cells a ceil-mode window
    reaches beyond the pads.
    """
    x = as_f32(x)
    h, w = x.shape[2:]
    (ho, wo), extra = _pool_geometry((h, w), kernel, strides, pads, ceil_mode)
    sums = _windows(_pad_hw(x, pads, extra), kernel, strides)[:, :, :ho, :wo]
    sums = sums.sum(axis=(4, 5), dtype=np.float32)
    top, left, bottom, right = pads
    if count_include_pad:
        inside = np.ones((1, 1, h + top + bottom, w + left + right), np.float32)
        inside = _pad_hw(inside, (0, 0, 0, 0), extra)
    else:
        inside = _pad_hw(np.ones((1, 1, h, w), np.float32), pads, extra)
    counts = _windows(inside, kernel, strides)[:, :, :ho, :wo].sum(axis=(4, 5))
    return sums / counts


def upsample_nearest(x: np.ndarray, scale: Pair) -> np.ndarray:
    """Repeat every pixel scale[0] × scale[1] times."""
    n, c, h, w = x.shape
    sh, sw = scale
    big = np.broadcast_to(as_f32(x)[:, :, :, None, :, None], (n, c, h, sh, w, sw))
    return big.reshape(n, c, h * sh, w * sw)


def concat(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    return np.concatenate([as_f32(x) for x in xs], axis=axis)


def add(xs: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise sum, left to right."""
    out = np.array(xs[0], dtype=np.float32)
    for x in xs[1:]:
        out += x
    return out


def affine(
    x: np.ndarray, scale: np.ndarray | None = None, offset: np.ndarray | None = None
) -> np.ndarray:
    """x * scale + offset with broadcast constants."""
    out = np.array(x, dtype=np.float32)
    if scale is not None:
        out *= as_f32(scale)
    if offset is not None:
        out += as_f32(offset)
    return out


def batchnorm(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    epsilon: float,
) -> np.ndarray:
    """Inference batch normalization over axis 1."""
    x = as_f32(x)
    shape = (-1,) + (1,) * (x.ndim - 2)
    factor = (as_f32(scale) / np.sqrt(as_f32(var) + np.float32(epsilon))).reshape(shape)
    return (x - as_f32(mean).reshape(shape)) * factor + as_f32(bias).reshape(shape)


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x Wᵀ + b with W of shape (out, in)."""
    out = as_f32(x) @ as_f32(weight).T
    if bias is not None:
        out += as_f32(bias)
    return out


def sparse_map(x: np.ndarray, weight: np.ndarray, indices: np.ndarray,
               out_shape: Sequence[int], bias: np.ndarray | None = None) -> np.ndarray:
    """y[n, o] = Σ weight[k] · x[n, i] over the entries k = (o, i) of `indices`, per sample
    (both sides flattened in C order), accumulated in float64."""
    x = as_f32(x)
    n, n_out = len(x), math.prod(out_shape)
    rows, cols = indices[:, 0], indices[:, 1]
    contrib = x.reshape(n, -1)[:, cols] * weight.astype(np.float64)
    slots = (np.arange(n)[:, None] * n_out + rows[None, :]).ravel()
    out = np.bincount(slots, contrib.ravel(), minlength=n * n_out).astype(np.float32)
    out = out.reshape(n, *out_shape)
    if bias is not None:
        out += _bias_shape(as_f32(bias), out.ndim)
    return out


def flatten(x: np.ndarray, axis: int) -> np.ndarray:
    return x.reshape(math.prod(x.shape[:axis]), -1)


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    return x.reshape(tuple(shape))


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, tuple(perm)))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(as_f32(x), np.float32(0))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow for large |x|."""
    return np.exp(-np.logaddexp(np.float32(0), -as_f32(x)))


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = as_f32(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
