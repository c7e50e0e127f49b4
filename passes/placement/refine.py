"""Fiduccia–Mattheyses refinement of a k-way assignment under per-chip core capacities.

Each pass moves unlocked boundary blocks one at a time, best gain first (gain = traffic to
the target chip minus traffic to its own chip, on the symmetrised graph), locks each block
it moves, and finally rolls back to the best *feasible* prefix of moves, so a pass never
increases the cut. Hill-climbing through worse states lets it escape local minima.

Capacities are handled as in FM with a balance tolerance: a move may overfill one chip;
while a chip is overfull, the next move must take a block out of it into a chip with room.
With full chips this turns two moves into a Kernighan–Lin swap. Only prefixes that end with
every chip within capacity count as candidates for the result.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

EPS = 1e-9
Neighbours = Sequence[Sequence[tuple[int, float]]]


def loads(cores: Sequence[int], part: Sequence[int], n_parts: int) -> list[int]:
    """Cores used on each part."""
    out = [0] * n_parts
    for c, p in zip(cores, part, strict=True):
        out[p] += c
    return out


def _connections(nbrs: Neighbours, part: list[int], v: int) -> dict[int, float]:
    d: dict[int, float] = {}
    for u, w in nbrs[v]:
        d[part[u]] = d.get(part[u], 0.0) + w
    return d


def repair(nbrs: Neighbours, cores: Sequence[int], part: np.ndarray,
           capacity: Sequence[int]) -> np.ndarray | None:
    """Move blocks out of overfull parts, cheapest loss first; None if some part stays
    overfull because no block of it fits anywhere else."""
    p = [int(x) for x in part]
    load = loads(cores, p, len(capacity))
    members: list[set[int]] = [set() for _ in capacity]
    for v, q in enumerate(p):
        members[q].add(v)
    while True:
        over = [q for q in range(len(capacity)) if load[q] > capacity[q]]
        if not over:
            return np.array(p, dtype=np.int64)
        o = max(over, key=lambda q: (load[q] - capacity[q], -q))
        best: tuple[float, int, int] | None = None
        for v in sorted(members[o]):
            d = _connections(nbrs, p, v)
            own = d.get(o, 0.0)
            for t in range(len(capacity)):
                if t != o and load[t] + cores[v] <= capacity[t]:
                    key = (d.get(t, 0.0) - own, v, t)
                    if best is None or key[0] > best[0] + EPS:
                        best = key
        if best is None:
            return None
        _, v, t = best
        p[v] = t
        load[o] -= cores[v]
        load[t] += cores[v]
        members[o].discard(v)
        members[t].add(v)


class _FM:
    """State shared by the passes of one `refine` call."""

    def __init__(self, nbrs: Neighbours, cores: Sequence[int], part: list[int],
                 capacity: Sequence[int], nodes: list[int], labels: set[int],
                 prio: list[int]) -> None:
        self.nbrs, self.cores, self.part, self.capacity = nbrs, cores, part, capacity
        self.nodes, self.labels, self.prio = nodes, labels, prio
        self.label_list = sorted(labels)
        self.load = loads(cores, part, len(capacity))
        self.conn: dict[int, dict[int, float]] = {v: _connections(nbrs, part, v) for v in nodes}

    def best(self, v: int, room: bool) -> tuple[float, int]:
        """Best (gain, target) for v; with `room`, among all parts that still fit v
        (adjacent or not), else among adjacent parts that are not overfull."""
        p, d = self.part[v], self.conn[v]
        load, cap, labels = self.load, self.capacity, self.labels
        best_w, best_t = -1.0, -1
        if room:
            c = self.cores[v]
            for t in self.label_list:
                if t != p and load[t] + c <= cap[t]:
                    w = d.get(t, 0.0)
                    if w > best_w:
                        best_w, best_t = w, t
        else:
            for t, w in d.items():
                if w > best_w and t != p and load[t] <= cap[t] and t in labels:
                    best_w, best_t = w, t
        return best_w - d.get(p, 0.0), best_t

    def move(self, v: int, t: int) -> None:
        """Move v to part t, updating loads and its neighbours' connections."""
        p, c = self.part[v], self.cores[v]
        self.part[v] = t
        self.load[p] -= c
        self.load[t] += c
        conn = self.conn
        for u, w in self.nbrs[v]:
            d = conn.get(u)
            if d is None:
                continue
            left = d.get(p, 0.0) - w
            if left > EPS:
                d[p] = left
            else:
                d.pop(p, None)  # weights below EPS are not tracked
            d[t] = d.get(t, 0.0) + w

    def run_pass(self, patience: int) -> float:
        """One FM pass; returns the (non-negative) gain kept after rolling back."""
        part, load, cap = self.part, self.load, self.capacity
        # candidate moves of every block (`everyone`), and of the blocks of each part (to
        # empty an overfull part); stale entries (locked block, old stamp) are skipped
        everyone: list[tuple[float, int, int, int, int]] = []
        heaps: dict[int, list[tuple[float, int, int, int, int]]] = {q: [] for q in self.labels}
        stamp: dict[int, int] = dict.fromkeys(self.nodes, 0)
        locked: set[int] = set()
        conn = self.conn

        def push(v: int) -> None:
            d = conn[v]
            if not d or (len(d) == 1 and part[v] in d):
                return  # no neighbour on another part: no move with a gain
            g, t = self.best(v, room=False)
            if t >= 0:
                entry = (-g, self.prio[v], v, t, stamp[v])
                heapq.heappush(heaps[part[v]], entry)
                heapq.heappush(everyone, entry)

        for v in self.nodes:
            push(v)
        moves: list[tuple[int, int]] = []
        cum = best_cum = 0.0
        best_len = since = 0
        over = -1
        deferred: list[int] = []
        while since <= patience:
            if over < 0:
                while everyone and (everyone[0][2] in locked
                                    or everyone[0][4] != stamp[everyone[0][2]]):
                    heapq.heappop(everyone)
                if not everyone:
                    break
                neg_g, _, v, t, _ = heapq.heappop(everyone)
                gain = -neg_g
            else:
                h = heaps[over]
                chosen = None
                while h:
                    neg_g, pr, v, t, s = heapq.heappop(h)
                    if v in locked or s != stamp[v]:
                        continue
                    gain, t2 = self.best(v, room=True)
                    if t2 < 0:
                        deferred.append(v)
                    elif t2 == t and abs(gain + neg_g) <= EPS:
                        chosen = (v, t)
                        break
                    else:
                        heapq.heappush(h, (-gain, pr, v, t2, s))
                if chosen is None:
                    break
                v, t = chosen
            p = part[v]
            self.move(v, t)
            locked.add(v)
            moves.append((v, p))
            cum += gain
            if load[t] > cap[t]:
                over = t
            elif over == p and load[p] <= cap[p]:
                over = -1
                for u in deferred:
                    if u not in locked:
                        stamp[u] += 1
                        push(u)
                deferred.clear()
            for u, _ in self.nbrs[v]:
                if u in stamp and u not in locked:
                    stamp[u] += 1
                    push(u)
            if over < 0 and cum > best_cum + EPS:
                best_cum, best_len, since = cum, len(moves), 0
            else:
                since += 1
        for v, p in reversed(moves[best_len:]):
            self.move(v, p)
        assert all(load[q] <= cap[q] for q in self.labels)
        return best_cum


