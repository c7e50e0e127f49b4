"""Initial assignments of blocks to chips, each a different guess that FM then refines.

* `by_order`: cut an ordering of the blocks into consecutive chunks of balanced size (the
  given order, or layer by layer in raster order within a layer);
* `spatial_bisection`: recursive coordinate bisection of the blocks' positions, normalised
  per layer so that every layer of a conv net overlays the same unit square — each chip then
  gets one region of the image through all layers, and only region borders cross chips;
* `grow`: greedy graph growing of a region from a pseudo-peripheral block (used by the
  multilevel bisection, which needs no hints at all).

The orderings and the bisection balance core counts but may overfill a chip by part of a
multi-core block; `partition` repairs that (or drops the start when it cannot).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

import numpy as np

from snncc.hw.loihi.blockgraph import Block
from snncc.passes.placement.refine import Neighbours


def first_fit_decreasing(cores: Sequence[int], capacity: int) -> list[int]:
    """Bin index per block from first-fit decreasing packing (fewest bins, heuristically)."""
    room: list[int] = []
    out = [0] * len(cores)
    for v in sorted(range(len(cores)), key=lambda i: (-cores[i], i)):
        for b, r in enumerate(room):
            if r >= cores[v]:
                room[b] -= cores[v]
                out[v] = b
                break
        else:
            room.append(capacity - cores[v])
            out[v] = len(room) - 1
    return out


def split_targets(total: int, k: int) -> list[float]:
    """Cumulative core counts at which k balanced consecutive chunks end."""
    return [total * (i + 1) / k for i in range(k)]


def by_order(order: Sequence[int], cores: Sequence[int], k: int) -> np.ndarray:
    """Consecutive chunks of `order` with (nearly) equal core counts, one per chip."""
    part = np.zeros(len(cores), dtype=np.int64)
    ends = split_targets(sum(cores), k)
    acc, chip = 0, 0
    for v in order:
        # a block goes to the chunk that holds the larger share of its cores
        while chip < k - 1 and acc + cores[v] / 2 > ends[chip]:
            chip += 1
        part[v] = chip
        acc += cores[v]
    return part


def layer_order(blocks: Sequence[Block]) -> list[int]:
    """Blocks by layer index, then row, then column (blocks without hints keep their order
    after those with them)."""
    def key(i: int) -> tuple:
        b = blocks[i]
        li = b.layer_index if b.layer_index is not None else np.inf
        pos = b.position if b.position is not None else (np.inf, np.inf)
        return (li, pos[0], pos[1], i)
    return sorted(range(len(blocks)), key=key)


def normalised_positions(blocks: Sequence[Block]) -> np.ndarray | None:
    """(y, x) of each block in [0, 1]², scaled per layer by the span of that layer's block
    centres (first + last centre ≈ feature map size); None unless every block has one."""
    if not blocks or any(b.position is None for b in blocks):
        return None
    pos = np.array([b.position for b in blocks], dtype=np.float64)
    layer = [b.layer_index if b.layer_index is not None else b.layer for b in blocks]
    out = np.full_like(pos, 0.5)
    groups: dict[object, list[int]] = {}
    for i, key in enumerate(layer):
        groups.setdefault(key, []).append(i)
    for idx in groups.values():
        p = pos[idx]
        extent = p.min(axis=0) + p.max(axis=0)
        for ax in range(2):
            if extent[ax] > 0:
                out[idx, ax] = p[:, ax] / extent[ax]
    return out


def spatial_bisection(pos: np.ndarray, depth: np.ndarray, cores: Sequence[int],
                      k: int) -> np.ndarray:
    """Recursive coordinate bisection over (y, x): split along the wider axis at the core
    count that gives each side its share of chips. Ties go by layer depth."""
    part = np.zeros(len(cores), dtype=np.int64)
    c = np.asarray(cores)

    def split(idx: np.ndarray, kk: int, base: int) -> None:
        if kk == 1 or len(idx) == 0:
            part[idx] = base
            return
        k1 = kk // 2
        span = pos[idx].max(axis=0) - pos[idx].min(axis=0)
        ax = int(np.argmax(span))
        order = idx[np.lexsort((idx, depth[idx], pos[idx, 1 - ax], pos[idx, ax]))]
        cum = np.cumsum(c[order])
        cut = int(np.searchsorted(cum - c[order] / 2, cum[-1] * k1 / kk))
        split(order[:cut], k1, base)
        split(order[cut:], kk - k1, base + k1)

    split(np.arange(len(cores)), k, 0)
    return part


def _pseudo_peripheral(nbrs: Neighbours, inside: np.ndarray, start: int) -> int:
    """The last block reached by BFS from the last block reached by BFS from `start`."""
    for _ in range(2):
        seen = {start}
        queue = deque([start])
        while queue:
            start = queue.popleft()
            for u, _ in nbrs[start]:
                if inside[u] and u not in seen:
                    seen.add(u)
                    queue.append(u)
    return start


def grow(nbrs: Neighbours, cores: Sequence[int], nodes: list[int], inside: np.ndarray,
          target: float, rng: np.random.Generator) -> set[int]:
    """Grow a region from a pseudo-peripheral block, always adding the frontier block
    with the most traffic into the region minus traffic elsewhere, until `target` cores."""
    region: set[int] = set()
    into = {v: 0.0 for v in nodes}
    degree = {v: sum(w for u, w in nbrs[v] if inside[u]) for v in nodes}
    heap: list[tuple[float, int]] = []
    weight = 0
    order = [nodes[i] for i in rng.permutation(len(nodes))]
    seeds = iter(order)
    while weight < target:
        while heap and heap[0][1] in region:
            heapq.heappop(heap)
        if heap:
            v = heapq.heappop(heap)[1]
        else:
            v = next(s for s in seeds if s not in region)
            if not region:
                v = _pseudo_peripheral(nbrs, inside, v)
        if weight + cores[v] / 2 > target:
            break
        region.add(v)
        weight += cores[v]
        for u, w in nbrs[v]:
            if inside[u] and u not in region:
                into[u] += w
                heapq.heappush(heap, (-(2 * into[u] - degree[u]), u))
    return region
