"""Synapse ops of the time-batched engine, on many spike frames at once, channels last.

A frame is one image at one step; frames come stacked along axis 0, and a 4-D value's
frames are (frames, H, W, C) — channels last, so that one spike's contribution to a
pixel of the output is one contiguous run of output channels. Each synapse op has two
paths that accumulate the same sums into an output buffer:

- `dense`: the convolution as one big matrix product over all frames (im2col in frame
  blocks of at most `BLOCK_BYTES`, then BLAS);
- `events`: compiled kernels driven by a table of summed weights (`spike_table`): per tap,
  unit of input spikes and spike pattern, the weights that pattern adds. Where the input
  channels per group are a multiple of 8, a unit is a pixel's 8 channels read as one
  64-bit word, and its pattern (one byte) indexes 256 rows per tap (`byte_table`), so that
  one row add covers all of its spikes; otherwise a unit is one channel (2 rows: silent,
  its weights). Convolutions (and transposed ones) take one of two kernels, by the share
  of active units in the frames: below `GATHER_ACTIVITY`, `_scatter` skips silent units
  and adds each active one's rows into its outputs (stride-1 convolutions of one group add
  a kernel row's taps at once, `_scatter_rows`); from it on, `_gather` sums each output
  pixel's taps in registers, silent units included (their rows are −0.0, which adds
  nothing), with no branch on the spikes. Both add the same rows in the same order (the
  input's raster order), so they give identical sums. Row adds are explicit vectors
  (`snncc.sim.simd`): numba's loop vectorizer handles short rows poorly.

`Synapse.run` picks by the density measured on the frames it is given: `events` up to
`EVENT_DENSITY` (per spike) or `BYTE_EVENT_DENSITY` (by words: always, as it costs less
than the matrix product even when every input fires). With integer-valued weights
(`loihi` mode) both paths give exactly the reference's sums (the table's entries are exact
sums of integer weights too); with float weights they round differently (summation order).
Threads: BLAS's for `dense`, numba's for `events` (`prange` over frames, or over output
rows for the gather).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload
from numpy.lib.stride_tricks import sliding_window_view

from snncc.ir.dispatch import OpTable
from snncc.ir.op import Op
from snncc.ir.ops import Conv2d, ConvTranspose2d, Dense, SparseMap
from snncc.sim.simd import MAX_LANES, row_lanes, vadd, vload, vstore

BLOCK_BYTES = 64 << 20  # float32 im2col / scatter scratch per frame block
# Up to these shares of active inputs, scatter the events rather than multiply densely:
# per spike (measured crossover, 1-channel 3×3 conv), and by bytes of 8 spikes (measured
# 8-10× faster than the matrix product at every density on the U-Net's layer shapes).
EVENT_DENSITY = 0.7
BYTE_EVENT_DENSITY = 1.0
# From this share of active units on, a convolution's events path gathers per output pixel
# rather than scattering per active unit, by the scatter it would use: per tap, by kernel
# row (stride 1, one group) over up to 8 channels, by kernel row over more (long row adds
# make the scatter cheaper). Measured crossovers on the U-Net's layers, both modes.
GATHER_ACTIVITY = {"taps": 0.2, "rows": 0.25, "wide rows": 0.5}
PACK = np.uint64(0x0102040810204080)  # (word · PACK) >> 56: 8 bytes of 0/1 → 8 bits


@dataclass
class Synapse:
    """One synapse op, its weight in the layout its kernels want."""

    op: Op
    table: np.ndarray | None = None  # per-byte weight sums (`byte_table`), if it has them

    def out_shape(self) -> tuple[int, ...]:
        """Per-frame output shape, channels last."""
        return channels_last(self.op.result.type.shape[1:])

    def units(self, s: np.ndarray) -> np.ndarray:
        """The frames as the events path reads them: uint64 words of 8 spikes where the op
        has a byte table, else the spikes themselves."""
        return np.ascontiguousarray(s).view(np.uint64) if self.table is not None else s

    def measure(self, s: np.ndarray) -> tuple[int, int, object]:
        """Active units in the frames, units, and whatever the events path can reuse."""
        units = self.units(s)
        return np.count_nonzero(units), units.size, None

    def run(self, s: np.ndarray, out: np.ndarray, path: str | None = None) -> str:
        """Add the synaptic input of spike frames `s` (uint8) to `out` (float32); return the
        path taken (`path` forces one)."""
        active, size, measured = self.measure(s)
        if path is None:
            if not active:
                return "none"
            most = BYTE_EVENT_DENSITY if self.table is not None else EVENT_DENSITY
            path = "events" if active <= most * size else "dense"
        if path == "events":
            self._events(s, out, active / max(size, 1), measured)
        else:
            self.dense(s, out)
        return path

    def events(self, s: np.ndarray, out: np.ndarray) -> None:
        """The events path alone."""
        active, size, measured = self.measure(s)
        self._events(s, out, active / max(size, 1), measured)

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def _events(self, s: np.ndarray, out: np.ndarray, activity: float, measured) -> None:
        """The events path, given `measure`'s share of active units and its by-product."""
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


