"""partition-chips: place the core-sized blocks of `tile-cores` on Loihi chips so that as
few spikes as possible cross between chips.

The chip block graph (`snncc.hw.loihi.chip_blocks`) weights each pair of blocks by the axon
messages per step between them as nengo-loihi counts them: weighted by each layer's
`mean_rate` (set by scale-rates) or, when the IR has none, the plain axon count.
`snncc.passes.placement.partition` assigns blocks to chips (see docs/partitioning.md); the
result is written into each population's `chips` attribute (chip per block, row-major block
order). Within a chip, blocks take cores in graph order, as the Loihi target's allocator
gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.blockgraph import BlockGraph
from snncc.hw.loihi.chip_blocks import (
    block_graph,
    block_name,
    check_blocks_fit,
    chips_by_layer,
    layer_rates,
    require_tiled,
)
from snncc.hw.loihi.geometry import lower
from snncc.hw.loihi.limits import LOIHI_CORES_PER_CHIP, block_grid
from snncc.hw.loihi.placement import Placement
from snncc.ir.graph import Graph
from snncc.ir.properties import PLACED, TILED
from snncc.passes.placement import engines, partition
from snncc.passes.support.options import check
from snncc.pipeline.pass_base import Pass, PassContext


@dataclass(frozen=True)
class PartitionChips(Pass):
    """Options: `chips` (chips available; unset = the fewest that fit), `cores-per-chip`
    (at most 128; lower it to spread a network over more chips), `seed`."""

    name = "partition-chips"
    summary = "place core-sized blocks on chips, minimising spikes between chips"
    requires = frozenset({TILED})
    establishes = frozenset({PLACED})

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
        rates, source = layer_rates(graph, lowered)
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
        "libraries_missing": engines.missing(),
        "layers": {name: {str(c): n for c, n in sorted(per.items())}
                   for name, per in chips_by_layer(blocks, placement).items()},
    }
