"""Synapse ops of the time-batched engine, on many spike frames at once, channels last.

A frame is one image at one step; frames come stacked along axis 0, and a 4-D value's
frames are (frames, H, W, C) — channels last, so that one spike's contribution to a
pixel of the output is one contiguous run of output channels. Each synapse op has two
paths that accumulate the same sums into an output buffer:

- `dense`: the convolution as one big matrix product over all frames (im2col in frame
  blocks of at most `BLOCK_BYTES`, then BLAS);
- `events`: a compiled scatter over the active inputs only, parallel over frames. Where the
  input channels per group are a multiple of 8, a pixel's 8 channels are read as one
  64-bit word: silent words are skipped, and an active word's spike pattern (one byte)
  indexes a table of its summed weights per tap (`byte_table`), so that one row add
  covers all of its spikes (in stride-1 convolutions, one add covers a kernel row's taps
  too: `row_table`); otherwise each spike adds its weights.

`Synapse.run` picks by the density measured on the frames it is given: `events` up to
`EVENT_DENSITY` (per spike) or `BYTE_EVENT_DENSITY` (by bytes: always, as it costs less
than the matrix product even when every input fires). With integer-valued weights
(`loihi` mode) both paths give exactly the reference's sums (the table's entries are exact
sums of integer weights too); with float weights they round differently (summation order).
Threads: BLAS's for `dense`, numba's (`prange` over frames) for `events`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from snncc.ir.dispatch import OpTable
from snncc.ir.op import Op
from snncc.ir.ops import Conv2d, ConvTranspose2d, Dense, SparseMap

BLOCK_BYTES = 64 << 20  # float32 im2col / scatter scratch per frame block
# Up to these shares of active inputs, scatter the events rather than multiply densely:
# per spike (measured crossover, 1-channel 3×3 conv), and by bytes of 8 spikes (measured
# 8-10× faster than the matrix product at every density on the U-Net's layer shapes).
EVENT_DENSITY = 0.7
BYTE_EVENT_DENSITY = 1.0
PACK = np.uint64(0x0102040810204080)  # (word · PACK) >> 56: 8 bytes of 0/1 → 8 bits


@dataclass
class Synapse:
    """One synapse op, its weight in the layout its kernels want."""

    op: Op
    table: np.ndarray | None = None  # per-byte weight sums (`byte_table`), if it has them

    def out_shape(self) -> tuple[int, ...]:
        """Per-frame output shape, channels last."""
        return channels_last(self.op.result.type.shape[1:])

    def run(self, s: np.ndarray, out: np.ndarray, path: str | None = None) -> str:
        """Add the synaptic input of spike frames `s` (uint8) to `out` (float32); return the
        path taken (`path` forces one)."""
        if path is None:
            active = np.count_nonzero(s)
            if not active:
                return "none"
            most = BYTE_EVENT_DENSITY if self.table is not None else EVENT_DENSITY
            path = "events" if active <= most * s.size else "dense"
        (self.events if path == "events" else self.dense)(s, out)
        return path

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def events(self, s: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError


# The `Synapse` subclass of each op class, built as `(op, weight, *connectivity arrays)`.
SYNAPSES: OpTable[Callable[[Op, np.ndarray], Synapse]] = OpTable("fast synapse kernel")


def channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A per-frame (C, H, W) shape as the engine stores it: (H, W, C); others as they are."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else tuple(shape)


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) → (N, H, W, C) view; other ranks unchanged."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N, C, H, W) view; other ranks unchanged."""
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def _frame_blocks(frames: int, bytes_per_frame: int):
    step = max(1, BLOCK_BYTES // max(bytes_per_frame, 1))
    for lo in range(0, frames, step):
        yield slice(lo, min(frames, lo + step))


def _tap_table(size: int, kernel: int, stride: int, pad: int, dilation: int, out: int
               ) -> np.ndarray:
    """table[i, k]: the output index that input index i reaches through tap k of a
    convolution (i = o·stride − pad + k·dilation), or −1: no divisions in the kernel."""
    num = np.arange(size)[:, None] + pad - np.arange(kernel)[None, :] * dilation
    o = num // stride
    return np.where((num >= 0) & (num % stride == 0) & (o < out), o, -1).astype(np.int64)


def _transposed_tap_table(size: int, kernel: int, stride: int, pad: int, dilation: int,
                          out: int) -> np.ndarray:
    """The same for a transposed convolution: o = i·stride + k·dilation − pad, or −1."""
    o = np.arange(size)[:, None] * stride + np.arange(kernel)[None, :] * dilation - pad
    return np.where((o >= 0) & (o < out), o, -1).astype(np.int64)


@nb.njit(cache=True, inline="always")
def _add_row(out, w, og):
    """out[:og] += w[:og]. One plain loop: LLVM's loop vectorizer takes it (with vector
    epilogues for short rows), whereas a fully unrolled block of 8 would need the SLP
    vectorizer, which numba leaves off (NUMBA_SLP_VECTORIZE=0)."""
    for o in range(og):
        out[o] += w[o]


@nb.njit(cache=True, parallel=True)
def _tap_events(s, w, out, ytab, xtab, cg):
    """out[f, oy, ox, g·og:(g + 1)·og] += w[ky, kx, ci] for every spike s[f, iy, ix, ci],
    where oy = ytab[iy, ky] and ox = xtab[ix, kx] (−1: none); g = ci // cg. Convolutions
    and transposed ones differ only in their tables."""
    frames, h, wd, c = s.shape
    kh, kw, _, og = w.shape
    for f in nb.prange(frames):
        for iy in range(h):
            for ix in range(wd):
                pixel = s[f, iy, ix]
                for ci in range(c):
                    if not pixel[ci]:
                        continue
                    g0 = (ci // cg) * og
                    for ky in range(kh):
                        oy = ytab[iy, ky]
                        if oy < 0:
                            continue
                        for kx in range(kw):
                            ox = xtab[ix, kx]
                            if ox >= 0:
                                _add_row(out[f, oy, ox, g0:], w[ky, kx, ci], og)


@nb.njit(cache=True, parallel=True)
def _dense_events(s, w, out):
    """out[f, :] += w[i, :] for every spike s[f, i]."""
    frames, n_in = s.shape
    for f in nb.prange(frames):
        row = out[f]
        for i in range(n_in):
            if s[f, i]:
                _add_row(row, w[i], w.shape[1])


def byte_table(w: np.ndarray, cg: int) -> np.ndarray | None:
    """w (kH, kW, C_in, C_out/groups) → (kH, kW, C_in/8, 256, C_out/groups): per tap and
    byte of 8 input channels, the summed weights of each of the 256 spike patterns (bit b:
    channel 8·byte + b), summed in float64 and rounded once; None unless 8 | C_in/groups
    (a byte must not straddle groups)."""
    kh, kw, c, og = w.shape
    if cg % 8:
        return None
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    table = np.einsum("pb,yxjbo->yxjpo", bits.astype(np.float64),
                      w.reshape(kh, kw, c // 8, 8, og).astype(np.float64))
    return np.ascontiguousarray(table, np.float32)


@nb.njit(cache=True, parallel=True)
def _byte_events(s, table, out, ytab, xtab, cg):
    """`_tap_events` 8 channels at a time: s is (frames, H, W, C/8) uint64 words of 8
    spikes; each active word adds its pattern's table row (C_out/groups summed weights)
    per tap. Slices and loop counters index everything, so that numba's negative-index
    checks drop out and the row adds vectorize."""
    frames, h, wd, words = s.shape
    kh, kw, _, _, og = table.shape
    _, ho, wo, cout = out.shape
    per_group = cg // 8
    flat = out.reshape(frames, ho * wo * cout)
    for f in nb.prange(frames):
        of = flat[f]
        for iy in range(h):
            yt = ytab[iy]
            for ix in range(wd):
                pixel = s[f, iy, ix]
                xt = xtab[ix]
                for j in range(words):
                    word = pixel[j]
                    if word == np.uint64(0):
                        continue
                    pattern = (word * PACK) >> np.uint64(56)
                    g0 = (j // per_group) * og
                    for ky in range(kh):
                        oy = yt[ky]
                        if oy < 0:
                            continue
                        for kx in range(kw):
                            ox = xt[kx]
                            if ox < 0:
                                continue
                            _add_row(of[(oy * wo + ox) * cout + g0:],
                                     table[ky, kx, j, pattern], og)


def row_table(table: np.ndarray) -> np.ndarray:
    """A `byte_table` (kH, kW, C_in/8, 256, C_out) → (kH, C_in/8, 256, kW·C_out), taps
    along x reversed: for a stride-1 convolution (one group), the taps of one input pixel
    and one kernel row reach consecutive output pixels, so they are one run of this row."""
    kh, kw, words, _, og = table.shape
    return np.ascontiguousarray(table[:, ::-1].transpose(0, 2, 3, 1, 4)
                                .reshape(kh, words, 256, kw * og))


def _x_runs(width: int, kw: int, pad: int, out: int) -> tuple[np.ndarray, ...]:
    """Per input column of a stride-1, dilation-1 convolution: the first tap of its run in
    a `row_table` row, the number of taps that land inside the output, and the output
    column of the first."""
    ix = np.arange(width)
    last = np.minimum(kw - 1, ix + pad)  # the largest tap index with output column ≥ 0
    first = np.maximum(0, ix + pad - out + 1)
    return ((kw - 1 - last).astype(np.int64), np.maximum(last - first + 1, 0).astype(np.int64),
            (ix + pad - last).astype(np.int64))


@nb.njit(cache=True, parallel=True)
def _byte_rows(s, rows, out, ytab, k0, taps, ox0):
    """`_byte_events` for stride-1 convolutions of one group: per active word and kernel
    row, one add of the pattern's run of taps (`row_table`, `_x_runs`) over consecutive
    output pixels, instead of one add per tap: longer rows vectorize better."""
    frames, h, wd, words = s.shape
    kh = rows.shape[0]
    _, ho, wo, og = out.shape
    flat = out.reshape(frames, ho * wo * og)
    for f in nb.prange(frames):
        of = flat[f]
        for iy in range(h):
            yt = ytab[iy]
            for ix in range(wd):
                pixel = s[f, iy, ix]
                start, n = k0[ix] * og, taps[ix] * og
                for j in range(words):
                    word = pixel[j]
                    if word == np.uint64(0):
                        continue
                    pattern = (word * PACK) >> np.uint64(56)
                    for ky in range(kh):
                        oy = yt[ky]
                        if oy >= 0:
                            _add_row(of[(oy * wo + ox0[ix]) * og:],
                                     rows[ky, j, pattern, start:], n)


def _scatter(s: np.ndarray, w: np.ndarray, table: np.ndarray | None, out: np.ndarray,
             ytab: np.ndarray, xtab: np.ndarray, cg: int) -> None:
    """The events path of (transposed) convolutions: by bytes where `table` exists."""
    if table is None:
        _tap_events(s, w, out, ytab, xtab, cg)
    else:
        _byte_events(np.ascontiguousarray(s).view(np.uint64), table, out, ytab, xtab, cg)


@SYNAPSES.register(Conv2d)
class ConvSynapse(Synapse):
    """syn.conv2d; weight (C_out, C_in/groups, kH, kW)."""

    def __init__(self, op: Op, weight: np.ndarray) -> None:
        super().__init__(op)
        a = op.attrs
        o, cg, kh, kw = weight.shape
        self.groups, self.cg, self.og = a.groups, cg, o // a.groups
        # events: (kH, kW, C_in, C_out/groups); dense: per group (C_in/g·kH·kW, C_out/g)
        self.w_events = np.ascontiguousarray(weight.reshape(a.groups, self.og, cg, kh, kw)
                                             .transpose(3, 4, 0, 2, 1)
                                             .reshape(kh, kw, a.groups * cg, self.og))
        self.w_dense = np.ascontiguousarray(weight.reshape(a.groups, self.og, cg * kh * kw)
                                            .transpose(0, 2, 1))
        self.table = byte_table(self.w_events, cg)
        self.rows = (row_table(self.table) if self.table is not None and a.groups == 1
                     and a.strides[1] == 1 and a.dilations[1] == 1 else None)

    def events(self, s: np.ndarray, out: np.ndarray) -> None:
        a = self.op.attrs
        kh, kw = self.w_events.shape[:2]
        if self.rows is not None:
            _byte_rows(np.ascontiguousarray(s).view(np.uint64), self.rows, out,
                       _tap_table(s.shape[1], kh, a.strides[0], a.pads[0], a.dilations[0],
                                  out.shape[1]),
                       *_x_runs(s.shape[2], kw, a.pads[1], out.shape[2]))
            return
        _scatter(s, self.w_events, self.table, out,
                 _tap_table(s.shape[1], kh, a.strides[0], a.pads[0], a.dilations[0],
                            out.shape[1]),
                 _tap_table(s.shape[2], kw, a.strides[1], a.pads[1], a.dilations[1],
                            out.shape[2]), self.cg)

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        a = self.op.attrs
        top, left, bottom, right = a.pads
        (sh, sw), (dh, dw) = a.strides, a.dilations
        kh, kw = self.w_events.shape[:2]
        ho, wo = out.shape[1:3]
        padded = np.pad(s, ((0, 0), (top, bottom), (left, right), (0, 0)))
        win = sliding_window_view(padded, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
        win = win[:, ::sh, ::sw, :, ::dh, ::dw][:, :ho, :wo]  # (F, Ho, Wo, C, kH, kW)
        k = self.cg * kh * kw
        for block in _frame_blocks(len(s), ho * wo * k * 4 * self.groups):
            for g in range(self.groups):
                patches = np.ascontiguousarray(win[block, :, :, g * self.cg:(g + 1) * self.cg],
                                               np.float32)
                prod = patches.reshape(-1, k) @ self.w_dense[g]
                out[block, :, :, g * self.og:(g + 1) * self.og] += prod.reshape(
                    -1, ho, wo, self.og)


@SYNAPSES.register(ConvTranspose2d)
class ConvTransposeSynapse(Synapse):
    """syn.conv_transpose2d; weight (C_in, C_out/groups, kH, kW)."""

    def __init__(self, op: Op, weight: np.ndarray) -> None:
        super().__init__(op)
        c, og, kh, kw = weight.shape
        self.groups, self.cg, self.og = op.attrs.groups, c // op.attrs.groups, og
        self.w_events = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))  # (kH, kW, C, O/g)
        # dense: per group (C_in/g, kH·kW·C_out/g)
        self.w_dense = np.ascontiguousarray(weight.reshape(self.groups, self.cg, og, kh, kw)
                                            .transpose(0, 1, 3, 4, 2)
                                            .reshape(self.groups, self.cg, kh * kw * og))
        self.table = byte_table(self.w_events, self.cg)

    def events(self, s: np.ndarray, out: np.ndarray) -> None:
        a = self.op.attrs
        kh, kw = self.w_events.shape[:2]
        _scatter(s, self.w_events, self.table, out,
                 _transposed_tap_table(s.shape[1], kh, a.strides[0], a.pads[0],
                                       a.dilations[0], out.shape[1]),
                 _transposed_tap_table(s.shape[2], kw, a.strides[1], a.pads[1],
                                       a.dilations[1], out.shape[2]), self.cg)

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        a = self.op.attrs
        top, left, _, _ = a.pads
        (sh, sw), (dh, dw) = a.strides, a.dilations
        kh, kw = self.w_events.shape[:2]
        _, h, w, _ = s.shape
        ho, wo = out.shape[1:3]
        full_h = max(sh * (h - 1) + (kh - 1) * dh + 1, top + ho)
        full_w = max(sw * (w - 1) + (kw - 1) * dw + 1, left + wo)
        for block in _frame_blocks(len(s), full_h * full_w * self.og * self.groups * 4
                                   + h * w * kh * kw * self.og * 4):
            n = len(range(*block.indices(len(s))))
            full = np.zeros((n, full_h, full_w, self.groups * self.og), np.float32)
            for g in range(self.groups):
                x = s[block, :, :, g * self.cg:(g + 1) * self.cg].astype(np.float32)
                contrib = (x.reshape(-1, self.cg) @ self.w_dense[g]).reshape(
                    n, h, w, kh, kw, self.og)
                for i in range(kh):
                    for j in range(kw):
                        full[:, i * dh: i * dh + sh * (h - 1) + 1: sh,
                             j * dw: j * dw + sw * (w - 1) + 1: sw,
                             g * self.og:(g + 1) * self.og] += contrib[:, :, :, i, j]
            out[block] += full[:, top:top + ho, left:left + wo]


@SYNAPSES.register(Dense)
class DenseSynapse(Synapse):
    """syn.dense; weight (out, in)."""

    def __init__(self, op: Op, weight: np.ndarray) -> None:
        super().__init__(op)
        self.w = np.ascontiguousarray(weight.T)  # (in, out)

    def events(self, s: np.ndarray, out: np.ndarray) -> None:
        _dense_events(s, self.w, out)

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        out += s.astype(np.float32) @ self.w


@nb.njit(cache=True, parallel=True)
def _csr_events(s, start, targets, w, out):
    """out[f, targets[k]] += w[k] for the entries k of every active input (CSR by input)."""
    frames, n_in = s.shape
    for f in nb.prange(frames):
        row = out[f]
        for i in range(n_in):
            if s[f, i]:
                for k in range(start[i], start[i + 1]):
                    row[targets[k]] += w[k]


@nb.njit(cache=True, parallel=True)
def _coo_gather(s, sources, targets, w, out):
    """out[f, targets[k]] += w[k] · s[f, sources[k]] over all entries (any density)."""
    for f in nb.prange(s.shape[0]):
        row, frame = out[f], s[f]
        for k in range(len(w)):
            if frame[sources[k]]:
                row[targets[k]] += w[k]


def _channels_last_index(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flat C-order indices of a per-frame canonical (C, H, W) tensor, as flat indices of
    its channels-last layout; other ranks unchanged."""
    if len(shape) != 3:
        return flat
    c, h, w = shape
    ch, pix = flat // (h * w), flat % (h * w)
    return pix * c + ch


@SYNAPSES.register(SparseMap)
class SparseSynapse(Synapse):
    """syn.sparse; weight (nnz,), indices (nnz, 2) [output, input], canonical layout."""

    def __init__(self, op: Op, weight: np.ndarray, indices: np.ndarray) -> None:
        super().__init__(op)
        rows = _channels_last_index(indices[:, 0].astype(np.int64), op.result.type.shape[1:])
        cols = _channels_last_index(indices[:, 1].astype(np.int64),
                                    op.inputs[0].type.shape[1:])
        order = np.argsort(cols, kind="stable")
        self.sources, self.targets = cols[order], rows[order]
        self.w = np.ascontiguousarray(weight[order], np.float32)
        n_in = int(np.prod(op.inputs[0].type.shape[1:]))
        self.start = np.searchsorted(self.sources, np.arange(n_in + 1))

    def events(self, s: np.ndarray, out: np.ndarray) -> None:
        _csr_events(s.reshape(len(s), -1), self.start, self.targets, self.w,
                    out.reshape(len(out), -1))

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        _coo_gather(s.reshape(len(s), -1), self.sources, self.targets, self.w,
                    out.reshape(len(out), -1))
