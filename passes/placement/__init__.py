"""Inter-chip partitioning: place core-sized blocks of a spiking network on Loihi chips so
that as few spikes as possible cross between chips (independent of the IR)."""

from snncc.passes.placement.errors import PlacementError
from snncc.passes.placement.graph import Block, BlockGraph, traffic
from snncc.passes.placement.partition import (
           LOIHI_CORES_PER_CHIP,
           Placement,
           chips_needed,
           partition,
)
from snncc.passes.placement.plot import plot_placement

__all__ = ["LOIHI_CORES_PER_CHIP", "Block", "BlockGraph", "Placement", "PlacementError",
           "chips_needed", "partition", "plot_placement", "traffic"]
