"""IR core: building, type inference, verification, weights, locations."""

from __future__ import annotations

import numpy as np
import pytest
from irbuild import tiny_spiking, tiny_unet

from snncc.diagnostics import SnnccError
from snncc.ir import (
    FileLoc,
    Graph,
    IRError,
    OnnxLoc,
    TensorType,
    WeightStore,
    fuse,
    load_ir,
    save_ir,
)
from snncc.ir.ops import (
    IF,
    AvgPool2d,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Flatten,
    Relu,
    Reshape,
    Upsample,
)


def test_tiny_unet_types_and_verify():
    g = tiny_unet()
    g.verify()
    shapes = {op.result.name: op.result.type.shape for op in g.ops}
    assert shapes["c1"] == (1, 4, 8, 8)
    assert shapes["p1"] == (1, 4, 4, 4)
    assert shapes["up"] == (1, 4, 8, 8)
    assert shapes["cat"] == (1, 8, 8, 8)
    assert g.outputs[0].type == TensorType((1, 1, 8, 8))


def test_population_sums_inputs_and_outputs_spikes():
    g = tiny_spiking()
    g.verify()
    pop = next(g.ops_of(IF))
    assert len(pop.inputs) == 2
    assert pop.result.type.dtype == "i1"


@pytest.mark.parametrize(("size", "k", "s", "pads", "dil", "expected"), [
    (8, 3, 1, (1, 1, 1, 1), 1, 8),
    (8, 3, 2, (1, 1, 1, 1), 1, 4),
    (9, 3, 2, (0, 0, 0, 0), 2, 3),
])
def test_conv_output_sizes(size, k, s, pads, dil, expected):
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 2, size, size)))
    w = g.weights.add("w", np.zeros((3, 2, k, k), np.float32))
    y = g.add(Conv2d, [x], Conv2d.Attrs(w, strides=(s, s), pads=pads, dilations=(dil, dil)))
    assert y.type.shape == (1, 3, expected, expected)


def test_conv_transpose_output_padding_and_pool_ceil():
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 2, 5, 5)))
    w = g.weights.add("w", np.zeros((2, 3, 3, 3), np.float32))
    y = g.add(ConvTranspose2d, [x], ConvTranspose2d.Attrs(
        w, strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1)))
    assert y.type.shape == (1, 3, 10, 10)
    p = g.add(AvgPool2d, [x], AvgPool2d.Attrs((2, 2), (2, 2), ceil_mode=True))
    assert p.type.shape == (1, 2, 3, 3)
    u = g.add(Upsample, [x], Upsample.Attrs((2, 3)))
    assert u.type.shape == (1, 2, 10, 15)
    f = g.add(Flatten, [x])
    assert f.type.shape == (1, 50)
    r = g.add(Reshape, [f], Reshape.Attrs((1, 2, 25)))
    assert r.type.shape == (1, 2, 25)


@pytest.mark.parametrize(("build", "message"), [
    (lambda g, x: g.add(Conv2d, [x], Conv2d.Attrs(
        g.weights.add("w", np.zeros((3, 5, 3, 3), np.float32)))),
     "input has 2 channels but weight (3, 5, 3, 3)"),
    (lambda g, x: g.add(Concat, [x, g.add(Flatten, [x])]), "differ outside axis 1"),
    (lambda g, x: g.add(Dense, [x], Dense.Attrs(
        g.weights.add("w", np.zeros((3, 4), np.float32)))), "must have rank 2"),
    (lambda g, x: g.add(Reshape, [x], Reshape.Attrs((7,))), "cannot reshape"),
    (lambda g, x: g.add(IF, [x], IF.Attrs(v_threshold=-1.0)), "v_threshold must be > 0"),
    (lambda g, x: g.add(IF, [x], IF.Attrs(bias=g.weights.add(
        "b", np.zeros(7, np.float32)))), "bias @w[\"b\"] has shape (7,)"),
    (lambda g, x: g.add(Relu, [x, x]), "takes 1 input(s), got 2"),
])
def test_invalid_ops_are_refused_with_a_message(build, message):
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 2, 4, 4)))
    with pytest.raises(IRError) as info:
        build(g, x)
    assert message in str(info.value)


def test_verify_catches_use_before_definition_and_type_drift():
    g = tiny_unet()
    g.ops[0], g.ops[1] = g.ops[1], g.ops[0]
    with pytest.raises(IRError, match="before it is defined"):
        g.verify()
    g = tiny_unet()
    g.ops[0].result.type = TensorType((1, 4, 9, 9))
    with pytest.raises(IRError, match="result type tensor<1x4x9x9xf32> but the op computes"):
        g.verify()


def test_errors_name_the_onnx_node():
    g = tiny_unet()
    g.ops[0].result.type = TensorType((1, 4, 9, 9))
    with pytest.raises(IRError) as info:
        g.verify()
    assert "tiny.onnx: ONNX node '/c1/Conv' (Conv)" in str(info.value)


def test_fused_locations_flatten_and_deduplicate():
    a, b = OnnxLoc("m.onnx", "/a", "Conv"), FileLoc("x.snnir", 3, 4)
    fused = fuse(a, fuse(a, b))
    assert fused.locs == (a, b)
    assert "fused from" in fused.describe()


def test_weight_store_sha_and_sidecar(tmp_path):
    g = tiny_unet()
    save_ir(g, tmp_path / "m.snnir")
    assert (tmp_path / "m.npz").is_file()
    again = load_ir(tmp_path / "m.snnir")
    assert again.weights.sha256() == g.weights.sha256()
    np.testing.assert_array_equal(again.weights["c1.w"], g.weights["c1.w"])


def test_missing_or_mismatched_weights_file(tmp_path):
    g = tiny_unet()
    save_ir(g, tmp_path / "m.snnir")
    WeightStore({"other": np.ones(3)}).save(tmp_path / "m.npz")
    with pytest.raises(SnnccError, match="does not match") as info:
        load_ir(tmp_path / "m.snnir")
    assert "m.snnir:2:9" in str(info.value)
    (tmp_path / "m.npz").unlink()
    with pytest.raises(SnnccError, match="weights file not found"):
        load_ir(tmp_path / "m.snnir")


def test_weight_store_arrays_are_read_only():
    store = WeightStore()
    ref = store.add("w", np.ones(3, np.float32))
    with pytest.raises(ValueError):
        store[ref][0] = 2.0
    assert store.add("w", np.zeros(1)).name == "w.1"