def refine(nbrs: Neighbours, cores: Sequence[int], part: np.ndarray,
           capacity: Sequence[int], *, movable: np.ndarray | None = None,
           labels: set[int] | None = None, seed: int = 0, max_passes: int = 12,
           patience: int | None = None) -> np.ndarray:
    """Improve a feasible assignment `part` (block → part label) by FM passes.

    `capacity[q]` is the core budget of part q. Only blocks in `movable` whose part is in
    `labels` move, and only between parts in `labels` (default: everything). The result
    respects the capacities and its cut is never larger than the input's. `patience` is
    how many moves without a new best a pass tries before it stops.
    """
    p = [int(x) for x in part]
    labs = set(range(len(capacity))) if labels is None else set(labels)
    load = loads(cores, p, len(capacity))
    if any(load[q] > capacity[q] for q in labs):
        raise ValueError("refine needs a feasible assignment; repair it first")
    nodes = [v for v in range(len(p)) if p[v] in labs and (movable is None or movable[v])]
    if len(labs) < 2 or not nodes:
        return np.array(p, dtype=np.int64)
    prio = np.random.default_rng(seed).permutation(len(p)).tolist()
    fm = _FM(nbrs, cores, p, capacity, nodes, labs, prio)
    if patience is None:
        patience = max(50, len(nodes) // 25)
    for _ in range(max_passes):
        if fm.run_pass(patience) <= EPS:
            break
    return np.array(fm.part, dtype=np.int64)
