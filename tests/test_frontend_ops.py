"""Exporter idioms beyond the backend node tests, checked against onnxruntime.

Constant arithmetic, Gemm / MatMul forms, the many ways exporters write nearest
upsampling, opset-dependent Softmax, transposes around Softmax, shape expressions that
must fold to constants, and how values and weights are named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from models.onnx_build import assert_close, model, onnxruntime_run, rand, save
from onnx import helper

from snncc.frontend.onnx import UnsupportedModelError, import_onnx
from snncc.ir import Graph
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import Dense, Softmax, Transpose, Upsample
from snncc.pipeline import PassContext, PassManager, parse_pipeline

ANY4 = (None,) * 4


def check(m: onnx.ModelProto, tmp_path: Path, images: int = 3) -> Graph:
    """Import `m`, run it on random inputs, compare with onnxruntime; return the graph."""
    path = save(m, tmp_path / "m.onnx")
    graph = import_onnx(path)
    feeds = {vi.name: rand(images, *[d.dim_value for d in vi.type.tensor_type.shape.dim][1:],
                           seed=i) for i, vi in enumerate(m.graph.input)}
    got = run_analog(graph, list(feeds.values()), batch_size=2)
    for k, out in enumerate(got):
        want = np.concatenate([onnxruntime_run(path, {n: a[i:i + 1] for n, a in feeds.items()})[k]
                               for i in range(images)])
        assert_close(out, want)
    return graph


def kinds(graph: Graph) -> list[str]:
    return [op.name for op in graph.ops]


def test_arithmetic_with_constants(tmp_path):
    w = {"c1": rand(3, 1, 1), "k": np.float32(0.5), "m": rand(1, 3, 1, 1, seed=1),
         "q": np.float32(4.0), "c3": rand(1, 1, 4, seed=2)}
    nodes = [
        helper.make_node("Add", ["image", "c1"], ["a"]),       # x + c
        helper.make_node("Sub", ["k", "a"], ["b"]),            # c - x
        helper.make_node("Mul", ["b", "m"], ["c"]),            # x * c
        helper.make_node("Div", ["c", "q"], ["d"]),            # x / c
        helper.make_node("Relu", ["image"], ["r"]),
        helper.make_node("Sum", ["d", "r", "c3"], ["e"]),      # x + y + c
        helper.make_node("Sub", ["e", "r"], ["y"]),            # x - y
    ]
    graph = check(model(nodes, {"image": (1, 3, 4, 4)}, {"y": ANY4}, w), tmp_path)
    assert kinds(graph) == ["syn.affine"] * 4 + ["act.relu", "syn.add", "syn.affine",
                                                 "syn.affine", "syn.add"]


def test_gemm_forms(tmp_path):
    nodes = [
        helper.make_node("Flatten", ["image"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["g"], transB=1),
        helper.make_node("Gemm", ["g", "b2", "c2"], ["h"], alpha=0.5, beta=2.0),
        helper.make_node("Gemm", ["h", "b3", "c3"], ["y"], transA=1),
    ]
    w = {"fc.weight": rand(6, 12), "fc.bias": rand(6, seed=1), "b2": rand(6, 4, seed=2),
         "c2": rand(1, 4, seed=3), "b3": rand(1, 5, seed=4), "c3": rand(4, 5, seed=5)}
    graph = check(model(nodes, {"image": (1, 3, 2, 2)}, {"y": (4, 5)}, w), tmp_path)
    assert kinds(graph) == ["syn.flatten", "syn.dense", "syn.dense", "syn.transpose",
                            "syn.dense", "syn.affine"]
    first = next(graph.ops_of(Dense))
    assert first.attrs.weight.name == "fc.weight"  # used as is: stored under its own name


def test_matmul_of_a_rank3_tensor(tmp_path):
    m = model([helper.make_node("MatMul", ["image", "w"], ["y"])], {"image": (1, 6, 8)},
              {"y": (1, 6, 5)}, {"w": rand(8, 5)})
    assert kinds(check(m, tmp_path)) == ["syn.reshape", "syn.dense", "syn.reshape"]


def resize(opset: int, inputs: list[str], weights: dict, size=(4, 5), **attrs):
    node = helper.make_node("Resize", ["image", *inputs], ["y"], mode=attrs.pop("mode", "nearest"),
                            **attrs)
    return model([node], {"image": (1, 2, *size)}, {"y": ANY4}, weights, opset=opset)


EMPTY = np.zeros(0, np.float32)
SCALES = np.array([1, 1, 2, 3], np.float32)

NEAREST = {
    "opset11-scales-empty-roi": resize(11, ["roi", "scales"], {"roi": EMPTY, "scales": SCALES}),
    "opset11-sizes-asymmetric-floor": resize(
        11, ["roi", "scales", "sizes"], {"roi": EMPTY, "scales": EMPTY,
                                         "sizes": np.array([1, 2, 8, 15], np.int64)},
        coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    "opset13-no-roi-pytorch-half-pixel-ceil": resize(
        13, ["", "scales"], {"scales": SCALES},
        coordinate_transformation_mode="pytorch_half_pixel", nearest_mode="round_prefer_ceil"),
    "opset18-axes": resize(18, ["", "scales"], {"scales": np.array([2, 2], np.float32)},
                           axes=[2, 3]),
    "opset19-half-pixel-symmetric": resize(19, ["", "scales"], {"scales": SCALES},
                                           coordinate_transformation_mode="half_pixel_symmetric"),
}


@pytest.mark.parametrize("name", sorted(NEAREST))
def test_nearest_resize_forms(name, tmp_path):
    graph = check(NEAREST[name], tmp_path)
    assert kinds(graph) == ["syn.upsample"]
    assert next(graph.ops_of(Upsample)).attrs.scale in ((2, 3), (2, 2))


LINEAR = {
    "half-pixel-x2x3": resize(13, ["", "scales"], {"scales": SCALES}, mode="linear"),
    "pytorch-half-pixel-x2-opset11": resize(
        11, ["roi", "scales"], {"roi": EMPTY, "scales": np.array([1, 1, 2, 2], np.float32)},
        size=(7, 6), mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
    "asymmetric-sizes": resize(
        13, ["", "", "sizes"], {"sizes": np.array([1, 2, 12, 10], np.int64)}, size=(6, 5),
        mode="linear", coordinate_transformation_mode="asymmetric"),
    "half-pixel-symmetric-x4": resize(
        19, ["", "scales"], {"scales": np.array([4, 4], np.float32)}, axes=[2, 3],
        mode="linear", coordinate_transformation_mode="half_pixel_symmetric"),
    "single-pixel": resize(13, ["", "scales"], {"scales": SCALES}, size=(1, 1), mode="linear"),
}


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_linear_resize_is_a_transposed_conv_plus_a_sparse_border(name, tmp_path):
    graph = check(LINEAR[name], tmp_path)
    kinds_ = kinds(graph)
    assert kinds_ in (["syn.conv_transpose2d", "syn.sparse", "syn.add"],
                      ["syn.conv_transpose2d"])
    assert (kinds_ == ["syn.conv_transpose2d"]) == (name == "single-pixel")


REFUSED_RESIZE = {
    "cubic": (resize(13, ["", "scales"], {"scales": SCALES}, mode="cubic"),
              "Resize mode 'cubic': only nearest and linear upsampling by integer factors"),
    "linear-align-corners": (resize(13, ["", "scales"], {"scales": SCALES}, size=(8, 8),
                                    mode="linear", coordinate_transformation_mode="align_corners"),
                             "weighs its inputs differently across the image"),
    "linear-fractional": (resize(13, ["", "scales"], {"scales": np.array([1, 1, 1.5, 2],
                                                                         np.float32)},
                                 mode="linear"),
                          "scale 1.5 along axis 2 (4 → 6) is not an integer ≥ 1"),
    "fractional": (resize(13, ["", "scales"], {"scales": np.array([1, 1, 1.5, 2], np.float32)}),
                   "scale 1.5 along axis 2 (4 → 6) is not an integer ≥ 1"),
    "align-corners": (resize(13, ["", "scales"], {"scales": SCALES},
                             coordinate_transformation_mode="align_corners"),
                      "coordinate_transformation_mode='align_corners' with "
                      "nearest_mode='round_prefer_floor' does not repeat each pixel 3 times "
                      "along axis 3"),  # along axis 2, 4 → 8 happens to be a plain repeat
    "tf-half-pixel": (resize(13, ["", "scales"], {"scales": SCALES},
                             coordinate_transformation_mode="tf_half_pixel_for_nn"),
                      "'tf_half_pixel_for_nn' with nearest_mode='round_prefer_floor' does not"),
    "channels": (resize(13, ["", "scales"], {"scales": np.array([1, 2, 2, 2], np.float32)}),
                 "resizes the batch or channel axis ([1, 2, 4, 5] → [1, 4, 8, 10])"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_RESIZE))
def test_other_resizes_are_refused(name, tmp_path):
    m, why = REFUSED_RESIZE[name]
    with pytest.raises(UnsupportedModelError) as err:
        import_onnx(save(m, tmp_path / "m.onnx"))
    assert why in err.value.refusals[0].why
    assert "nn.Upsample(scale_factor=2, mode='bilinear'" in err.value.refusals[0].todo


@pytest.mark.parametrize(("opset", "ops"), [
    (11, ["syn.reshape", "act.softmax", "syn.reshape"]),  # before 13: over all axes from 1 on
    (13, ["act.softmax"]),
])
def test_softmax_semantics_follow_the_opset(opset, ops, tmp_path):
    m = model([helper.make_node("Softmax", ["image"], ["y"], axis=1)], {"image": (1, 3, 2, 2)},
              {"y": ANY4}, opset=opset)
    assert kinds(check(m, tmp_path)) == ops


def test_transposes_around_softmax_cancel_after_canonicalize(tmp_path):
    nodes = [helper.make_node("Transpose", ["image"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Softmax", ["t"], ["s"], axis=3),
             helper.make_node("Transpose", ["s"], ["y"], perm=[0, 3, 1, 2])]
    m = model(nodes, {"image": (1, 3, 4, 4)}, {"y": ANY4}, opset=11)
    graph = check(m, tmp_path)
    x = rand(2, 3, 4, 4)
    (before,) = run_analog(graph, [x])
    PassManager(parse_pipeline("canonicalize")).run(graph, PassContext(progress=False))
    assert not list(graph.ops_of(Transpose))
    assert [op.attrs.axis for op in graph.ops_of(Softmax)] == [1]
    assert_close(run_analog(graph, [x])[0], before)


def test_shape_expressions_fold_to_constants(tmp_path):
    """Reshape(x, Concat(Gather(Shape(x), 0), [-1])), as exporters write x.view(x.size(0), -1)."""
    nodes = [
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["image", "target"], ["flat"]),
        helper.make_node("Reshape", ["flat", "back"], ["y"]),  # 0 copies a dimension
    ]
    w = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
         "minus_one": np.array([-1], np.int64), "back": np.array([0, 4, -1], np.int64)}
    m = model(nodes, {"image": (1, 2, 3, 4)}, {"y": (1, 4, 6)}, w)
    graph = check(m, tmp_path)
    assert kinds(graph) == ["syn.reshape", "syn.reshape"]
    assert len(graph.weights) == 0


def test_names_bypasses_and_shared_weights(tmp_path):
    nodes = [
        helper.make_node("Conv", ["input.1", "enc.weight"], ["/enc/Conv_output_0"],
                         name="/enc/Conv"),
        helper.make_node("Identity", ["/enc/Conv_output_0"], ["same"]),
        helper.make_node("Dropout", ["same"], ["kept"], name="/drop/Dropout"),
        helper.make_node("Conv", ["kept", "enc.weight"], ["out:0"], name="/dec/Conv"),
    ]
    m = model(nodes, {"input.1": (1, 2, 5, 5)}, {"out:0": ANY4}, {"enc.weight": rand(2, 2, 1, 1)})
    graph = check(m, tmp_path)
    assert [v.name for v in graph.inputs] == ["input.1"]
    assert [op.result.name for op in graph.ops] == ["enc_Conv", "out_0"]
    assert [op.attrs.weight.name for op in graph.ops] == ["enc.weight", "enc.weight"]
    assert list(graph.weights) == ["enc.weight"]
    assert [op.loc.node for op in graph.ops] == ["/enc/Conv", "/dec/Conv"]


def test_unnamed_nodes_are_located_by_index(tmp_path):
    m = model([helper.make_node("Relu", ["image"], ["r"]),
               helper.make_node("Tanh", ["r"], ["y"])], {"image": (1, 4)}, {"y": (1, 4)})
    with pytest.raises(UnsupportedModelError) as err:
        import_onnx(save(m, tmp_path / "m.onnx"))
    assert [(r.node, r.op_type) for r in err.value.refusals] == [("#1", "Tanh")]


@pytest.mark.parametrize(("shape", "const"), [((1, 3, 1, 1), (1, 3, 4, 4)),
                                              ((1, 3), (1, 1, 3))])
def test_affine_constant_that_would_enlarge_the_tensor_is_refused(tmp_path, shape, const):
    m = model([helper.make_node("Add", ["image", "c"], ["y"])], {"image": shape},
              {"y": (None,) * len(const)}, {"c": rand(*const)})
    with pytest.raises(UnsupportedModelError, match="does not broadcast to the computed tensor"):
        import_onnx(save(m, tmp_path / "m.onnx"))
