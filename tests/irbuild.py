"""Small graphs the foundation tests build (importable with --import-mode=importlib as
`irbuild` through the conftest's sys.path entry)."""

from __future__ import annotations

import numpy as np

from snncc.ir import Graph, OnnxLoc, TensorType
from snncc.ir.ops import IF, AvgPool2d, Concat, Conv2d, ConvTranspose2d, Readout, Relu, Sigmoid


def tiny_unet(seed: int = 0, size: int = 8) -> Graph:
    """conv → relu → pool → conv → relu → convT → concat(skip) → conv → sigmoid."""
    rng = np.random.default_rng(seed)
    g = Graph("tiny")
    x = g.add_input("x", TensorType((1, 1, size, size)))

    def w(name: str, *shape: int):
        return g.weights.add(name, rng.standard_normal(shape).astype(np.float32) * 0.5)

    def loc(node: str, op: str) -> OnnxLoc:
        return OnnxLoc("tiny.onnx", node, op)

    c1 = g.add(Conv2d, [x], Conv2d.Attrs(w("c1.w", 4, 1, 3, 3), w("c1.b", 4), pads=(1, 1, 1, 1)),
               name="c1", loc=loc("/c1/Conv", "Conv"))
    r1 = g.add(Relu, [c1], name="r1", loc=loc("/r1/Relu", "Relu"))
    p1 = g.add(AvgPool2d, [r1], AvgPool2d.Attrs((2, 2), (2, 2)), name="p1")
    c2 = g.add(Conv2d, [p1], Conv2d.Attrs(w("c2.w", 8, 4, 3, 3), pads=(1, 1, 1, 1)), name="c2")
    r2 = g.add(Relu, [c2], name="r2")
    u = g.add(ConvTranspose2d, [r2], ConvTranspose2d.Attrs(w("up.w", 8, 4, 2, 2),
                                                           strides=(2, 2)), name="up")
    cat = g.add(Concat, [u, r1], name="cat")
    c3 = g.add(Conv2d, [cat], Conv2d.Attrs(w("c3.w", 1, 8, 1, 1), w("c3.b", 1)), name="c3")
    g.outputs = [g.add(Sigmoid, [c3], name="y")]
    return g


def tiny_spiking(seed: int = 0) -> Graph:
    """Two convs into one IF population (with bias), then a readout."""
    rng = np.random.default_rng(seed)
    g = Graph("spk")
    x = g.add_input("x", TensorType((1, 2, 6, 6)))
    wa = g.weights.add("a.w", rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    wb = g.weights.add("b.w", rng.standard_normal((3, 2, 1, 1)).astype(np.float32))
    bias = g.weights.add("pop.b", np.full(3, 0.1, np.float32))
    ca = g.add(Conv2d, [x], Conv2d.Attrs(wa, pads=(1, 1, 1, 1)), name="ca")
    cb = g.add(Conv2d, [x], Conv2d.Attrs(wb), name="cb")
    s = g.add(IF, [ca, cb], IF.Attrs(v_threshold=1.0, reset="zero", bias=bias), name="s")
    wo = g.weights.add("o.w", rng.standard_normal((1, 3, 1, 1)).astype(np.float32))
    co = g.add(Conv2d, [s], Conv2d.Attrs(wo), name="co")
    g.outputs = [g.add(Readout, [co], name="out")]
    return g
