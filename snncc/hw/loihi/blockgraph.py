"""The block graph: core-sized pieces of a spiking network and the spikes they exchange.

A *block* is what one Loihi core (or a known number of cores) runs. An *edge* a→b carries
the expected number of spike messages per timestep that block a sends to block b (from
measured firing rates when known, else the number of axons, each assumed active). The
partitioner only needs these numbers; layer and position are optional hints that let it
start from a spatially sensible assignment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from snncc.hw.loihi.placement_error import PlacementError


@dataclass(frozen=True)
class Block:
    """One core-sized piece of a population.

    `layer_index` orders layers from input to output; `position` is the block's
    (row, col) centre in its layer's feature map, in that layer's pixels.
    """

    name: str
    cores: int = 1
    layer: str | None = None
    layer_index: int | None = None
    position: tuple[float, float] | None = None


@dataclass
class BlockGraph:
    """Blocks and the directed spike traffic between them (spikes per timestep)."""

    blocks: list[Block] = field(default_factory=list)
    edges: dict[tuple[str, str], float] = field(default_factory=dict)

    def add_block(self, name: str, cores: int = 1, layer: str | None = None,
                  layer_index: int | None = None,
                  position: tuple[float, float] | None = None) -> Block:
        """Append a block and return it."""
        block = Block(name, cores, layer, layer_index, position)
        self.blocks.append(block)
        return block

    def add_edge(self, src: str, dst: str, spikes_per_step: float) -> None:
        """Add traffic src→dst; parallel connections between the same blocks accumulate."""
        _check_traffic(src, dst, spikes_per_step)
        self.edges[(src, dst)] = self.edges.get((src, dst), 0.0) + spikes_per_step

    @property
    def total_cores(self) -> int:
        return sum(b.cores for b in self.blocks)

    def index(self) -> dict[str, int]:
        """Block name → position in `blocks`."""
        return {b.name: i for i, b in enumerate(self.blocks)}

    def validate(self, cores_per_chip: int) -> None:
        """Raise `PlacementError` unless every block and edge can be placed on such chips."""
        names: set[str] = set()
        for b in self.blocks:
            if b.name in names:
                raise PlacementError(f"block '{b.name}' appears twice; give blocks unique names")
            names.add(b.name)
            if isinstance(b.cores, bool) or not isinstance(b.cores, (int, np.integer)) \
                    or b.cores < 1:
                raise PlacementError(f"block '{b.name}' has cores={b.cores!r}; "
                                     "a block needs a whole number of cores ≥ 1")
            if b.cores > cores_per_chip:
                raise PlacementError(
                    f"block '{b.name}' needs {b.cores} cores but a chip has {cores_per_chip}; "
                    "split the block into smaller blocks (a smaller block_shape)")
        for (src, dst), w in self.edges.items():
            for end in (src, dst):
                if end not in names:
                    raise PlacementError(f"edge {src}->{dst} names unknown block '{end}'; "
                                         "add the block before its edges")
            _check_traffic(src, dst, w)

    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph with node attributes cores/layer/layer_index/position and edge
        attribute spikes_per_step."""
        g = nx.DiGraph()
        for b in self.blocks:
            g.add_node(b.name, cores=b.cores, layer=b.layer, layer_index=b.layer_index,
                       position=b.position)
        for (src, dst), w in self.edges.items():
            g.add_edge(src, dst, spikes_per_step=w)
        return g

    @classmethod
    def from_networkx(cls, g: nx.DiGraph | nx.Graph) -> BlockGraph:
        """Inverse of `to_networkx`; missing attributes take their defaults (an edge without
        spikes_per_step carries 1) and an undirected graph's edges count both ways."""
        out = cls()
        for name, data in g.nodes(data=True):
            pos = data.get("position")
            out.add_block(str(name), data.get("cores", 1), data.get("layer"),
                          data.get("layer_index"), tuple(pos) if pos is not None else None)
        for src, dst, data in g.edges(data=True):
            w = data.get("spikes_per_step", 1.0)
            out.add_edge(str(src), str(dst), w)
            if not g.is_directed():
                out.add_edge(str(dst), str(src), w)
        return out


def _check_traffic(src: str, dst: str, w: object) -> None:
    if isinstance(w, bool) or not isinstance(w, (int, float, np.number)) \
            or not math.isfinite(w):
        raise PlacementError(f"edge {src}->{dst} has unknown traffic {w!r}; give a finite "
                             "spikes_per_step (estimate it from fan-out counts times an "
                             "assumed rate if rates are not measured)")
    if w < 0:
        raise PlacementError(f"edge {src}->{dst} has negative traffic {w}; "
                             "spikes_per_step must be ≥ 0")


def traffic(graph: BlockGraph, chip_of: Mapping[str, int]) -> tuple[float, float]:
    """(inter-chip, intra-chip) spikes per step when block name → chip is `chip_of`.

    Traffic a block sends to itself stays on its chip and counts as intra-chip.
    """
    inter = intra = 0.0
    for (src, dst), w in graph.edges.items():
        if chip_of[src] == chip_of[dst]:
            intra += w
        else:
            inter += w
    return inter, intra


@dataclass(frozen=True)
class Adjacency:
    """The symmetrised traffic graph (w(a,b) = traffic a→b + b→a, no self loops) in CSR
    form, with each block's core count as its vertex weight."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    cores: np.ndarray

    @property
    def n(self) -> int:
        return len(self.cores)

    @classmethod
    def from_graph(cls, graph: BlockGraph) -> Adjacency:
        idx = graph.index()
        n = len(graph.blocks)
        pairs = [(idx[s], idx[d], w) for (s, d), w in graph.edges.items() if s != d and w > 0]
        cores = np.array([b.cores for b in graph.blocks], dtype=np.int64)
        if not pairs:
            return cls(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0), cores)
        s, d, w = (np.array(c) for c in zip(*pairs, strict=True))
        rows = np.concatenate([s, d]).astype(np.int64)
        cols = np.concatenate([d, s]).astype(np.int64)
        vals = np.concatenate([w, w]).astype(np.float64)
        key = rows * n + cols
        uniq, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=vals)
        rows, cols = uniq // n, uniq % n
        indptr = np.zeros(n + 1, np.int64)
        np.add.at(indptr, rows + 1, 1)
        return cls(np.cumsum(indptr), cols, summed, cores)

    def neighbours(self) -> list[list[tuple[int, float]]]:
        """Per vertex, its (neighbour, weight) pairs as Python lists (fast to loop over)."""
        ind, w, ptr = self.indices.tolist(), self.weights.tolist(), self.indptr.tolist()
        return [list(zip(ind[ptr[i]:ptr[i + 1]], w[ptr[i]:ptr[i + 1]], strict=True))
                for i in range(self.n)]

    def cut(self, part: np.ndarray) -> float:
        """Total symmetrised weight between vertices in different parts."""
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        return float(self.weights[part[rows] != part[self.indices]].sum()) / 2.0
