"""Small models the conversion and spiking-simulator tests share (importable as
`spiking_models` through the conftest's sys.path entry).

`analog_unet` builds, in IR, a U-Net-shaped analog graph whose every ReLU carries an ONNX
location (so a stats file can name it): conv → relu → avg pool → conv → relu → residual
add (1×1 conv of the pooled input) → relu → transposed conv → concat with the first
layer → conv → relu → 1×1 head → sigmoid. `convert` runs a conversion pipeline on it.
"""

from __future__ import annotations

import numpy as np

from snncc.ir import Graph, OnnxLoc, TensorType
from snncc.ir.ops import Add, AvgPool2d, Concat, Conv2d, ConvTranspose2d, Relu, Sigmoid
from snncc.pipeline import PassContext, PassManager, parse_pipeline

FRONT = "fuse-linear"
IDEAL = f"{FRONT},convert-activations,scale-rates,quantize-weights"
LOIHI = f"{FRONT},convert-activations{{reset=zero}},scale-rates,quantize-weights"


def _loc(node: str, op: str) -> OnnxLoc:
    return OnnxLoc("unet.onnx", node, op)


def analog_unet(size: int = 8, width: int = 4, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("unet")
    x = g.add_input("x", TensorType((1, 1, size, size)))

    def w(name: str, *shape: int, gain: float = 1.0):
        fan_in = np.prod(shape[1:]) if name != "up.w" else shape[0] * np.prod(shape[2:]) / 4
        a = rng.standard_normal(shape) * gain * 1.5 / np.sqrt(fan_in)
        return g.weights.add(name, a.astype(np.float32))

    def b(name: str, n: int):
        return g.weights.add(name, (rng.standard_normal(n) * 0.1).astype(np.float32))

    def conv(src, name: str, cout: int, k: int = 3, bias: bool = True):
        cin = src.type.shape[1]
        attrs = Conv2d.Attrs(w(f"{name}.w", cout, cin, k, k), b(f"{name}.b", cout) if bias
                             else None, pads=(k // 2,) * 4)
        return g.add(Conv2d, [src], attrs, name=name, loc=_loc(f"/{name}/Conv", "Conv"))

    def relu(src, name: str):
        return g.add(Relu, [src], name=f"{name}_relu", loc=_loc(f"/{name}/Relu", "Relu"))

    e = relu(conv(x, "enc", width), "enc")
    p = g.add(AvgPool2d, [e], AvgPool2d.Attrs((2, 2), (2, 2)), name="pool",
              loc=_loc("/pool/AveragePool", "AveragePool"))
    m = relu(conv(p, "mid", width), "mid")
    res = g.add(Add, [conv(m, "mid2", width), conv(p, "skip", width, k=1, bias=False)],
                name="res", loc=_loc("/res/Add", "Add"))
    r = relu(res, "res")
    u = relu(g.add(ConvTranspose2d, [r], ConvTranspose2d.Attrs(
        w("up.w", width, width, 2, 2), b("up.b", width), strides=(2, 2)), name="up",
        loc=_loc("/up/ConvTranspose", "ConvTranspose")), "up")
    cat = g.add(Concat, [u, e], name="cat", loc=_loc("/cat/Concat", "Concat"))
    d = relu(conv(cat, "dec", width), "dec")
    head = conv(d, "head", 1, k=1)
    g.outputs = [g.add(Sigmoid, [head], name="prob", loc=_loc("/prob/Sigmoid", "Sigmoid"))]
    g.verify()
    return g


def images(n: int, size: int = 8, seed: int = 1) -> np.ndarray:
    """Smooth-ish random images in [0, 1], N×1×size×size."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 1, size // 2, size // 2))
    return np.clip(coarse.repeat(2, 2).repeat(2, 3) * 0.8
                   + rng.random((n, 1, size, size)) * 0.2, 0, 1).astype(np.float32)


def convert(graph: Graph, pipeline: str, calibration: np.ndarray | None = None,
            stats_file=None) -> PassContext:
    """Run `pipeline` on `graph` in place; return the context (its report)."""
    ctx = PassContext(calibration=calibration, stats_file=stats_file, progress=False)
    PassManager(parse_pipeline(pipeline)).run(graph, ctx)
    return ctx