def _pattern(word):
    """The table row of a unit of spikes: a uint64 word of 8 → its byte of 8 bits (PACK);
    a uint8 spike → itself (0 or 1). Compiled per type (`_pattern_impl`)."""
    raise NotImplementedError("only callable from numba kernels")


@overload(_pattern, inline="always")
def _pattern_impl(word):
    if word == types.uint64:
        return lambda word: np.int64((word * PACK) >> np.uint64(56))
    return lambda word: np.int64(word)


def spike_table(w: np.ndarray, cg: int) -> tuple[np.ndarray, int]:
    """The events paths' weights: w (kH, kW, C_in, C_out/groups) → per tap, unit of input
    spikes and spike pattern, the summed weights (kH, kW, units, patterns, C_out/groups),
    and the units per group. A unit is a byte of 8 channels (256 patterns, `byte_table`)
    where 8 | C_in/groups, else one channel (2 patterns: silent, its weights). The silent
    pattern's row is −0.0, so that adding it changes no float (x + −0.0 = x, for x = ±0
    too): the gather adds silent units' rows rather than branching on them."""
    table = byte_table(w, cg)
    if table is None:
        table = np.stack([np.zeros_like(w), w], axis=3)
    else:
        cg //= 8
    table[:, :, :, 0] = -0.0
    return np.ascontiguousarray(table, np.float32), cg


def _lanes(og: int, widths: tuple[int, ...]) -> tuple[int, ...]:
    """Vector rows for og output channels per group: the longest of `widths` (or 1) that
    divides og. Each width compiles a kernel of its own: few widths, few compilations."""
    return row_lanes(next((n for n in widths if og % n == 0), 1))


