"""Property-based fuzzing: random graphs round-trip; mutated text parses or fails located."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from irbuild import tiny_unet

from snncc.ir import Graph, ParseError, TensorType, WeightStore, parse_graph, print_graph
from snncc.ir.ops import IF, LIF, Add, AvgPool2d, Conv2d, Readout, Relu, Sigmoid, Upsample


@st.composite
def random_graphs(draw) -> Graph:
    """A random chain of shape-compatible ops over a feature map."""
    g = Graph(draw(st.sampled_from(["g", "net", "u_net.v2"])))
    c = draw(st.integers(1, 3))
    size = draw(st.sampled_from([4, 6, 8]))
    v = g.add_input(draw(st.sampled_from(["x", "image", "in.0"])), TensorType((1, c, size, size)))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    for i in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["conv", "relu", "pool", "up", "if", "lif", "add"]))
        c_in, h = v.type.shape[1], v.type.shape[2]
        if v.type.dtype == "i1" and kind in ("relu", "if", "lif", "add"):
            kind = "conv"
        if kind == "conv":
            c_out = draw(st.integers(1, 4))
            w = g.weights.add(f"w{i}", rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32))
            v = g.add(Conv2d, [v], Conv2d.Attrs(w, pads=(1, 1, 1, 1)), name=f"c{i}")
        elif kind == "relu":
            v = g.add(Relu, [v])
        elif kind == "pool" and h >= 4:
            v = g.add(AvgPool2d, [v], AvgPool2d.Attrs((2, 2), (2, 2)))
        elif kind == "up" and h <= 8:
            v = g.add(Upsample, [v], Upsample.Attrs((2, 2)))
        elif kind == "if":
            v = g.add(IF, [v, v], IF.Attrs(v_threshold=draw(st.floats(0.01, 10.0)),
                                           reset=draw(st.sampled_from(["zero", "subtract"]))))
        elif kind == "lif":
            v = g.add(LIF, [v], LIF.Attrs(tau=draw(st.floats(1e-4, 1.0))))
        elif kind == "add":
            v = g.add(Add, [v, v])
    if v.type.dtype == "i1":
        w = g.weights.add("wo", np.ones((1, v.type.shape[1], 1, 1), np.float32))
        v = g.add(Readout, [g.add(Conv2d, [v], Conv2d.Attrs(w))])
    g.outputs = [g.add(Sigmoid, [v], name="y")]
    return g


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_graphs_round_trip(graph):
    graph.verify()
    text = print_graph(graph)
    again = parse_graph(text, "r.snnir", weights_loader=lambda f, s: graph.weights)
    assert print_graph(again) == text


BASE = print_graph(tiny_unet())
LOCATED = re.compile(r"^m\.snnir:(\d+):(\d+): error: ")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(BASE) - 1), st.integers(0, 20),
       st.text(alphabet='%@{}()[],:=<>"x01. \nabc-', max_size=6))
def test_mutated_text_parses_or_fails_with_a_located_error(pos, cut, insert):
    text = BASE[:pos] + insert + BASE[pos + cut:]
    store = tiny_unet().weights
    try:
        graph = parse_graph(text, "m.snnir", weights_loader=lambda f, s: store)
    except ParseError as err:
        message = str(err)
        match = LOCATED.match(message)
        assert match, message
        line = int(match.group(1))
        assert 1 <= line <= max(len(text.splitlines()), 1)
        return
    again = print_graph(graph)
    assert parse_graph(again, "m.snnir", weights_loader=lambda f, s: store) is not None


def test_empty_weight_store_hash_is_stable():
    assert WeightStore().sha256() == WeightStore({}).sha256()
