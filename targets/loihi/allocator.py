"""Places nengo-loihi's blocks on the chips `partition-chips` chose (the IR's `chips`).

nengo-loihi splits an ensemble into blocks in row-major order over its `BlockShape` grid,
the same order as the IR's `chips` attribute, and lists them in
`model.objs[ensemble]["out"]`; this allocator gives each block a new core on its chip.
"""

from __future__ import annotations

from typing import Any

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.limits import LOIHI_CORES_PER_CHIP
from snncc.targets.loihi.builder import import_nengo


def placement_allocator(chips: dict[Any, tuple[int, ...]]) -> Any:
    """An `nengo_loihi.hardware.allocators.Allocator` for ensemble → chip per block."""
    import_nengo()
    from nengo_loihi.hardware.allocators import Allocator
    from nengo_loihi.hardware.nxsdk_objects import Board

    class PlacementAllocator(Allocator):
        def __call__(self, model: Any, n_chips: int) -> Any:
            wanted = 1 + max(c for placed in chips.values() for c in placed)
            if wanted > n_chips:
                raise SnnccError(f"the placement uses {wanted} chips; the board has {n_chips}")
            board = Board()
            for _ in range(wanted):
                board.new_chip()
            for inp in model.inputs:
                self.input_to_board(inp, board)
            placed = {}
            for ens, chip_of_block in chips.items():
                blocks = model.objs[ens]["out"]
                blocks = blocks if isinstance(blocks, list) else [blocks]
                if len(blocks) != len(chip_of_block):
                    raise SnnccError(f"{ens.label}: nengo-loihi built {len(blocks)} blocks, "
                                     f"the placement lists {len(chip_of_block)}")
                placed.update({id(b): c for b, c in zip(blocks, chip_of_block, strict=True)})
            for block in model.blocks:
                if id(block) not in placed:
                    raise SnnccError(f"block {block} has no chip in the placement")
                chip = board.chips[placed[id(block)]]
                if len(chip.cores) == LOIHI_CORES_PER_CHIP:
                    raise SnnccError(f"the placement puts more than {LOIHI_CORES_PER_CHIP} "
                                     f"blocks on chip {placed[id(block)]}")
                self.block_to_new_core(block, chip)
            board.probes.extend(model.probes)
            return board

    return PlacementAllocator()
