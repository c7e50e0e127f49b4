"""Per-core resources of a tiled population, counted the way nengo-loihi 1.1 counts them.

Sources (nengo_loihi 1.1.0): the limits are `block.py` (`MAX_COMPARTMENTS = 1024`,
`MAX_IN_AXONS = 4096`, `MAX_OUT_AXONS = 4096`, `MAX_SYNAPSE_BITS = 16384 * 64`), checked
per block by `builder/validate.py`; at most 16 synapse configurations per core
(`hardware/validate.py`; one per projection into the block here). How the numbers arise:

- conv projections use population axons (`pop_type` 32 by default, two output-axon slots
  per axon) with one axon per input *pixel* (`conv.py`, `conv2d_loihi_weights`); after a
  post population is split (`builder/split_blocks.py`), a block's synapse keeps only the
  pixels whose receptive field reaches the block. An unsplit population keeps all pixels.
- a presynaptic block sends one axon per pixel it holds and per postsynaptic block that
  uses that pixel (every pixel when the post population is a single block).
- synapse memory (`block.py`, `SynapseConfig.bits_per_axon`): weights are stored per unique
  (taps, index base) group of `c_in × targets` weights, in runs of 64 of
  `8 + index bits` bits plus a 10-bit header, each run rounded up to 64 bits; the index
  width comes from the largest compartment index of the block's synapse.
- dense projections use discrete axons: one axon per presynaptic neuron into every block,
  8 bits per weight (compressed indices), every post neuron of the block stored.
- sparse projections (`nengo.transforms.Sparse` from the neurons they read) use discrete
  axons too: one per presynaptic neuron read, storing only its nonzero weights (`block.py`,
  `Synapse.set_weights` with a scipy matrix). nengo-loihi cannot split a block such a
  projection enters (`split_blocks.py`: "Sparse weights not yet supported"), so tile-cores
  keeps those populations in one block.

Groups whose weights coincide numerically share memory in nengo-loihi; they are counted
here as distinct, so the synapse count is an upper bound in that rare case.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from snncc.hw.loihi.geometry import Layer, Lowered, Projection

MAX_COMPARTMENTS = 1024
MAX_IN_AXONS = 4096
MAX_OUT_AXONS = 4096
MAX_SYNAPSE_BITS = 16384 * 64
MAX_SYNAPSE_CONFIGS = 16
POP32_SLOTS = 2
LOIHI_CORES_PER_CHIP = 128  # cores per Loihi chip (nengo-loihi hardware/allocators.py)
REFRACT_DELAY_MAX = 63  # nengo_loihi/hardware/nxsdk_objects.py: CompartmentConfig
DECAY_SCALE_TH = 0.5 / 2**12  # nengo_loihi/block.py: Compartment.DECAY_SCALE_TH

LIMITS: dict[str, int] = {
    "compartments": MAX_COMPARTMENTS,
    "in_axons": MAX_IN_AXONS,
    "out_axons": MAX_OUT_AXONS,
    "synapse_bits": MAX_SYNAPSE_BITS,
    "synapse_configs": MAX_SYNAPSE_CONFIGS,
}
LIMIT_WORDS = {
    "compartments": "compartments",
    "in_axons": "input axons",
    "out_axons": "output axons",
    "synapse_bits": "synapse memory bits",
    "synapse_configs": "synapse configurations",
}
_INDEX_BITS = (0, 6, 7, 8, 9, 10, 11, 12)


def bits_per_axon(n_weights: int, bits_per_weight: int) -> int:
    """Synapse memory for one weight group: runs of 64 weights with a 10-bit header."""
    full, rest = divmod(n_weights, 64)
    run = -(-(64 * bits_per_weight + 10) // 64) * 64
    tail = -(-(rest * bits_per_weight + 10) // 64) * 64 if rest else 0
    return full * run + tail


def index_bits(max_index: int) -> int:
    """The index width nengo-loihi picks for a synapse whose largest index is `max_index`."""
    need = math.ceil(math.log2(max_index + 1)) if max_index > 0 else 0
    return next((b for b in _INDEX_BITS if b >= need), _INDEX_BITS[-1])


def in_block(flat: np.ndarray, shape: tuple[int, ...], block: tuple[tuple[int, int], ...]
             ) -> np.ndarray:
    """Whether each flat (C-order) neuron index of a population of `shape` lies in `block`."""
    inside = np.ones(len(flat), bool)
    for index, (lo, hi) in zip(np.unravel_index(flat, shape), block, strict=True):
        inside &= (index >= lo) & (index < hi)
    return inside


def blocks_1d(n: int, b: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + b, n)) for lo in range(0, n, b)]


def block_grid(shape: tuple[int, ...], block: tuple[int, ...]) -> list[tuple[tuple[int, int], ...]]:
    """Blocks in row-major order (nengo-loihi's and the IR's `chips` order)."""
    return list(itertools.product(*(blocks_1d(n, b) for n, b in zip(shape, block, strict=True))))


def sparse_senders(proj: Projection, block: tuple[tuple[int, int], ...]) -> int:
    """Neurons of a source block that a sparse projection reads (each sends one axon)."""
    return int(in_block(proj.sources, proj.in_shape, block).sum())


@dataclass
class AxisStats:
    """For one output interval along one spatial axis: per input index, whether it reaches
    the interval, its tap mask, and its first / last target (interval-local)."""

    used: np.ndarray
    mask: np.ndarray
    first: np.ndarray
    last: np.ndarray
    taps: np.ndarray
    signature: tuple[int, bytes, bytes, bytes, bytes]  # what synapse memory depends on


def axis_stats(table: np.ndarray, lo: int, hi: int) -> AxisStats:
    inside = (table >= lo) & (table < hi)
    used = inside.any(1)
    weights = 1 << np.arange(table.shape[1], dtype=np.int64)
    mask = (inside * weights).sum(1)
    first = np.where(inside, table, np.iinfo(np.int64).max).min(1) - lo
    last = np.where(inside, table, -1).max(1) - lo
    taps = inside.sum(1)
    # intervals of one length whose used inputs have the same taps, first and last targets
    # give the same synapse memory (interior blocks of a convolution, mostly)
    signature = (hi - lo, *(a[used].tobytes() for a in (mask, first, last, taps)))
    return AxisStats(used, mask, first, last, taps, signature)


class CoreUse:
    """Counts per-block resources; caches per-axis statistics, synapse memory of blocks
    with the same geometry, and output-axon reach across candidate shapes."""

    def __init__(self, lowered: Lowered) -> None:
        self.lowered = lowered
        self._axis: dict[tuple[int, int, int, int], AxisStats] = {}
        self._synapse: dict[tuple, tuple[int, int]] = {}
        self._reach: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def stats(self, proj: Projection, axis: int, lo: int, hi: int) -> AxisStats:
        key = (id(proj), axis, lo, hi)
        if key not in self._axis:
            self._axis[key] = axis_stats(proj.tables[axis], lo, hi)
        return self._axis[key]

    # --- into a block ---------------------------------------------------------------
    def synapse(self, proj: Projection, block: tuple[tuple[int, int], ...],
                single: bool) -> tuple[int, int]:
        """(input axons, synapse bits) of `proj` into one block of its post population."""
        sizes = [hi - lo for lo, hi in block]
        n_block = math.prod(sizes)
        if proj.kind == "dense":
            n_in = math.prod(proj.in_shape)
            return n_in, n_in * bits_per_axon(n_block, 8)
        if proj.kind == "sparse":
            into = proj.indices[in_block(proj.indices[:, 0], proj.out_shape, block), 1]
            per_source = np.unique(into, return_counts=True)[1]
            return len(proj.sources), sum(bits_per_axon(int(n), 8) for n in per_source)
        (_, _), (r0, r1), (c0, c1) = block
        rs, cs = self.stats(proj, 0, r0, r1), self.stats(proj, 1, c0, c1)
        key = (id(proj), sizes[0], rs.signature, cs.signature, single)
        if key not in self._synapse:
            self._synapse[key] = self._synapse_of(proj, sizes, rs, cs, single)
        return self._synapse[key]

    @staticmethod
    def _synapse_of(proj: Projection, sizes: list[int], rs: AxisStats, cs: AxisStats,
                    single: bool) -> tuple[int, int]:
        cb, hb, wb = sizes
        ri, ci = np.nonzero(rs.used)[0], np.nonzero(cs.used)[0]
        n_axons = proj.tables[0].shape[0] * proj.tables[1].shape[0] if single \
            else len(ri) * len(ci)
        if len(ri) == 0 or len(ci) == 0:
            return n_axons, 0
        first = rs.first[ri][:, None] * wb + cs.first[ci][None, :]
        last = (cb - 1) * hb * wb + rs.last[ri][:, None] * wb + cs.last[ci][None, :]
        width = 8 + index_bits(int((last - first % 256).max()))
        keys = np.stack([np.repeat(rs.mask[ri], len(ci)), np.tile(cs.mask[ci], len(ri)),
                         (first // 256).ravel()], axis=1)
        _, at = np.unique(keys, axis=0, return_index=True)
        targets = (rs.taps[ri][:, None] * cs.taps[ci][None, :]).ravel()[at] * cb
        c_in = proj.in_shape[0]
        bits = sum(bits_per_axon(int(n) * c_in, width) for n in targets)
        return n_axons, bits

    # --- out of a block -------------------------------------------------------------
    def out_axons(self, proj: Projection, post: Layer, post_block: tuple[int, ...] | None,
                  block: tuple[tuple[int, int], ...]) -> int:
        """Output-axon slots one block of the source sends along `proj`."""
        n_block = math.prod(hi - lo for lo, hi in block)
        post_blocks = math.prod(-(-n // b) for n, b in zip(
            post.shape, post_block or post.shape, strict=True))
        if proj.kind == "dense":
            return n_block * post_blocks
        if proj.kind == "sparse":
            return sparse_senders(proj, block) * post_blocks
        (_, _), (r0, r1), (c0, c1) = block
        if post_blocks == 1:
            return (r1 - r0) * (c1 - c0) * POP32_SLOTS
        n_chan = len(blocks_1d(post.shape[0], post_block[0]))
        key = (id(proj), post.shape, post_block)
        if key not in self._reach:
            # per axis, cumulative count over inputs of the post intervals each reaches
            self._reach[key] = tuple(np.concatenate([[0], np.cumsum(sum(
                self.stats(proj, axis, *iv).used.astype(np.int64)
                for iv in blocks_1d(post.shape[1 + axis], post_block[1 + axis])))])
                for axis in (0, 1))
        rows, cols = self._reach[key]
        used_r, used_c = int(rows[r1] - rows[r0]), int(cols[c1] - cols[c0])
        return used_r * used_c * n_chan * POP32_SLOTS

    def block(self, layer: Layer, block_shape: tuple[int, ...],
              block: tuple[tuple[int, int], ...],
              consumer_shapes: dict[int, tuple[int, ...] | None]) -> dict[str, int]:
        """Every counted resource of one block of an on-chip layer."""
        single = tuple(block_shape) == tuple(layer.shape)
        in_axons = bits = 0
        for proj in layer.projections:
            a, b = self.synapse(proj, block, single)
            in_axons, bits = in_axons + a, bits + b
        out = sum(self.out_axons(p, post, consumer_shapes.get(id(post.op)), block)
                  for p, post in self.lowered.consumers[id(layer.op)])
        return {
            "compartments": math.prod(hi - lo for lo, hi in block),
            "in_axons": in_axons,
            "out_axons": out,
            "synapse_bits": bits,
            "synapse_configs": len(layer.projections),
        }

    def layer(self, layer: Layer, block_shape: tuple[int, ...],
              consumer_shapes: dict[int, tuple[int, ...] | None]) -> list[dict[str, int]]:
        return [self.block(layer, block_shape, b, consumer_shapes)
                for b in block_grid(layer.shape, block_shape)]


def summarize_use(per_block: list[dict[str, int]]) -> dict[str, dict[str, float]]:
    """Max and mean of each limit over blocks, absolute and as a fraction of the limit."""
    out = {}
    for key, limit in LIMITS.items():
        values = np.array([b[key] for b in per_block], dtype=float)
        out[key] = {
            "limit": limit,
            "max": int(values.max()) if len(values) else 0,
            "mean": round(float(values.mean()), 1) if len(values) else 0.0,
            "max_fraction": round(float(values.max()) / limit, 4) if len(values) else 0.0,
            "mean_fraction": round(float(values.mean()) / limit, 4) if len(values) else 0.0,
        }
    return out
