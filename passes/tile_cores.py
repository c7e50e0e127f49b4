"""tile-cores: choose each on-chip population's `block_shape` from Loihi's per-core limits.

A population is split into blocks of one shape over C×H×W (nengo-loihi's `BlockShape`);
each block occupies one core. For every population the pass tries block shapes from the
fewest blocks upwards and keeps the first count at which every block satisfies every
limit nengo-loihi validates (compartments, input axons, output axons, synapse memory bits,
synapse configurations; counted as in `snncc.hw.loihi.limits`); among shapes
with that count it takes the one whose fullest resource is least full. Output axons depend
on how the *consumers* are split, so populations are tiled from the last to the first.

Input layers (driven by the image) and readouts run on the host (see
`snncc.hw.loihi.geometry`) and get no block shape. Synapse memory does not depend on
weight values (nengo-loihi always stores 8-bit weights), so the pass needs only `spiking`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.geometry import Layer, lower
from snncc.hw.loihi.limits import (
    LIMIT_WORDS,
    LIMITS,
    CoreUse,
    block_grid,
    summarize_use,
)
from snncc.ir.graph import Graph
from snncc.ir.properties import SPIKING, TILED
from snncc.pipeline.pass_base import Pass, PassContext

Shape = tuple[int, ...]
Block = tuple[tuple[int, int], ...]


def candidate_shapes(shape: Shape, max_size: int) -> list[tuple[int, Shape]]:
    """(block count, block shape) for every distinct way of cutting each axis into equal
    parts, fewest blocks first; ties prefer whole channels, then wide rows."""
    per_axis = [sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True) for n in shape]
    out = []
    for block in itertools.product(*per_axis):
        if math.prod(block) <= max_size:
            count = math.prod(-(-n // b) for n, b in zip(shape, block, strict=True))
            out.append((count, block))
    out.sort(key=lambda cb: (cb[0], tuple(-b for b in cb[1])))
    return out


def _alike_blocks(grid: list[Block]) -> dict[Block, int]:
    """One block per class of blocks that use the same resources, with the class's size:
    C×H×W blocks that differ only in their channel range but not its length do."""
    if any(len(b) != 3 for b in grid):
        return dict.fromkeys(grid, 1)
    out: dict[Block, int] = {}
    first: dict[tuple, Block] = {}
    for b in grid:
        key = (b[0][1] - b[0][0], b[1], b[2])
        rep = first.setdefault(key, b)
        out[rep] = out.get(rep, 0) + 1
    return out


@dataclass(frozen=True)
class TileCores(Pass):
    """Options: `max_fraction` keeps every block below that fraction of the compartment,
    axon and synapse-memory limits (head room, or forced splits in experiments); `prefer`
    picks among the fitting shapes with the fewest blocks: `room` (default) the one whose
    fullest resource is least full, `axons` the one with the fewest input axons in total
    (the axon messages into the layer, nengo-loihi's traffic count: less to route between
    chips)."""

    name = "tile-cores"
    summary = "split populations into blocks that satisfy every Loihi per-core limit"
    requires = frozenset({SPIKING})
    establishes = frozenset({TILED})

    max_fraction: float = 1.0
    prefer: str = "room"

    def __post_init__(self) -> None:
        if not 0 < self.max_fraction <= 1:
            raise ValueError(f"max-fraction must be in (0, 1], got {self.max_fraction}")
        if self.prefer not in ("room", "axons"):
            raise ValueError(f"prefer must be room or axons, got {self.prefer}")

    def limits(self) -> dict[str, int]:
        return {k: v if k == "synapse_configs" else max(1, int(v * self.max_fraction))
                for k, v in LIMITS.items()}

    def _fits(self, counter: CoreUse, layer: Layer, block: Shape,
              consumers: dict[int, Shape | None]
              ) -> tuple[bool, float, tuple[str, int], int]:
        """(fits, fullest fraction, (worst limit, its value), input axons of all blocks)
        for one block shape."""
        limits = self.limits()
        fullest, worst, in_axons = 0.0, ("compartments", 0), 0
        alike = _alike_blocks(block_grid(layer.shape, block))
        # an interior block first: it is usually the fullest, so a shape that does not fit
        # is refused after one block
        middle = list(alike)[len(alike) // 2]
        for i, b in enumerate([middle, *alike]):
            use = counter.block(layer, block, b, consumers)
            in_axons += use["in_axons"] * alike[b] if i else 0
            for key, limit in limits.items():
                frac = use[key] / limit
                if frac > fullest:
                    fullest, worst = frac, (key, use[key])
            if fullest > 1:
                return False, fullest, worst, in_axons
        return True, fullest, worst, in_axons

    def choose(self, counter: CoreUse, layer: Layer,
               consumers: dict[int, Shape | None]) -> Shape:
        limits = self.limits()
        best_fail: tuple[float, Shape, tuple[str, int]] | None = None
        chosen: tuple[tuple[float, ...], Shape] | None = None
        level = None
        candidates = candidate_shapes(layer.shape, limits["compartments"])
        if any(p.kind == "sparse" for p in layer.projections):
            # nengo-loihi 1.1 cannot split a block that sparse weights enter (split_blocks.py)
            candidates = [(1, layer.shape)]
            if math.prod(layer.shape) > limits["compartments"]:
                raise SnnccError(
                    f"{layer.op.describe()}: a syn.sparse projection (bilinear upsampling's "
                    "border) enters this layer, and nengo-loihi 1.1 cannot split a block fed "
                    f"by sparse weights, but its {math.prod(layer.shape)} neurons exceed one "
                    f"core's {limits['compartments']} compartments; use nearest upsampling "
                    "or a transposed convolution for Loihi, or a smaller layer (the numpy "
                    "target runs it)")
        for count, block in candidates:
            if chosen is not None and count != level:
                break
            ok, fullest, worst, in_axons = self._fits(counter, layer, block, consumers)
            rank = (in_axons, fullest) if self.prefer == "axons" else (fullest,)
            if ok and (chosen is None or rank < chosen[0]):
                chosen, level = (rank, block), count
            elif not ok and (best_fail is None or fullest < best_fail[0]):
                best_fail = (fullest, block, worst)
        if chosen is not None:
            return chosen[1]
        assert best_fail is not None
        _, block, (key, value) = best_fail
        raise SnnccError(
            f"{layer.op.describe()}: no block shape fits a Loihi core: even the best block "
            f"{list(block)} of this {'x'.join(map(str, layer.shape))} layer needs {value} "
            f"{LIMIT_WORDS[key]} per core, more than the limit of {limits[key]}"
            f"{'' if self.max_fraction == 1 else f' ({self.max_fraction:g} of {LIMITS[key]})'}"
            "; reduce the layer's fan-in or channel count (e.g. fewer input channels or a "
            "smaller kernel)")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        lowered = lower(graph)
        counter = CoreUse(lowered)
        shapes: dict[int, Shape | None] = {}
        for layer in reversed(lowered.layers):
            shapes[id(layer.op)] = (self.choose(counter, layer, shapes)
                                    if layer.role == "chip" else None)
        changed = False
        report, every_block = {}, []
        for layer in lowered.layers:
            block = shapes[id(layer.op)]
            op = layer.op
            if layer.role == "input":
                continue  # neuron.input has no tiling: it runs on the host
            if op.attrs.block_shape != block:
                op.replace_attrs(block_shape=block, chips=())
                changed = True
            if block is None:
                continue
            use = counter.layer(layer, block, shapes)
            every_block += use
            report[op.result.name] = {"shape": list(layer.shape), "block_shape": list(block),
                                      "cores": len(use), "use": summarize_use(use)}
        ctx.record(self.name, cores=len(every_block), limits=self.limits(),
                   use=summarize_use(every_block), layers=report)
        return changed

