"""snncc.passes.placement: capacities always respected, quality against a simple baseline and
the libraries it starts from, the traffic count, bad input. (Speed is measured by
examples/benchmarks/bench_partition.py --compile-time, not here.)"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snncc.hw.loihi.blockgraph import Adjacency, BlockGraph, traffic
from snncc.hw.loihi.placement_error import PlacementError
from snncc.passes.placement import chips_needed, engines, partition
from snncc.passes.placement.initial import by_order, layer_order


def conv_stack(layers: int, side: int, seed: int = 0) -> BlockGraph:
    """layers × side² blocks; each feeds the 3x3 neighbourhood in the next layer."""
    rng = np.random.default_rng(seed)
    g = BlockGraph()
    for li in range(layers):
        for r in range(side):
            for c in range(side):
                g.add_block(f"l{li}_{r}_{c}", 1, f"l{li}", li, (r + 0.5, c + 0.5))
    for li in range(layers - 1):
        for r in range(side):
            for c in range(side):
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        if 0 <= r + dr < side and 0 <= c + dc < side:
                            w = rng.uniform(0.5, 1.5) * (8 if dr == dc == 0 else 1)
                            g.add_edge(f"l{li}_{r}_{c}", f"l{li + 1}_{r + dr}_{c + dc}", w)
    return g


@st.composite
def random_graphs(draw) -> tuple[BlockGraph, int]:
    n = draw(st.integers(1, 40))
    cap = draw(st.integers(2, 12))
    cores = draw(st.lists(st.integers(1, cap), min_size=n, max_size=n))
    g = BlockGraph()
    for i, c in enumerate(cores):
        g.add_block(f"b{i}", c, f"layer{i % 3}", i % 3,
                    draw(st.none() | st.tuples(st.floats(0, 50), st.floats(0, 50))))
    if any(b.position is None for b in g.blocks):  # hints for all blocks or none
        g.blocks = [type(b)(b.name, b.cores, b.layer, b.layer_index) for b in g.blocks]
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                    st.floats(0, 100)), max_size=120))
    for a, b, w in edges:
        g.add_edge(f"b{a}", f"b{b}", w)
    return g, cap


@settings(max_examples=60, deadline=None)
@given(random_graphs(), st.integers(0, 3))
def test_every_placement_respects_capacity(case, seed):
    g, cap = case
    p = partition(g, cores_per_chip=cap, seed=seed)
    assert sorted(p.assignment) == sorted(b.name for b in g.blocks)
    used = [0] * p.chips
    for b in g.blocks:
        chip, core = p.assignment[b.name]
        assert core >= 0 and core + b.cores <= cap
        used[chip] += b.cores
    assert tuple(used) == p.cores_used and max(used) <= cap and min(used) > 0
    assert p.chips == chips_needed([b.cores for b in g.blocks], cap)
    inter, intra = traffic(g, p.chip_of())
    assert math.isclose(inter, p.interchip_spikes_per_step, abs_tol=1e-9)
    assert math.isclose(inter + intra, sum(g.edges.values()), rel_tol=1e-9, abs_tol=1e-9)


def test_no_worse_than_layer_order_chunks_on_a_conv_stack():
    g = conv_stack(layers=8, side=12)  # 1152 blocks → 9 chips of 128
    p = partition(g)
    order = layer_order(g.blocks)
    base = by_order(order, [1] * len(g.blocks), p.chips)
    baseline, _ = traffic(g, {b.name: int(c) for b, c in zip(g.blocks, base, strict=True)})
    assert p.chips == 9
    assert p.interchip_spikes_per_step <= 0.5 * baseline


def test_traffic_counts_direction_and_self_loops():
    g = BlockGraph()
    for name in "abc":
        g.add_block(name)
    g.add_edge("a", "b", 2.0)
    g.add_edge("b", "a", 1.0)
    g.add_edge("a", "a", 5.0)
    g.add_edge("b", "c", 0.5)
    g.add_edge("b", "c", 0.25)  # parallel connections accumulate
    assert traffic(g, {"a": 0, "b": 1, "c": 1}) == (3.0, 5.75)


def test_a_graph_that_fits_one_chip_stays_on_it():
    g = conv_stack(layers=2, side=4)
    p = partition(g)
    assert p.chips == 1 and p.interchip_spikes_per_step == 0
    assert p.intrachip_spikes_per_step == pytest.approx(sum(g.edges.values()))


def test_networkx_round_trip():
    g = conv_stack(layers=2, side=3)
    back = BlockGraph.from_networkx(g.to_networkx())
    assert back.blocks == g.blocks and back.edges == g.edges
    undirected = BlockGraph.from_networkx(nx.path_graph(3))
    assert undirected.edges[("0", "1")] == undirected.edges[("1", "0")] == 1.0


def test_too_few_chips_says_how_many_are_needed():
    g = conv_stack(layers=3, side=10)  # 300 cores
    with pytest.raises(PlacementError, match=r"needs 300 cores, which takes 3 chips of 128 "
                                             r"cores, but only 2 chips are available; use "
                                             r"at least 3 chips"):
        partition(g, n_chips=2)


@pytest.mark.parametrize("n_chips", [0, -1])
def test_chip_count_must_be_positive(n_chips):
    with pytest.raises(PlacementError, match=rf"n_chips must be a whole number ≥ 1, got "
                                             rf"{n_chips}"):
        partition(conv_stack(1, 2), n_chips=n_chips)


def test_block_larger_than_a_chip_is_refused():
    g = BlockGraph()
    g.add_block("big", cores=130)
    with pytest.raises(PlacementError, match=r"block 'big' needs 130 cores but a chip has 128; "
                                             r"split the block"):
        partition(g)


@pytest.mark.parametrize(("build", "message"), [
    (lambda g: g.add_block("a"), r"block 'a' appears twice"),
    (lambda g: g.add_block("z", cores=0), r"block 'z' has cores=0"),
    (lambda g: g.edges.update({("a", "q"): 1.0}), r"edge a->q names unknown block 'q'"),
    (lambda g: g.edges.update({("a", "b"): float("nan")}), r"edge a->b has unknown traffic"),
    (lambda g: g.edges.update({("a", "b"): -1.0}), r"edge a->b has negative traffic -1.0"),
])
def test_malformed_graphs_are_refused(build, message):
    g = BlockGraph()
    g.add_block("a")
    g.add_block("b")
    build(g)
    with pytest.raises(PlacementError, match=message):
        partition(g)


@pytest.mark.parametrize("cap", [64, 30])
def test_never_worse_than_the_libraries_it_starts_from(cap):
    """METIS (10 seeds, both modes) and KaHIP (3 seeds) as the pass runs them: the best of
    them that fits is an upper bound on the placement's inter-chip traffic."""
    pytest.importorskip("pymetis")
    pytest.importorskip("kahip")
    g = conv_stack(3, 8)
    adj = Adjacency.from_graph(g)
    k = math.ceil(adj.n / cap)
    runs = [engines.metis(adj, k, cap, s, recursive=r) for s in range(10) for r in (False, True)]
    runs += [engines.kahip(adj, k, cap, s) for s in range(3)]
    feasible = [adj.cut(p) for p in runs if np.bincount(p, minlength=k).max() <= cap]
    placed = partition(g, cap)
    assert feasible and placed.interchip_spikes_per_step <= min(feasible) + 1e-6
    assert max(placed.cores_used) <= cap


def test_without_the_libraries_the_own_starts_place_alone(monkeypatch):
    monkeypatch.setattr(engines, "missing", lambda: list(engines.LIBRARIES))
    g = conv_stack(3, 8)
    placed = partition(g, 30)
    assert max(placed.cores_used) <= 30 and placed.chips == math.ceil(3 * 64 / 30)
    assert not placed.strategy.startswith(("METIS", "KaHIP"))


def test_library_weights_stay_positive_integers_for_subnormal_traffic():
    """METIS crashed (a segfault) on the int64 minimum that a subnormal edge weight made."""
    from snncc.passes.placement.engines import _int_weights

    g = BlockGraph()
    for i in range(3):
        g.add_block(f"b{i}", 1, "layer", 0)
    g.add_edge("b0", "b1", 5e-324)
    g.add_edge("b1", "b2", 1e-320)
    weights = _int_weights(Adjacency.from_graph(g))
    assert weights.dtype == np.int64 and weights.min() >= 1
