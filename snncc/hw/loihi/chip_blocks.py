"""The chip block graph: one node per core-sized block of an on-chip population, an edge
a→b weighted by the axon messages per step that block a sends to block b, counted as
nengo-loihi's `estimate_interblock_activity` counts them.

nengo-loihi routes a convolution through one population axon per source *pixel* and target
block (all channels of the pixel share it), a dense projection through one axon per source
neuron and target block; a pixel has an axon into b if it has a tap into b's pixels (every
pixel when b's population is a single block).

- With rates (each layer's `mean_rate`, set by scale-rates, in spikes per step per
  neuron): every neuron whose axon reaches b sends one message per spike, so the edge is
  rate × those neurons (nengo-loihi's estimate given `block_rates`).
- Without rates: the edge is the number of axons a→b (nengo-loihi's estimate without
  `block_rates`, which assumes every axon active).

The input layer and readouts run on the host and are not blocks. partition-chips, the Loihi
target and eval's traffic count all build it here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.blockgraph import BlockGraph
from snncc.hw.loihi.geometry import Layer, Lowered, Projection
from snncc.hw.loihi.limits import (
    LIMIT_WORDS,
    LIMITS,
    LOIHI_CORES_PER_CHIP,
    CoreUse,
    block_grid,
    sparse_senders,
)
from snncc.hw.loihi.placement import Placement, placement_from
from snncc.ir.graph import Graph
from snncc.ir.summary import mean_rates

Block = tuple[tuple[int, int], ...]
AXON_COUNT = "axon count"
RATE_WEIGHTED = "rate-weighted"


def block_name(layer: Layer, index: int) -> str:
    return f"{layer.op.result.name}[{index}]"


def layer_rates(graph: Graph, lowered: Lowered) -> tuple[dict[str, float] | None, str]:
    """Mean spikes per step per neuron of every on-chip population (their `mean_rate`), and
    a note saying where the traffic estimate comes from (None: no rates)."""
    measured = mean_rates(graph)
    names = [x.op.result.name for x in lowered.chip_layers()]
    if not all(name in measured for name in names):
        return None, (f"{AXON_COUNT}: no mean rate from scale-rates, every axon counts once "
                      "per step (nengo-loihi's estimate without rates)")
    return {name: measured[name] for name in names}, (
        f"{RATE_WEIGHTED}: axon messages × scale-rates' mean rate of each layer "
        "(nengo-loihi's estimate with rates)")


def _pixels(block: Block, shape: tuple[int, ...], in_shape: tuple[int, ...]) -> int:
    """Distinct pixels of a convolution's C×H×W input that the neurons of a source block
    (row-major over `shape`, the same neuron order) fall on."""
    index = np.arange(math.prod(shape)).reshape(shape)[tuple(slice(*b) for b in block)]
    return len(np.unique(index % (in_shape[1] * in_shape[2])))


def _reach_counts(counter: CoreUse, proj: Projection, src: Layer, src_grid: list[Block],
                  dst_grid: list[Block], axons: bool) -> np.ndarray:
    """(source blocks × target blocks): neurons of each source block whose axon reaches
    each target block, or with `axons` the axons themselves (one per pixel through a
    convolution); nengo-loihi sends every pixel to an unsplit target."""
    if proj.kind == "sparse":  # its target is one block (tile-cores); one axon per sender
        sent = [sparse_senders(proj, b) for b in src_grid]
        return np.repeat(np.array(sent, np.float64)[:, None], len(dst_grid), axis=1)
    sizes = np.array([math.prod(hi - lo for lo, hi in b) for b in src_grid], dtype=np.float64)
    spatial = proj.kind != "dense" and len(src.shape) == 3 and src.shape == proj.in_shape
    if axons and spatial:
        sizes = np.array([(b[1][1] - b[1][0]) * (b[2][1] - b[2][0]) for b in src_grid],
                         dtype=np.float64)
    elif axons and proj.kind != "dense":
        sizes = np.array([_pixels(b, src.shape, proj.in_shape) for b in src_grid],
                         dtype=np.float64)
    if not spatial or len(dst_grid) == 1:
        return np.repeat(sizes[:, None], len(dst_grid), axis=1)
    chans = np.ones(len(src_grid)) if axons else \
        np.array([b[0][1] - b[0][0] for b in src_grid], dtype=np.float64)
    per_axis = []
    for axis in (0, 1):
        intervals = sorted({b[1 + axis] for b in dst_grid})
        which = np.array([intervals.index(b[1 + axis]) for b in dst_grid])
        cum = np.stack([np.concatenate([[0], np.cumsum(counter.stats(proj, axis, *iv).used)])
                        for iv in intervals])
        lo = np.array([b[1 + axis][0] for b in src_grid])
        hi = np.array([b[1 + axis][1] for b in src_grid])
        per_axis.append((cum[:, hi] - cum[:, lo])[which].T)  # (source, target)
    return chans[:, None] * per_axis[0] * per_axis[1]


def require_tiled(lowered: Lowered) -> None:
    for x in lowered.chip_layers():
        if x.op.attrs.block_shape is None:
            raise SnnccError(f"{x.op.describe()}: has no block_shape; run tile-cores before "
                             "partition-chips")


def _centre(block: Block) -> tuple[float, float]:
    """(row, col) centre of a C×H×W block; (0, centre) of a flat one."""
    rows, cols = block[-2:] if len(block) == 3 else ((0, 0), block[-1])
    return (rows[0] + rows[1]) / 2, (cols[0] + cols[1]) / 2


def block_graph(lowered: Lowered, rates: Mapping[str, float] | None) -> BlockGraph:
    """The block graph of the tiled on-chip populations (see the module docstring)."""
    require_tiled(lowered)
    chip = lowered.chip_layers()
    grids = {id(x.op): block_grid(x.shape, x.op.attrs.block_shape) for x in chip}
    graph = BlockGraph()
    for index, x in enumerate(chip):
        for i, b in enumerate(grids[id(x.op)]):
            graph.add_block(block_name(x, i), 1, x.op.result.name, index, _centre(b))
    counter = CoreUse(lowered)
    for x in chip:
        for p in x.projections:
            src = lowered.source(p)
            if src.role != "chip":
                continue
            rate = 1.0 if rates is None else rates[src.op.result.name]
            counts = _reach_counts(counter, p, src, grids[id(src.op)], grids[id(x.op)],
                                   axons=rates is None)
            for a, b in zip(*np.nonzero(counts), strict=True):
                graph.add_edge(block_name(src, int(a)), block_name(x, int(b)),
                               rate * float(counts[a, b]))
    return graph


def check_blocks_fit(lowered: Lowered) -> None:
    """Refuse a block that does not fit one core (an IR tiled by hand or edited)."""
    counter = CoreUse(lowered)
    shapes = {id(x.op): x.op.attrs.block_shape for x in lowered.chip_layers()}
    for x in lowered.chip_layers():
        for i, use in enumerate(counter.layer(x, x.op.attrs.block_shape, shapes)):
            for key, limit in LIMITS.items():
                if use[key] > limit:
                    raise SnnccError(
                        f"{x.op.describe()}: block {i} of block_shape "
                        f"{list(x.op.attrs.block_shape)} needs {use[key]} "
                        f"{LIMIT_WORDS[key]}, more than one core's {limit}: it is larger "
                        "than a core; run tile-cores to choose block shapes that fit")


def placement_of(lowered: Lowered, blocks: BlockGraph) -> Placement:
    """The placement the IR's `chips` attributes hold (every on-chip layer must have them)."""
    chip_of: dict[str, int] = {}
    for x in lowered.chip_layers():
        if not x.op.attrs.chips:
            raise SnnccError(f"{x.op.describe()}: has no chips; run partition-chips")
        chip_of.update({block_name(x, i): c for i, c in enumerate(x.op.attrs.chips)})
    return placement_from(blocks, chip_of, LOIHI_CORES_PER_CHIP)


def chips_by_layer(graph: BlockGraph, placement: Placement) -> dict[str, dict[int, int]]:
    """Layer → {chip: blocks of that layer on it}."""
    out: dict[str, dict[int, int]] = {}
    chip_of = placement.chip_of()
    for b in graph.blocks:
        per = out.setdefault(str(b.layer), {})
        per[chip_of[b.name]] = per.get(chip_of[b.name], 0) + 1
    return out
