"""syn.sparse: a fixed sparse linear map — verification, text round trip, analog kernel."""

from __future__ import annotations

import numpy as np
import pytest

from snncc.ir import Graph, TensorType, print_graph
from snncc.ir.interp.analog import run_analog
from snncc.ir.op import IRError
from snncc.ir.ops import SparseMap
from snncc.ir.parser import parse_graph


def sparse_graph(indices: np.ndarray, values: np.ndarray, out_shape=(2, 3, 3)) -> Graph:
    g = Graph("sp")
    x = g.add_input("x", TensorType((1, 2, 2, 2)))
    attrs = SparseMap.Attrs(g.weights.add("m.w", values.astype(np.float32)),
                            g.weights.add("m.idx", indices), out_shape)
    g.outputs = [g.add(SparseMap, [x], attrs, name="m")]
    return g


def test_kernel_equals_the_dense_matrix_with_repeated_entries_summed():
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, 18, 40), rng.integers(0, 8, 40)], 1).astype(np.int32)
    idx[1] = idx[0]  # a repeated pair adds up
    values = rng.standard_normal(40)
    g = sparse_graph(idx, values)
    dense = np.zeros((18, 8))
    np.add.at(dense, (idx[:, 0], idx[:, 1]), values.astype(np.float32))
    x = rng.random((5, 2, 2, 2), dtype=np.float32)
    (got,) = run_analog(g, [x], batch_size=2)
    np.testing.assert_allclose(got.reshape(5, -1), x.reshape(5, -1) @ dense.T, atol=1e-5)


def test_round_trip():
    g = sparse_graph(np.array([[0, 1], [17, 7]], np.int32), np.array([0.5, -1.0]))
    text = print_graph(g)
    assert 'syn.sparse(%x) {weight = @w["m.w"], indices = @w["m.idx"], out_shape = [2, 3, 3]' \
        in text
    again = parse_graph(text, "t.snnir", weights_loader=lambda f, s: g.weights)
    assert print_graph(again) == text


@pytest.mark.parametrize(("indices", "values", "message"), [
    (np.array([[0, 8]], np.int32), np.ones(1), "reach outside the 18 outputs or the 8 inputs"),
    (np.array([[18, 0]], np.int32), np.ones(1), "reach outside the 18 outputs"),
    (np.array([[0, 1]], np.float32), np.ones(1), "holds float32 values; expected int32 indices"),
    (np.array([[0, 1]], np.int32), np.ones(2), r"has shape \(1, 2\); expected \(2, 2\)"),
])
def test_bad_indices_are_refused_with_a_message(indices, values, message):
    with pytest.raises(IRError, match=message):
        sparse_graph(indices, values)
