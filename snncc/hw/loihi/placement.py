"""A placement of core-sized blocks on chips: which chip and cores each block takes, and the
spike traffic within and between chips that follows (the partitioner in
`snncc.passes.placement` makes one; the IR's `chips` attributes record it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from snncc.hw.loihi.blockgraph import BlockGraph, traffic
from snncc.hw.loihi.placement_error import PlacementError


@dataclass(frozen=True)
class Placement:
    """Where each block runs: block name → (chip, first core on that chip); a block of
    several cores occupies consecutive cores from there."""

    assignment: dict[str, tuple[int, int]]
    chips: int
    cores_per_chip: int
    cores_used: tuple[int, ...]
    interchip_spikes_per_step: float
    intrachip_spikes_per_step: float
    strategy: str

    def chip_of(self) -> dict[str, int]:
        """Block name → chip."""
        return {name: chip for name, (chip, _) in self.assignment.items()}

    @property
    def interchip_fraction(self) -> float:
        """Share of all spike traffic that crosses chips (0 when there is no traffic)."""
        total = self.interchip_spikes_per_step + self.intrachip_spikes_per_step
        return self.interchip_spikes_per_step / total if total > 0 else 0.0


def placement_from(graph: BlockGraph, chip_of: Mapping[str, int], cores_per_chip: int,
                   strategy: str = "given") -> Placement:
    """The placement block name → chip `chip_of` describes: cores on each chip in block
    order, and the traffic totals. Raises `PlacementError` if a chip is over capacity."""
    k = 1 + max(chip_of.values(), default=-1)
    next_core = [0] * k
    assignment: dict[str, tuple[int, int]] = {}
    for b in graph.blocks:
        chip = chip_of[b.name]
        assignment[b.name] = (chip, next_core[chip])
        next_core[chip] += b.cores
    over = [c for c, used in enumerate(next_core) if used > cores_per_chip]
    if over:
        raise PlacementError(f"chip {over[0]} holds {next_core[over[0]]} cores, more than "
                             f"its {cores_per_chip}")
    inter, intra = traffic(graph, chip_of)
    return Placement(assignment, k, cores_per_chip, tuple(next_core), inter, intra, strategy)
