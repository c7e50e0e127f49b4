"""The partitioner behind partition-chips: place core-sized blocks on Loihi chips so that
as few spikes as possible cross between chips (works on a `BlockGraph`, independent of the
IR)."""

from snncc.passes.placement.partition import chips_needed, partition

__all__ = ["chips_needed", "partition"]
