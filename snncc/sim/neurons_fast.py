"""Fused neuron updates for the time-batched engine: one compiled pass per population and
time chunk.

Each kernel scans a population's neurons over the steps of a chunk, given the summed
synaptic input of every step (`q`, float32, shape (steps, images, neurons per image)).
Kernels zero the per-step input they consume, so that the engine's input buffer is clean
for the next population without a separate pass over a buffer larger than the caches.
It keeps the state (voltage, filtered current, refractory count, spike count) in one array
each, writes the spikes (uint8), and does, per neuron and step, exactly the operations of
`snncc.sim.dynamics` (`FloatNeurons`, `LoihiNeurons`) in the same order and precision, so
the engine agrees with the step-by-step reference bit for bit on the same inputs:

- float: float32 arithmetic, the constants rounded to float32 as numpy rounds a Python
  float against a float32 array; the bias added in float64 and rounded (numpy's in-place
  `v += bias` with a float64 bias; in float32 where the bias values are float32s, which
  gives the same sums); the threshold compared in float32; a soft reset subtracts the
  float64 threshold and rounds;
- loihi: integers, with the wrap-arounds counted.

Threads: the neurons are split into blocks of `BLOCK` neurons of one image, run in
parallel (numba `prange`, all cores); each block loops over the steps, its state staying
in the L1 cache (512 neurons: the float scan 10 % faster than with 4096).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from snncc.hw.loihi.formats import DECAY_BITS, Q_BITS, U_BITS, V_MAX

BLOCK = 512  # neurons per parallel task: their state stays in L1 over the steps


@nb.njit(cache=True, inline="always")
def _block_range(b: int, per_image: int, blocks_per_image: int) -> tuple[int, int, int]:
    """Image and neuron range of block `b` (blocks never cross images)."""
    image = b // blocks_per_image
    lo = (b % blocks_per_image) * BLOCK
    return image, lo, min(per_image, lo + BLOCK)


@nb.njit(cache=True, inline="always")
def _float_steps(qb, out, vb, cb, nb_, bb, rb, threshold32, threshold64, reset_zero, keep32,
                 d32, keep_c32, filtered, refractory):
    """One step of one block of float neurons (`float_scan`). `filtered` arrives as a
    constant from the call sites, so that each case compiles to a loop without conditional
    loads or stores, which LLVM vectorizes (`refractory` stays a run-time value: compiled
    per case as well, it cost 2 s more compilation and no measured speed); the rest is
    branch-free: the leak always multiplies (by 1.0 for IF: exact), both resets are
    computed and one selected."""
    for n in range(qb.shape[0]):
        x = qb[n]
        qb[n] = 0.0
        if filtered:
            x = np.float32(cb[n] * keep_c32) + np.float32(d32 * x)
            cb[n] = x
        vn = np.float32(vb[n] * keep32)
        vn = np.float32(vn + x)
        vn = np.float32(vn + bb[n])  # in float64 if bb is (`float_scan`)
        if refractory:
            vn = np.float32(0.0) if rb[n] > 0 else vn
        fired = vn >= threshold32
        nb_[n] += fired
        reset = np.float32(0.0) if reset_zero else np.float32(np.float64(vn) - threshold64)
        vb[n] = reset if fired else vn
        if refractory:
            rb[n] = max((refractory + 1 if fired else rb[n]) - 1, 0)
        out[n] = fired


@nb.njit(cache=True, parallel=True)
def float_scan(q, spikes, v, current, ref, counts, bias, threshold32, threshold64,
               reset_zero, keep32, d32, keep_c32, filtered, refractory):
    """Float IF/LIF over the steps of q: (steps, images, n), state: (images, n), bias: (n,)
    float64, or float32 where that gives the same sums (the engine's `_float_bias`);
    `current` and `ref` may be (1, 0) when unused. Writes `spikes`, the state and `counts`;
    keep32 is 1.0 for IF neurons (v·1.0 = v exactly)."""
    steps, images, per_image = spikes.shape
    blocks_per_image = (per_image + BLOCK - 1) // BLOCK
    for b in nb.prange(images * blocks_per_image):
        # block views indexed from 0: numba then knows no index is negative and vectorizes
        i, lo, hi = _block_range(b, per_image, blocks_per_image)
        vb, nb_, bb = v[i, lo:hi], counts[i, lo:hi], bias[lo:hi]
        cb = current[i if filtered else 0, lo:hi]
        rb = ref[i if refractory else 0, lo:hi]
        for t in range(steps):
            qb, out = q[t, i, lo:hi], spikes[t, i, lo:hi]
            if filtered:
                _float_steps(qb, out, vb, cb, nb_, bb, rb, threshold32, threshold64,
                             reset_zero, keep32, d32, keep_c32, True, refractory)
            else:
                _float_steps(qb, out, vb, cb, nb_, bb, rb, threshold32, threshold64,
                             reset_zero, keep32, d32, keep_c32, False, refractory)


@nb.njit(cache=True, inline="always")
def _wrap(x: int, bits: int) -> tuple[int, int]:
    """Two's-complement wrap to `bits` + sign, and 1 if it wrapped (branch-free)."""
    shifted = x + (1 << bits)
    return (shifted & ((2 << bits) - 1)) - (1 << bits), np.int64((shifted >> (bits + 1)) != 0)


@nb.njit(cache=True, inline="always")
def _decay(x: int, keep: int) -> int:
    """sign(x)·⌊|x|·keep / 4096⌋."""
    d = (abs(x) * keep) >> DECAY_BITS
    return d if x >= 0 else -d


@nb.njit(cache=True, inline="always")
def _loihi_input(q: float, c: int, bias: int, keep_u: int) -> tuple[int, int, int]:
    """nengo-loihi's input stage: the new current, u = current + bias, and the wraps."""
    qi, o1 = _wrap(np.int64(np.rint(np.float64(q))), Q_BITS)
    c, o2 = _wrap(_decay(c, keep_u) + qi, U_BITS)
    u, o3 = _wrap(c + bias, U_BITS)
    return c, u, o1 + o2 + o3


@nb.njit(cache=True, inline="always")
def _loihi_steps(qb, out, vb, cb, nb_, bb, rb, vth, keep_v, keep_u, refractory, vmin, leaky):
    """One step of one block of compartments (`loihi_scan`); returns the wrap count. The
    wraps are written out (no tuple-returning helpers) and `refractory`/`leaky` arrive as
    constants from the call sites, so the loop compiles branch-free per case."""
    over = 0
    for n in range(qb.shape[0]):
        s = np.int64(np.rint(np.float64(qb[n]))) + (1 << Q_BITS)
        qb[n] = 0.0
        qi = (s & ((2 << Q_BITS) - 1)) - (1 << Q_BITS)
        over += (s >> (Q_BITS + 1)) != 0
        s = _decay(cb[n], keep_u) + qi + (1 << U_BITS)
        c = (s & ((2 << U_BITS) - 1)) - (1 << U_BITS)
        over += (s >> (U_BITS + 1)) != 0
        cb[n] = c
        s = c + bb[n] + (1 << U_BITS)
        u = (s & ((2 << U_BITS) - 1)) - (1 << U_BITS)
        over += (s >> (U_BITS + 1)) != 0
        vn = _decay(vb[n], keep_v) if leaky else vb[n]
        vn = min(max(vn + u, vmin), V_MAX)
        if refractory:
            vn = 0 if rb[n] > 0 else vn
        fired = vn > vth
        nb_[n] += fired
        vb[n] = 0 if fired else vn
        if refractory:
            rb[n] = max((refractory + 1 if fired else rb[n]) - 1, 0)
        out[n] = fired
    return over


@nb.njit(cache=True, parallel=True)
def loihi_scan(q, spikes, v, current, ref, counts, bias, vth, keep_v, keep_u, refractory,
               vmin, overflows):
    """nengo-loihi's integer IF/LIF compartments; v, current: int64 (images, n); bias: (n,)
    int64; `ref` may be (1, 0) when unused; `vmin` is the membrane floor (≤ 0);
    `overflows` (one slot per block) receives the wrap-around counts."""
    steps, images, per_image = spikes.shape
    blocks_per_image = (per_image + BLOCK - 1) // BLOCK
    leaky = keep_v != 1 << DECAY_BITS
    for b in nb.prange(images * blocks_per_image):
        i, lo, hi = _block_range(b, per_image, blocks_per_image)
        vb, cb, nb_, bb = v[i, lo:hi], current[i, lo:hi], counts[i, lo:hi], bias[lo:hi]
        rb = ref[i if refractory else 0, lo:hi]
        over = 0
        for t in range(steps):
            qb, out = q[t, i, lo:hi], spikes[t, i, lo:hi]
            if refractory and leaky:
                over += _loihi_steps(qb, out, vb, cb, nb_, bb, rb, vth, keep_v, keep_u,
                                     refractory, vmin, True)
            elif refractory:
                over += _loihi_steps(qb, out, vb, cb, nb_, bb, rb, vth, keep_v, keep_u,
                                     refractory, vmin, False)
            elif leaky:
                over += _loihi_steps(qb, out, vb, cb, nb_, bb, rb, vth, keep_v, keep_u, 0, vmin,
                                     True)
            else:
                over += _loihi_steps(qb, out, vb, cb, nb_, bb, rb, vth, keep_v, keep_u, 0, vmin,
                                     False)
        overflows[b] += over


@nb.njit(cache=True, parallel=True)
def float_readout(q, first, sums, bias):
    """Float readout: sums += q + bias (float64) for steps t ≥ first of the chunk."""
    steps, images, per_image = q.shape
    for i in nb.prange(images):
        si = sums[i]
        q[:first, i] = 0.0
        for t in range(first, steps):
            qi = q[t, i]
            for n in range(per_image):
                si[n] += np.float64(qi[n]) + bias[n]
                qi[n] = 0.0


@nb.njit(cache=True, parallel=True)
def loihi_readout(q, first, sums, current, bias, scale, overflows):
    """Integer readout (nengo-loihi's input stage, no filter): sums += u / scale for steps
    t ≥ first of the chunk; `overflows` has one slot per image."""
    steps, images, per_image = q.shape
    keep_u = 1  # 4095 − decay_u, nengo-loihi's synapse=None (decay_u = 4094)
    for i in nb.prange(images):
        over = 0
        si, ci = sums[i], current[i]
        q[:first, i] = 0.0
        for t in range(first, steps):
            qi = q[t, i]
            for n in range(per_image):
                c, u, o = _loihi_input(qi[n], ci[n], bias[n], keep_u)
                qi[n] = 0.0
                over += o
                ci[n] = c
                si[n] += np.float64(u) / scale
        overflows[i] += over
