"""Starting assignments from graph-partitioning libraries: KaHIP (`kahip`) and METIS
(`pymetis`), the optional extra `placement` (`pip install snncc[placement]`).

Both run on the symmetrised traffic graph with core counts as vertex weights, edge weights
scaled to integers, and an imbalance equal to the capacity's slack (at least 0.1 %: KaHIP
does not return with none). Neither enforces a hard capacity, so `partition` repairs and
refines what they return like every other start. A library that is not installed gives no
start (`missing` names it); the partitioner then relies on its own multilevel bisection.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from snncc.hw.loihi.blockgraph import Adjacency

EDGE_SCALE = 1_000_000  # the heaviest edge's integer weight
MIN_IMBALANCE = 0.001  # KaHIP never returns when asked for a perfect balance
LIBRARIES = {"KaHIP": "kahip", "METIS": "pymetis"}


def missing() -> list[str]:
    """Libraries of `LIBRARIES` that are not installed."""
    return [name for name, module in LIBRARIES.items()
            if importlib.util.find_spec(module) is None]


def _int_weights(adj: Adjacency) -> np.ndarray:
    if len(adj.weights) == 0:
        return np.zeros(0, dtype=np.int64)
    # divide before scaling: EDGE_SCALE / max overflows to inf for a subnormal max weight,
    # and the NaN it makes became int64's minimum, which crashed METIS
    relative = adj.weights / adj.weights.max()
    return np.maximum(1, np.round(relative * EDGE_SCALE)).astype(np.int64)


def imbalance(adj: Adjacency, k: int, capacity: int) -> float:
    """The slack k chips of `capacity` cores leave over a perfect balance (a fraction)."""
    return max(MIN_IMBALANCE, capacity * k / int(adj.cores.sum()) - 1)


def kahip(adj: Adjacency, k: int, capacity: int, seed: int) -> np.ndarray:
    """KaHIP's kaffpa (strong preset): chip per block."""
    import kahip as lib

    _, parts = lib.kaffpa(adj.cores.tolist(), adj.indptr.tolist(), _int_weights(adj).tolist(),
                          adj.indices.tolist(), k, imbalance(adj, k, capacity), True, seed,
                          lib.STRONG)
    return np.asarray(parts, dtype=np.int64)


def metis(adj: Adjacency, k: int, capacity: int, seed: int, recursive: bool) -> np.ndarray:
    """METIS k-way or recursive bisection: chip per block."""
    import pymetis

    opts = pymetis.Options(seed=seed)
    opts.ufactor = round(1000 * imbalance(adj, k, capacity))
    _, parts = pymetis.part_graph(k, pymetis.CSRAdjacency(adj.indptr, adj.indices),
                                  vweights=adj.cores, eweights=_int_weights(adj),
                                  tpwgts=[1.0 / k] * k, recursive=recursive, options=opts)
    return np.asarray(parts, dtype=np.int64)
