"""Multilevel recursive bisection (in the manner of METIS, under hard capacities).

Each bisection coarsens the graph by heavy-edge matching (pairs of blocks joined by the
most traffic become one vertex, up to a weight limit) until it is small, bisects the
coarsest graph by greedy growing from several starts (each FM-refined), then projects the
best bisection back level by level, FM-refining the blocks near the cut at each. Coarse
levels may exceed a side's budget by the weight of one coarse vertex; the finest level
must fit exactly.
Splitting k chips into ⌊k/2⌋ and ⌈k/2⌉ recursively gives a k-way assignment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from snncc.passes.placement.initial import grow
from snncc.passes.placement.refine import Neighbours, refine, repair

COARSEST = 40  # stop coarsening at this many vertices
STARTS = 6  # greedy-growing starts on the coarsest graph
LEVEL_PASSES = 4  # FM passes per uncoarsening level (near the cut only)


def subgraph(nbrs: Neighbours, nodes: Sequence[int]) -> list[list[tuple[int, float]]]:
    """The adjacency induced by `nodes`, renumbered 0..len(nodes)-1."""
    local = {v: i for i, v in enumerate(nodes)}
    return [[(local[u], w) for u, w in nbrs[v] if u in local] for v in nodes]


def coarsen(nbrs: Neighbours, cores: Sequence[int], limit: int,
            rng: np.random.Generator) -> tuple[list[list[tuple[int, float]]], list[int],
                                               np.ndarray]:
    """One level of heavy-edge matching: (coarse adjacency, coarse weights, fine → coarse)."""
    n = len(cores)
    match = [-1] * n
    for v in rng.permutation(n).tolist():
        if match[v] >= 0:
            continue
        best, best_w = v, 0.0
        for u, w in nbrs[v]:
            if match[u] < 0 and u != v and w > best_w and cores[u] + cores[v] <= limit:
                best, best_w = u, w
        match[v], match[best] = best, v
    cmap = [-1] * n
    m = 0
    for v in range(n):
        if cmap[v] < 0:
            cmap[v] = cmap[match[v]] = m
            m += 1
    weights = [0] * m
    agg: list[dict[int, float]] = [{} for _ in range(m)]
    for v in range(n):
        cv = cmap[v]
        weights[cv] += cores[v]
        d = agg[cv]
        for u, w in nbrs[v]:
            cu = cmap[u]
            if cu != cv:
                d[cu] = d.get(cu, 0.0) + w
    return [list(d.items()) for d in agg], weights, np.array(cmap, dtype=np.int64)


def _near_boundary(nbrs: Neighbours, part: np.ndarray) -> np.ndarray:
    """Vertices with a neighbour on the other side, and their neighbours."""
    cross = np.array([any(part[u] != part[v] for u, _ in row) for v, row in enumerate(nbrs)])
    near = cross.copy()
    for v in np.nonzero(cross)[0].tolist():
        for u, _ in nbrs[v]:
            near[u] = True
    return near


def _cut(nbrs: Neighbours, part: np.ndarray) -> float:
    return sum(w for v, row in enumerate(nbrs) for u, w in row if part[u] != part[v]) / 2


def bisect(nbrs: Neighbours, cores: Sequence[int], caps: tuple[int, int],
           rng: np.random.Generator, seed: int) -> np.ndarray | None:
    """Side (0/1) per vertex with side s holding at most caps[s] cores; None if the
    finest level cannot be made to fit."""
    total = sum(cores)
    limit = max(max(cores), min(caps) // 4)
    levels: list[tuple[Neighbours, Sequence[int], np.ndarray | None]] = [(nbrs, cores, None)]
    while len(levels[-1][1]) > COARSEST:
        g, c, _ = levels[-1]
        cg, cc, cmap = coarsen(g, c, limit, rng)
        if len(cc) > 0.9 * len(c):
            break
        levels.append((cg, cc, cmap))
    g, c, _ = levels[-1]
    relaxed = [caps[0] + max(c), caps[1] + max(c)]
    nodes = list(range(len(c)))
    inside = np.ones(len(c), dtype=bool)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(STARTS):
        region = grow(g, c, nodes, inside, total * caps[0] / sum(caps), rng)
        part = repair(g, c, np.array([0 if v in region else 1 for v in nodes]), relaxed)
        if part is None:
            continue
        part = refine(g, c, part, relaxed, seed=seed)
        cut = _cut(g, part)
        if best is None or cut < best[0]:
            best = (cut, part)
    if best is None:
        return None
    part = best[1]
    for level in range(len(levels) - 1, 0, -1):
        part = part[levels[level][2]]
        g, c, _ = levels[level - 1]
        budget = list(caps) if level == 1 else [caps[0] + max(c), caps[1] + max(c)]
        fixed = repair(g, c, part, budget)
        if fixed is None:
            return None
        part = refine(g, c, fixed, budget, movable=_near_boundary(g, fixed), seed=seed,
                      max_passes=LEVEL_PASSES)
    if len(levels) == 1:
        fixed = repair(g, c, part, list(caps))
        if fixed is None:
            return None
        part = refine(g, c, fixed, list(caps), seed=seed)
    return part


def recursive_bisection(nbrs: Neighbours, cores: Sequence[int], k: int, capacity: int,
                        seed: int) -> np.ndarray | None:
    """k-way assignment (chips of `capacity` cores) by multilevel recursive bisection."""
    part = np.zeros(len(cores), dtype=np.int64)
    rng = np.random.default_rng(seed)

    def split(nodes: list[int], kk: int, base: int) -> bool:
        if kk == 1 or not nodes:
            part[nodes] = base
            return True
        k1 = kk // 2
        side = bisect(subgraph(nbrs, nodes), [cores[v] for v in nodes],
                      (k1 * capacity, (kk - k1) * capacity), rng, seed)
        if side is None:
            return False
        left = [v for v, s in zip(nodes, side.tolist(), strict=True) if s == 0]
        right = [v for v, s in zip(nodes, side.tolist(), strict=True) if s == 1]
        return split(left, k1, base) and split(right, kk - k1, base + k1)

    return part if split(list(range(len(cores))), k, 0) else None