@nb.njit(cache=True, parallel=True)
def _scatter(s, table, out, ytab, xtab, per_group, lanes):
    """out[f, oy, ox, g·og:(g + 1)·og] += table[ky, kx, u, pattern(s[f, iy, ix, u])] for every
    active unit u of group g, where oy = ytab[iy, ky] and ox = xtab[ix, kx] (−1: none).
    Convolutions and transposed ones differ only in their tables; parallel over frames."""
    frames, h, wd, units = s.shape
    kh, kw, _, rows, og = table.shape
    _, ho, wo, cout = out.shape
    flat, tab = out.reshape(-1), table.reshape(-1)
    n = len(lanes)
    for f in nb.prange(frames):
        for iy in range(h):
            for ix in range(wd):
                for u in range(units):
                    word = s[f, iy, ix, u]
                    if word == 0:
                        continue
                    p = _pattern(word)
                    g0 = (u // per_group) * og
                    for ky in range(kh):
                        oy = ytab[iy, ky]
                        if oy < 0:
                            continue
                        for kx in range(kw):
                            ox = xtab[ix, kx]
                            if ox < 0:
                                continue
                            o = ((f * ho + oy) * wo + ox) * cout + g0
                            t = (((ky * kw + kx) * units + u) * rows + p) * og
                            for c in range(0, og, n):
                                vstore(flat, o + c, vadd(vload(flat, o + c, lanes),
                                                         vload(tab, t + c, lanes)))


@nb.njit(cache=True, parallel=True)
def _scatter_rows(s, rows, out, ytab, k0, taps, ox0, lanes):
    """`_scatter` for stride-1 convolutions of one group: per active word and kernel row,
    one add of the pattern's run of taps (`row_table`, `_x_runs`) over consecutive output
    pixels, instead of one add per tap."""
    frames, h, wd, words = s.shape
    kh, _, _, run = rows.shape
    _, ho, wo, og = out.shape
    flat, tab = out.reshape(-1), rows.reshape(-1)
    n = len(lanes)
    for f in nb.prange(frames):
        for iy in range(h):
            for ix in range(wd):
                start, length = k0[ix] * og, taps[ix] * og
                for j in range(words):
                    word = s[f, iy, ix, j]
                    if word == np.uint64(0):
                        continue
                    p = _pattern(word)
                    for ky in range(kh):
                        oy = ytab[iy, ky]
                        if oy < 0:
                            continue
                        o = ((f * ho + oy) * wo + ox0[ix]) * og
                        t = ((ky * words + j) * 256 + p) * run + start
                        for c in range(0, length, n):
                            vstore(flat, o + c, vadd(vload(flat, o + c, lanes),
                                                     vload(tab, t + c, lanes)))


@dataclass
class GatherPlan:
    """The taps of each output pixel, for `_gather`, in the order `_scatter` adds them.

    Output coordinates fall in classes (o = q·classes + r: one class for a convolution,
    `stride` for a transposed one, whose taps depend on o mod stride); an output pixel of
    class c reads, for each tap t of c, the unit at flat offset `offset` from its base: the
    input pixel (qy·step_y + ey, qx·step_x + ex) of the input padded by `pads` (top, left,
    bottom, right) silent units, so that no tap falls outside; and adds table row `row` +
    pattern·og. Taps run in ascending input order (y, x, unit), the order in which the
    scatter reaches an output, and a padding unit adds the silent pattern's −0.0 row: both
    paths add the same floats in the same order."""

    classes_y: int
    classes_x: int
    step_y: int
    step_x: int
    pads: tuple[int, int, int, int]
    offset: np.ndarray  # (classes, groups, taps)
    row: np.ndarray
    taps: np.ndarray  # (classes,)

    def args(self) -> tuple:
        return (self.classes_y, self.classes_x, self.step_y, self.step_x, self.pads[0],
                self.pads[1], self.offset, self.row, self.taps)


def _axis_taps(transposed: bool, size: int, kernel: int, stride: int, pad: int,
               dilation: int, out: int) -> tuple[int, int, list[list[tuple[int, int]]],
                                                 tuple[int, int]]:
    """One axis of a `GatherPlan`: classes, step, per class the (input offset, kernel index)
    pairs in ascending input order, and the padding (before, after) that every tap of
    every output needs to land inside."""
    if not transposed:  # i = o·stride − pad + k·dilation
        classes, step = 1, stride
        lists = [[(k * dilation - pad, k) for k in range(kernel)]]
    else:  # i·stride = o + pad − k·dilation, o = q·stride + r
        classes, step = stride, 1
        lists = [sorted(((r + pad - k * dilation) // stride, k) for k in range(kernel)
                        if (r + pad - k * dilation) % stride == 0) for r in range(stride)]
    reached = [(o // classes) * step + e for o in range(out) for e, _ in lists[o % classes]]
    return classes, step, lists, (max(0, -min(reached, default=0)),
                                  max(0, max(reached, default=0) - size + 1))


def gather_plan(transposed: bool, table_shape: tuple[int, ...], groups: int,
                in_hw: tuple[int, int], out_hw: tuple[int, int], strides, pads, dilations
                ) -> GatherPlan:
    kh, kw, units, rows, og = table_shape
    cy, sy, ly, (top, bottom) = _axis_taps(transposed, in_hw[0], kh, strides[0], pads[0],
                                           dilations[0], out_hw[0])
    cx, sx, lx, (left, right) = _axis_taps(transposed, in_hw[1], kw, strides[1], pads[1],
                                           dilations[1], out_hw[1])
    width = in_hw[1] + left + right
    per_group = units // groups
    most = max(map(len, ly)) * max(map(len, lx)) * per_group
    offset, row = (np.zeros((cy * cx, groups, most), np.int64) for _ in range(2))
    taps = np.zeros(cy * cx, np.int64)
    for c in range(cy * cx):
        pairs = [(y, x) for y in ly[c // cx] for x in lx[c % cx]]
        for g in range(groups):
            units_g = range(g * per_group, (g + 1) * per_group)
            for t, ((dy, ky), (dx, kx), u) in enumerate(
                    (y, x, u) for y, x in pairs for u in units_g):
                offset[c, g, t] = (dy * width + dx) * units + u
                row[c, g, t] = ((ky * kw + kx) * units + u) * rows * og
        taps[c] = len(pairs) * per_group
    return GatherPlan(cy, cx, sy, sx, (top, left, bottom, right), offset, row, taps)


@nb.njit(cache=True, parallel=True)
def _pattern_offsets(s, og, top, left, bottom, right):
    """Per unit of spikes (frames, H, W, units), the offset of its pattern's row in a tap's
    block of table rows, pattern · og (int32: the gather reads each unit once per tap that
    reaches it; this computes its pattern once), in a frame padded with silent units (offset
    0) by top, left, bottom, right pixels; and the number of active units."""
    frames, h, w, units = s.shape
    hp, wp = h + top + bottom, w + left + right
    offsets = np.empty((frames, hp, wp, units), np.int32)
    sf, of = s.reshape(-1), offsets.reshape(-1)
    inner, edge = w * units, left * units
    active = 0
    for fy in nb.prange(frames * hp):
        f = fy // hp
        y = fy - f * hp - top
        out = np.uint64(fy * wp * units)
        if y < 0 or y >= h:
            of[out:out + np.uint64(wp * units)] = 0
            continue
        of[out:out + np.uint64(edge)] = 0
        of[out + np.uint64(edge + inner):out + np.uint64(wp * units)] = 0
        src = np.uint64((f * h + y) * inner)
        dst = out + np.uint64(edge)
        n = 0
        for i in range(inner):
            p = _pattern(sf[src + np.uint64(i)])
            of[dst + np.uint64(i)] = p * og
            n += p != 0
        active += n
    return offsets, active


@nb.njit(cache=True, parallel=True)
def _gather(offsets, table, out, cy, cx, sy, sx, top, left, offset, row, taps, lanes):
    """The sums of `_scatter`, output pixel by output pixel (`GatherPlan`): each output
    row of og channels accumulates its taps' table rows in registers, silent units included
    (their −0.0 rows add nothing), with no branch on the spikes and one write. `offsets`:
    the units' `_pattern_offsets`, padded as the plan says. Four pixels of a class at once
    (independent sums); parallel over output rows. Unsigned indices spare numba's
    negative-index fix-ups."""
    frames, hp, wp, units = offsets.shape
    og = table.shape[-1]
    _, ho, wo, cout = out.shape
    groups = offset.shape[1]
    flat, tab, po = out.reshape(-1), table.reshape(-1), offsets.reshape(-1)
    n = len(lanes)
    di, do = np.uint64(sx * units), cx * cout
    for fy in nb.prange(frames * ho):
        f = fy // ho
        oy = fy - f * ho
        qy = oy // cy
        c0 = (oy - qy * cy) * cx
        row0 = (f * hp + qy * sy + top) * wp + left
        for rx in range(cx):
            c = c0 + rx
            nt = taps[c]
            nq = (wo - rx + cx - 1) // cx
            for qx in range(0, nq - 3, 4):
                at0 = ((f * ho + oy) * wo + qx * cx + rx) * cout
                base = (row0 + qx * sx) * units
                for g in range(groups):
                    for k in range(0, og, n):
                        at = at0 + g * og + k
                        a0 = vload(flat, at, lanes)
                        a1 = vload(flat, at + do, lanes)
                        a2 = vload(flat, at + 2 * do, lanes)
                        a3 = vload(flat, at + 3 * do, lanes)
                        for t in range(nt):
                            i = np.uint64(base + offset[c, g, t])
                            r = row[c, g, t] + k
                            a0 = vadd(a0, vload(tab, r + po[i], lanes))
                            a1 = vadd(a1, vload(tab, r + po[i + di], lanes))
                            a2 = vadd(a2, vload(tab, r + po[i + 2 * di], lanes))
                            a3 = vadd(a3, vload(tab, r + po[i + 3 * di], lanes))
                        vstore(flat, at, a0)
                        vstore(flat, at + do, a1)
                        vstore(flat, at + 2 * do, a2)
                        vstore(flat, at + 3 * do, a3)
            for qx in range(nq - nq % 4, nq):
                at0 = ((f * ho + oy) * wo + qx * cx + rx) * cout
                base = (row0 + qx * sx) * units
                for g in range(groups):
                    for k in range(0, og, n):
                        at = at0 + g * og + k
                        acc = vload(flat, at, lanes)
                        for t in range(nt):
                            i = np.uint64(base + offset[c, g, t])
                            acc = vadd(acc, vload(tab, row[c, g, t] + k + po[i], lanes))
                        vstore(flat, at, acc)


class _ConvEvents(Synapse):
    """The events paths shared by convolutions and transposed ones: `_scatter` over the
    active units, or `_gather` over the output pixels, whichever the activity favours."""

    groups: int
    rows: np.ndarray | None = None  # `row_table`, where `_scatter_rows` applies

    def _events_init(self, w_events: np.ndarray, cg: int, transposed: bool) -> None:
        self.spikes, self.per_group = spike_table(w_events, cg)
        # the gather keeps whole rows in registers (up to 32 channels: 4 AVX2 registers);
        # the scatter's adds go through memory and gain little from longer rows
        self.lanes = _lanes(self.spikes.shape[-1], (MAX_LANES, 16, 8))
        self.scatter_lanes = _lanes(self.spikes.shape[-1], (8,))
        self.transposed = transposed
        self._plans: dict[tuple[int, ...], GatherPlan] = {}

    def plan(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> GatherPlan:
        key = (*in_hw, *out_hw)
        if key not in self._plans:
            a = self.op.attrs
            self._plans[key] = gather_plan(self.transposed, self.spikes.shape, self.groups,
                                           in_hw, out_hw, a.strides, a.pads, a.dilations)
        return self._plans[key]

    def measure(self, s: np.ndarray) -> tuple[int, int, object]:
        units = self.units(s)
        plan = self.plan(units.shape[1:3], channels_last(self.op.result.type.shape[1:])[:2])
        offsets, active = _pattern_offsets(units, self.spikes.shape[-1], *plan.pads)
        return active, units.size, (plan, offsets)

    def _events(self, s: np.ndarray, out: np.ndarray, activity: float, measured) -> None:
        plan, offsets = measured
        if activity >= GATHER_ACTIVITY[self.scatter_kind()]:
            _gather(offsets, self.spikes, out, *plan.args(), self.lanes)
        else:
            self._scatter(self.units(s), out)

    def _scatter(self, units: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def scatter_kind(self) -> str:
        """Which scatter `_scatter` runs (a key of `GATHER_ACTIVITY`)."""
        if self.rows is None:
            return "taps"
        return "rows" if self.spikes.shape[-1] <= 8 else "wide rows"


@SYNAPSES.register(Conv2d)
class ConvSynapse(_ConvEvents):
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
        self._events_init(self.w_events, cg, transposed=False)
        self.rows = (row_table(self.table) if self.table is not None and a.groups == 1
                     and a.strides[1] == 1 and a.dilations[1] == 1 else None)

    def _scatter(self, units: np.ndarray, out: np.ndarray) -> None:
        a = self.op.attrs
        kh, kw = self.w_events.shape[:2]
        ytab = _tap_table(units.shape[1], kh, a.strides[0], a.pads[0], a.dilations[0],
                          out.shape[1])
        if self.rows is not None:
            _scatter_rows(units, self.rows, out, ytab,
                          *_x_runs(units.shape[2], kw, a.pads[1], out.shape[2]),
                          self.scatter_lanes)
            return
        _scatter(units, self.spikes, out, ytab,
                 _tap_table(units.shape[2], kw, a.strides[1], a.pads[1], a.dilations[1],
                            out.shape[2]), self.per_group, self.scatter_lanes)

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
class ConvTransposeSynapse(_ConvEvents):
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
        self._events_init(self.w_events, self.cg, transposed=True)

    def _scatter(self, units: np.ndarray, out: np.ndarray) -> None:
        a = self.op.attrs
        kh, kw = self.w_events.shape[:2]
        _scatter(units, self.spikes, out,
                 _transposed_tap_table(units.shape[1], kh, a.strides[0], a.pads[0],
                                       a.dilations[0], out.shape[1]),
                 _transposed_tap_table(units.shape[2], kw, a.strides[1], a.pads[1],
                                       a.dilations[1], out.shape[2]), self.per_group,
                 self.scatter_lanes)

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

    def _events(self, s: np.ndarray, out: np.ndarray, activity: float, measured) -> None:
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

    def _events(self, s: np.ndarray, out: np.ndarray, activity: float, measured) -> None:
        _csr_events(s.reshape(len(s), -1), self.start, self.targets, self.w,
                    out.reshape(len(out), -1))

    def dense(self, s: np.ndarray, out: np.ndarray) -> None:
        _coo_gather(s.reshape(len(s), -1), self.sources, self.targets, self.w,
                    out.reshape(len(out), -1))
