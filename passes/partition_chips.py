"""partition-chips: place the core-sized blocks of `tile-cores` on Loihi chips so that as
few spikes as possible cross between chips.

The block graph has one node per block of an on-chip population (one core each) and an
edge a→b weighted by the spike messages per step that block a sends to block b: for every
neuron of a whose spikes reach b (through a convolution, the neuron's pixel has a tap into
b's pixels; through a dense projection, always) one message per spike, as nengo-loihi
routes them (one population axon per pixel and target block). Spikes per step per neuron
are each layer's mean rate as `scale-rates` measured it (mean activation / unit); without
that report, every neuron counts as spiking once per step (plain fan-out counts). The
input layer and readouts run on the host and are not placed.

`snncc.passes.placement.partition` assigns blocks to chips (see docs/partitioning.md); the result
is written into each population's `chips` attribute (chip per block, row-major block
order). Within a chip, blocks take cores in graph order, as the Loihi target's allocator
gives them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.evaluate.estimate import mean_rates
from snncc.hw.loihi.geometry import Layer, Lowered, Projection, lower, where
from snncc.hw.loihi.limits import LIMIT_WORDS, LIMITS, Counter, block_grid
from snncc.ir.graph import Graph
from snncc.passes.placement import LOIHI_CORES_PER_CHIP, BlockGraph, Placement, partition
from snncc.passes.placement.partition import placement_from
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext

Block = tuple[tuple[int, int], ...]


def block_name(layer: Layer, index: int) -> str:
    return f"{layer.op.result.name}[{index}]"


def layer_rates(lowered: Lowered, ctx: PassContext) -> tuple[dict[str, float] | None, str]:
    """Mean spikes per step per neuron of every on-chip population from the scale-rates
    report, and a note saying where the traffic estimate comes from (None: no rates)."""
    measured = mean_rates(ctx.report)
    names = [x.op.result.name for x in lowered.chip_layers()]
    if not all(name in measured for name in names):
        return None, ("fan-out counts: no mean rate from scale-rates, every neuron is "
                      "assumed to spike once per step")
    return {name: measured[name] for name in names}, "scale-rates: mean rate of each layer"


def _reach_counts(counter: Counter, proj: Projection, src: Layer, src_grid: list[Block],
                  dst_grid: list[Block]) -> np.ndarray:
    """(source blocks × target blocks) neurons of each source block whose spikes reach
    each target block (nengo-loihi sends every pixel to an unsplit target)."""
    sizes = np.array([math.prod(hi - lo for lo, hi in b) for b in src_grid], dtype=np.float64)
    spatial = proj.kind != "dense" and len(src.shape) == 3 and src.shape == proj.in_shape
    if not spatial or len(dst_grid) == 1:
        return np.repeat(sizes[:, None], len(dst_grid), axis=1)
    chans = np.array([b[0][1] - b[0][0] for b in src_grid], dtype=np.float64)
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
            raise SnnccError(f"{where(x.op)}: has no block_shape; run tile-cores before "
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
    counter = Counter(lowered)
    for x in chip:
        for p in x.projections:
            src = lowered.source(p)
            if src.role != "chip":
                continue
            rate = 1.0 if rates is None else rates[src.op.result.name]
            counts = _reach_counts(counter, p, src, grids[id(src.op)], grids[id(x.op)])
            for a, b in zip(*np.nonzero(counts), strict=True):
                graph.add_edge(block_name(src, int(a)), block_name(x, int(b)),
                               rate * float(counts[a, b]))
    return graph


def check_blocks_fit(lowered: Lowered) -> None:
    """Refuse a block that does not fit one core (an IR tiled by hand or edited)."""
    counter = Counter(lowered)
    shapes = {id(x.op): x.op.attrs.block_shape for x in lowered.chip_layers()}
    for x in lowered.chip_layers():
        for i, use in enumerate(counter.layer(x, x.op.attrs.block_shape, shapes)):
            for key, limit in LIMITS.items():
                if use[key] > limit:
                    raise SnnccError(
                        f"{where(x.op)}: block {i} of block_shape "
                        f"{list(x.op.attrs.block_shape)} needs {use[key]} "
                        f"{LIMIT_WORDS[key]}, more than one core's {limit}: it is larger "
                        "than a core; run tile-cores to choose block shapes that fit")


def placement_of(lowered: Lowered, blocks: BlockGraph) -> Placement:
    """The placement the IR's `chips` attributes hold (every on-chip layer must have them)."""
    chip_of: dict[str, int] = {}
    for x in lowered.chip_layers():
        if not x.op.attrs.chips:
            raise SnnccError(f"{where(x.op)}: has no chips; run partition-chips")
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


@dataclass(frozen=True)
class PartitionChips(Pass):
    """Options: `chips` (chips available; unset = the fewest that fit), `cores-per-chip`
    (at most 128; lower it to spread a network over more chips), `seed`."""

    name = "partition-chips"
    summary = "place core-sized blocks on chips, minimising spikes between chips"
    requires = frozenset({"tiled"})
    establishes = frozenset({"placed"})

    chips: int | None = None
    cores_per_chip: int = LOIHI_CORES_PER_CHIP
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.chips is None or self.chips >= 1, f"partition-chips: chips must be ≥ 1 "
              f"(leave it out for the fewest chips that fit), got {self.chips}")
        check(1 <= self.cores_per_chip <= LOIHI_CORES_PER_CHIP,
              f"partition-chips: cores-per-chip must be in 1..{LOIHI_CORES_PER_CHIP} (a "
              f"Loihi chip has {LOIHI_CORES_PER_CHIP} cores), got {self.cores_per_chip}")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        lowered = lower(graph)
        require_tiled(lowered)
        check_blocks_fit(lowered)
        rates, source = layer_rates(lowered, ctx)
        blocks = block_graph(lowered, rates)
        try:
            placement = partition(blocks, self.cores_per_chip, self.chips, self.seed)
        except SnnccError as err:
            raise SnnccError(f"partition-chips: {err}") from None
        chip_of = placement.chip_of()
        changed = False
        for x in lowered.chip_layers():
            n = len(block_grid(x.shape, x.op.attrs.block_shape))
            chips = tuple(chip_of[block_name(x, i)] for i in range(n))
            if x.op.attrs.chips != chips:
                x.op.replace_attrs(chips=chips)
                changed = True
        ctx.record(self.name, **placement_report(blocks, placement, source))
        return changed


def placement_report(blocks: BlockGraph, placement: Placement, source: str) -> dict[str, Any]:
    """The pass report's facts (also what report.json shows)."""
    return {
        "chips": placement.chips,
        "chip_capacity": placement.cores_per_chip,
        "cores_per_chip": list(placement.cores_used),
        "blocks": len(blocks.blocks),
        "interchip_spikes_per_step": round(placement.interchip_spikes_per_step, 4),
        "intrachip_spikes_per_step": round(placement.intrachip_spikes_per_step, 4),
        "interchip_fraction": round(placement.interchip_fraction, 6),
        "traffic": source,
        "start": placement.strategy,
        "layers": {name: {str(c): n for c, n in sorted(per.items())}
                   for name, per in chips_by_layer(blocks, placement).items()},
    }
