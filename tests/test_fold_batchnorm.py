"""fold-batchnorm: golden IR (input and expected output under tests/golden/fold-batchnorm/,
also run by test_golden.py) and numerical equivalence before / after folding.

The graphs are built here; SNNCC_UPDATE_GOLDEN=1 rewrites the golden files from them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from snncc.ir import Graph, OnnxLoc, TensorType, print_graph
from snncc.ir.graph import Value
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import BatchNorm, Conv2d, ConvTranspose2d, Dense, Flatten, Relu
from snncc.pipeline import PassContext, PassManager, parse_pipeline

GOLDEN = Path(__file__).parent / "golden" / "fold-batchnorm"
RUN_LINE = "// RUN: fold-batchnorm\n"


class Builder:
    """Small graphs with random weights and ONNX-like locations."""

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.g = Graph(name)
        self.x = self.g.add_input("x", TensorType(shape))
        self.rng = np.random.default_rng(0)

    def w(self, name: str, *shape: int, positive: bool = False) -> object:
        a = self.rng.standard_normal(shape).astype(np.float32)
        return self.g.weights.add(name, np.abs(a) + 0.5 if positive else a)

    def loc(self, node: str, op_type: str) -> OnnxLoc:
        return OnnxLoc("m.onnx", node, op_type)

    def bn(self, x: Value, name: str) -> Value:
        c = x.type.shape[1]
        attrs = BatchNorm.Attrs(self.w(f"{name}.gamma", c, positive=True), self.w(
            f"{name}.beta", c), self.w(f"{name}.mean", c), self.w(f"{name}.var", c,
                                                                  positive=True))
        return self.g.add(BatchNorm, [x], attrs, name=name,
                          loc=self.loc(f"/{name}/BatchNormalization", "BatchNormalization"))


def folds() -> Graph:
    """conv (bias) → BN, grouped conv-transpose (no bias) → BN, dense → BN."""
    b = Builder("folds", (1, 2, 4, 4))
    c = b.g.add(Conv2d, [b.x], Conv2d.Attrs(b.w("c.w", 4, 2, 3, 3), b.w("c.b", 4),
                                            pads=(1, 1, 1, 1)),
                name="c", loc=b.loc("/c/Conv", "Conv"))
    r = b.g.add(Relu, [b.bn(c, "bn1")], name="r")
    u = b.g.add(ConvTranspose2d, [r], ConvTranspose2d.Attrs(b.w("u.w", 4, 3, 2, 2),
                                                            strides=(2, 2), groups=2),
                name="u", loc=b.loc("/u/ConvTranspose", "ConvTranspose"))
    f = b.g.add(Flatten, [b.g.add(Relu, [b.bn(u, "bn2")], name="r2")], name="f")
    d = b.g.add(Dense, [f], Dense.Attrs(b.w("d.w", 5, 384), b.w("d.b", 5)), name="d",
                loc=b.loc("/d/Gemm", "Gemm"))
    b.g.outputs = [b.bn(d, "bn3")]
    return b.g


def keeps() -> Graph:
    """Batch norms that must stay: on an input, after a ReLU, after a shared conv result."""
    b = Builder("keeps", (1, 2, 4, 4))
    first = b.bn(b.x, "bn_in")
    r = b.g.add(Relu, [first], name="r")
    after_relu = b.bn(r, "bn_relu")
    c = b.g.add(Conv2d, [after_relu], Conv2d.Attrs(b.w("c.w", 2, 2, 1, 1)), name="c",
                loc=b.loc("/c/Conv", "Conv"))
    b.g.outputs = [b.bn(c, "bn_shared"), c]
    return b.g


CASES: dict[str, Callable[[], Graph]] = {"folds": folds, "keeps": keeps}


def write_golden(name: str, graph: Graph, suffix: str, prefix: str = "") -> None:
    (GOLDEN / f"{name}{suffix}.snnir").write_text(
        prefix + print_graph(graph, weights_file=f"{name}{suffix}.npz"))
    graph.weights.save(GOLDEN / f"{name}{suffix}.npz")


def run_pass(graph: Graph) -> PassContext:
    ctx = PassContext(progress=False)
    PassManager(parse_pipeline("fold-batchnorm")).run(graph, ctx)
    return ctx


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str):
    graph = CASES[name]()
    before = RUN_LINE + print_graph(graph, weights_file=f"{name}.npz")
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        write_golden(name, graph, "", RUN_LINE)
    run_pass(graph)
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        write_golden(name, graph, ".expected")
    assert before == (GOLDEN / f"{name}.snnir").read_text()
    assert print_graph(graph, weights_file=f"{name}.expected.npz") == (
        GOLDEN / f"{name}.expected.snnir").read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_folding_keeps_the_outputs(name: str):
    graph = CASES[name]()
    x = np.random.default_rng(3).standard_normal((6, 2, 4, 4)).astype(np.float32)
    before = run_analog(graph, [x])
    run_pass(graph)
    for got, want in zip(run_analog(graph, [x]), before, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_report_says_what_was_folded_and_why_the_rest_was_kept():
    graph = folds()
    assert run_pass(graph).report["fold-batchnorm"] == {"folded": 3, "kept": []}
    assert not list(graph.ops_of(BatchNorm))
    report = run_pass(keeps()).report["fold-batchnorm"]
    assert report["folded"] == 0
    assert [(k["value"], k["reason"]) for k in report["kept"]] == [
        ("%bn_in", "its input is a graph input, not a layer's result"),
        ("%bn_relu", "its input comes from act.relu, not from syn.conv2d, syn.conv_transpose2d "
                     "or syn.dense"),
        ("%bn_shared", "the syn.conv2d result %c is also read elsewhere, which would see the "
                       "folded values"),
    ]
    assert report["kept"][0]["loc"] == "m.onnx: ONNX node '/bn_in/BatchNormalization' " \
                                       "(BatchNormalization)"
