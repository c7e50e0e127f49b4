"""`partition`: place blocks on Loihi chips so that as few spikes as possible cross chips.

Several initial assignments (spatial bisection of the blocks' positions, layer order, the
given order, METIS and KaHIP when installed, multilevel recursive bisection from a few
seeds, first-fit decreasing packing for multi-core blocks) are repaired to capacity; the
best few are refined by capacity-aware FM on the symmetrised traffic graph; the one with
the smallest cut wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snncc.hw.loihi.blockgraph import Adjacency, BlockGraph
from snncc.hw.loihi.limits import LOIHI_CORES_PER_CHIP
from snncc.hw.loihi.placement import Placement, placement_from
from snncc.hw.loihi.placement_error import PlacementError
from snncc.passes.placement import engines, initial, multilevel
from snncc.passes.placement.refine import refine, repair

LIBRARY_SEEDS = 10  # METIS k-way and recursive runs (seeds seed .. seed + 9)
KAHIP_SEEDS = 3  # KaHIP runs (one above KAHIP_BLOCKS blocks: ~6 s each at 4,600)
KAHIP_BLOCKS = 2000
MAX_RESTARTS = 4  # multilevel starts (different seeds) on small graphs ...
RESTART_BLOCKS = 8000  # ... while restarts × blocks stays below this ...
MULTILEVEL_BLOCKS = 3000  # ... and, when a library is installed, only below this


def _positive_int(value: object, what: str, advice: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise PlacementError(f"{what} must be a whole number ≥ 1, got {value!r}; {advice}")
    return int(value)


def chips_needed(cores: list[int], cores_per_chip: int) -> int:
    """Fewest chips: total cores / capacity, or more when first-fit decreasing packing of
    multi-core blocks needs more."""
    if not cores:
        return 0
    lower = math.ceil(sum(cores) / cores_per_chip)
    if max(cores) == 1:
        return lower
    return max(lower, max(initial.first_fit_decreasing(cores, cores_per_chip)) + 1)


def partition(graph: BlockGraph, cores_per_chip: int = LOIHI_CORES_PER_CHIP,
              n_chips: int | None = None, seed: int = 0) -> Placement:
    """Assign every block to a chip and cores on it, minimising inter-chip spikes per step.

    Uses the fewest chips the blocks fit on; `n_chips` is how many chips are available (an
    error if they are too few). To spread a network over more chips than it needs, lower
    `cores_per_chip`. Deterministic for a given `seed`.
    """
    cores_per_chip = _positive_int(cores_per_chip, "cores_per_chip",
                                   f"a Loihi chip has {LOIHI_CORES_PER_CHIP} cores")
    if n_chips is not None:
        n_chips = _positive_int(n_chips, "n_chips",
                                "leave it unset to use the fewest chips that fit")
    graph.validate(cores_per_chip)
    cores = [b.cores for b in graph.blocks]
    k = chips_needed(cores, cores_per_chip)
    if n_chips is not None and k > n_chips:
        raise PlacementError(
            f"the network needs {sum(cores)} cores, which takes {k} chips of "
            f"{cores_per_chip} cores, but only {n_chips} chips are available; "
            f"use at least {k} chips (or smaller blocks)")
    part, strategy = best_assignment(graph, k, cores_per_chip, seed)
    return _placement(graph, part, cores_per_chip, strategy)


def best_assignment(graph: BlockGraph, k: int, capacity: int,
                    seed: int) -> tuple[np.ndarray, str]:
    """The refined initial assignment with the smallest cut, and its strategy's name.

    Every distinct start is repaired and refined: the cut before refinement predicts the
    cut after poorly (a METIS k-way start under a tight capacity often has the largest cut
    and refines to the smallest). Refinement never increases a cut, so the result is never
    worse than the best start that fits as it is.
    """
    n = len(graph.blocks)
    if k <= 1:
        return np.zeros(n, dtype=np.int64), "single chip"
    adj = Adjacency.from_graph(graph)
    nbrs = adj.neighbours()
    cores = adj.cores.tolist()
    caps = [capacity] * k
    starts: dict[bytes, tuple[float, str, np.ndarray]] = {}
    for name, make in _strategies(graph, adj, nbrs, cores, k, capacity, seed):
        start = make()
        if start is not None:
            start = repair(nbrs, cores, start, caps)
        if start is not None:
            starts.setdefault(start.tobytes(), (adj.cut(start), name, start))
    best: tuple[float, np.ndarray, str] | None = None
    for _, name, start in sorted(starts.values(), key=lambda s: s[0]):
        part = refine(nbrs, cores, start, caps, seed=seed)
        cut = adj.cut(part)
        if best is None or cut < best[0] - 1e-9:
            best = (cut, part, name)
    assert best is not None, "first-fit decreasing packing always fits k chips"
    return best[1], best[2]


def _strategies(graph: BlockGraph, adj: Adjacency, nbrs: list, cores: list[int], k: int,
                capacity: int, seed: int) -> list[tuple[str, Callable[[], np.ndarray | None]]]:
    """(name, initial assignment) candidates that apply to this graph."""
    n = len(cores)
    out: list[tuple[str, Callable[[], np.ndarray | None]]] = []
    pos = initial.normalised_positions(graph.blocks)
    if pos is not None:
        depth = np.array([b.layer_index if b.layer_index is not None else 0
                          for b in graph.blocks], dtype=np.float64)
        out.append(("spatial bisection",
                    lambda: initial.spatial_bisection(pos, depth, cores, k)))
    layered = initial.layer_order(graph.blocks)
    if layered != list(range(n)):
        out.append(("layer order", lambda: initial.by_order(layered, cores, k)))
    out.append(("given order", lambda: initial.by_order(range(n), cores, k)))
    absent = engines.missing() if len(adj.weights) else list(engines.LIBRARIES)
    for s in range(seed, seed + LIBRARY_SEEDS):
        if "METIS" not in absent:
            out.append((f"METIS k-way (seed {s})",
                        lambda s=s: engines.metis(adj, k, capacity, s, recursive=False)))
            out.append((f"METIS recursive (seed {s})",
                        lambda s=s: engines.metis(adj, k, capacity, s, recursive=True)))
        if "KaHIP" not in absent and s < seed + (KAHIP_SEEDS if n <= KAHIP_BLOCKS else 1):
            out.append((f"KaHIP (seed {s})", lambda s=s: engines.kahip(adj, k, capacity, s)))
    restarts = min(MAX_RESTARTS, max(1, RESTART_BLOCKS // max(n, 1)))
    if len(absent) < len(engines.LIBRARIES) and n > MULTILEVEL_BLOCKS:
        restarts = 0
    for s in range(seed, seed + restarts):
        out.append((f"multilevel bisection (seed {s})", lambda s=s:
                    multilevel.recursive_bisection(nbrs, cores, k, capacity, s)))
    if max(cores) > 1:
        out.append(("first-fit decreasing",
                    lambda: np.array(initial.first_fit_decreasing(cores, capacity))))
    return out


def _placement(graph: BlockGraph, part: np.ndarray, capacity: int,
               strategy: str) -> Placement:
    """Number chips densely (an empty chip is dropped), then `placement_from`."""
    used = sorted(set(part.tolist()))
    dense = np.searchsorted(used, part).tolist()
    names = [b.name for b in graph.blocks]
    return placement_from(graph, dict(zip(names, dense, strict=True)), capacity, strategy)
