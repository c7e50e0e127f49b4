"""Spiking graphs the Loihi tests build by hand (importable as `loihi_graphs` through the
conftest's sys.path entry): an input layer, U-Net-like encoder/decoder populations with
strided and transposed convolutions, a concat realised as two convolutions into one
population, and a readout."""

from __future__ import annotations

import numpy as np

from snncc.ir import Graph, OnnxLoc, TensorType
from snncc.ir.ops import IF, LIF, Conv2d, ConvTranspose2d, Readout, Sigmoid, SpikeInput


def _loc(node: str, op: str = "Conv") -> OnnxLoc:
    return OnnxLoc("unet.onnx", node, op)


def spiking_unet(size: int = 16, channels: tuple[int, int] = (4, 8), seed: int = 0,
                 scale: float = 1.0, threshold: float = 1.0) -> Graph:
    """input spikes → enc (3x3) → down (6x6 stride 2, pool folded in) → up (4x4 transposed,
    stride 2) + skip (3x3 from enc) → dec → 1x1 readout → sigmoid."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    g = Graph("unet_spk")
    g.with_properties("spiking")
    x = g.add_input("x", TensorType((1, 1, size, size)))

    def w(name: str, *shape: int, gain: float = 1.0):
        fan_in = np.prod(shape[1:]) if "up" not in name else shape[0] * np.prod(shape[2:]) / 4
        a = rng.standard_normal(shape) * scale * gain * 1.6 / np.sqrt(fan_in)
        return g.weights.add(name, a.astype(np.float32))

    def b(name: str, n: int, value: float = 0.02):
        return g.weights.add(name, np.full(n, value, np.float32))

    def pop(inputs, name: str, bias=None):
        return g.add(IF, inputs, IF.Attrs(v_threshold=threshold, reset="zero", bias=bias),
                     name=name, loc=_loc(f"/{name}/Relu", "Relu"))

    s_in = g.add(SpikeInput, [x], SpikeInput.Attrs(reset="zero"), name="inp")
    e = g.add(Conv2d, [s_in], Conv2d.Attrs(w("enc.w", c1, 1, 3, 3), pads=(1, 1, 1, 1)),
              name="enc_c", loc=_loc("/enc/Conv"))
    s_e = pop([e], "enc", b("enc.b", c1))
    d = g.add(Conv2d, [s_e], Conv2d.Attrs(w("down.w", c2, c1, 6, 6), strides=(2, 2),
                                          pads=(2, 2, 2, 2)), name="down_c", loc=_loc("/down/Conv"))
    s_d = pop([d], "down", b("down.b", c2))
    u = g.add(ConvTranspose2d, [s_d], ConvTranspose2d.Attrs(
        w("up.w", c2, c1, 4, 4), strides=(2, 2), pads=(1, 1, 1, 1)), name="up_c",
        loc=_loc("/up/ConvTranspose", "ConvTranspose"))
    k = g.add(Conv2d, [s_e], Conv2d.Attrs(w("skip.w", c1, c1, 3, 3, gain=0.7),
                                          pads=(1, 1, 1, 1)), name="skip_c", loc=_loc("/dec/Conv"))
    s_u = pop([u, k], "dec", b("dec.b", c1))
    o = g.add(Conv2d, [s_u], Conv2d.Attrs(w("out.w", 1, c1, 1, 1), b("out.b", 1, 0.0)),
              name="out_c", loc=_loc("/out/Conv"))
    r = g.add(Readout, [o], name="readout", loc=_loc("/out/Conv"))
    g.outputs = [g.add(Sigmoid, [r], name="y", loc=_loc("/Sigmoid", "Sigmoid"))]
    g.verify()
    return g


def single_layer(rates: np.ndarray, seed: int = 0) -> Graph:
    """Input layer → 1x1 identity convolution → one IF population with bias → readout.

    `rates` (H×W, values in (0, 1]) are the input currents per step: each on-chip neuron's
    expected spike count is predictable from the IR alone."""
    g = Graph("single")
    g.with_properties("spiking")
    h, wd = rates.shape
    x = g.add_input("x", TensorType((1, 1, h, wd)))
    s_in = g.add(SpikeInput, [x], SpikeInput.Attrs(reset="zero"), name="inp")
    one = g.weights.add("id.w", np.full((1, 1, 1, 1), 0.5, np.float32))
    c = g.add(Conv2d, [s_in], Conv2d.Attrs(one), name="c", loc=_loc("/c/Conv"))
    bias = g.weights.add("s.b", np.full(1, 0.25, np.float32))
    s = g.add(IF, [c], IF.Attrs(reset="zero", bias=bias), name="s", loc=_loc("/s/Relu", "Relu"))
    o = g.add(Conv2d, [s], Conv2d.Attrs(g.weights.add("o.w", np.ones((1, 1, 1, 1), np.float32))),
              name="o")
    g.outputs = [g.add(Readout, [o], name="y")]
    g.verify()
    return g


def wide_layer(c_in: int, c_out: int, size: int, kernel: int, lif: bool = False) -> Graph:
    """Input layer with `c_in` channels → one k×k convolution → a population: for limit
    tests (fan-in and synapse memory grow with c_in and the kernel)."""
    rng = np.random.default_rng(1)
    g = Graph("wide")
    g.with_properties("spiking")
    x = g.add_input("x", TensorType((1, c_in, size, size)))
    s_in = g.add(SpikeInput, [x], SpikeInput.Attrs(reset="zero"), name="inp")
    wt = g.weights.add("w", rng.standard_normal((c_out, c_in, kernel, kernel)).astype(np.float32))
    p = kernel // 2
    c = g.add(Conv2d, [s_in], Conv2d.Attrs(wt, pads=(p, p, p, p)), name="c",
              loc=_loc("/wide/Conv"))
    attrs = LIF.Attrs(reset="zero") if lif else IF.Attrs(reset="zero")
    s = g.add(LIF if lif else IF, [c], attrs, name="s", loc=_loc("/wide/Relu", "Relu"))
    o = g.add(Conv2d, [s], Conv2d.Attrs(g.weights.add("o.w", np.ones((1, c_out, 1, 1),
                                                                     np.float32))), name="o")
    g.outputs = [g.add(Readout, [o], name="y")]
    g.verify()
    return g
