"""Bad inputs to the ONNX frontend: each error names the file (and node) and says what to do."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from models.onnx_build import assert_close, model, onnxruntime_run, rand, save
from onnx import TensorProto, helper

from snncc.diagnostics import SnnccError, UsageError
from snncc.frontend.onnx import (
    OnnxImportError,
    OnnxImportWarning,
    UnsupportedModelError,
    import_onnx,
)
from snncc.ir.interp.analog import run_analog

ANY4 = (None,) * 4


def conv_model(shape=(1, 1, 8, 8), weight: np.ndarray | None = None, opset: int = 13):
    w = rand(2, 1, 3, 3) if weight is None else weight
    return model([helper.make_node("Conv", ["image", "conv.weight"], ["y"], name="/conv/Conv",
                                   pads=[1, 1, 1, 1])],
                 {"image": shape}, {"y": ANY4}, {"conv.weight": w}, opset=opset)


def message(path: Path, **kwargs) -> str:
    with pytest.raises(SnnccError) as err:
        import_onnx(path, **kwargs)
    return str(err.value)


def test_missing_file(tmp_path):
    assert message(tmp_path / "nope.onnx") == f"{tmp_path / 'nope.onnx'}: no such file"


@pytest.mark.parametrize("content", [b"hello, I am text\n", b"", b"\x89PNG\r\n\x1a\n\0\0\0"])
def test_not_onnx(tmp_path, content):
    path = tmp_path / "notes.onnx"
    path.write_bytes(content)
    text = message(path)
    assert text.startswith(f"{path}: ") and "not an ONNX model" in text


def test_truncated_file(tmp_path):
    whole = save(conv_model(), tmp_path / "whole.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[: len(whole) // 2])
    assert message(cut) == (f"{cut}: the ONNX file is truncated or corrupted ({len(whole) // 2} "
                            "bytes could not be parsed); copy or export it again")


def test_checker_failure(tmp_path):
    m = model([helper.make_node("Relu", ["missing"], ["y"])], {"image": (1, 1, 4, 4)},
              {"y": (1, 1, 4, 4)})
    text = message(save(m, tmp_path / "bad.onnx"))
    assert text.startswith(f"{tmp_path / 'bad.onnx'}: the ONNX checker rejects the model: ")
    assert "missing" in text and "re-export" in text


def test_dynamic_shape_without_input_shape(tmp_path):
    path = save(conv_model(shape=("batch", 1, "height", "width")), tmp_path / "dyn.onnx")
    assert message(path) == (
        f"{path}: input 'image' has a dynamic shape (batchx1xheightxwidth); give a static one "
        "with --input-shape image=1,1,HEIGHT,WIDTH (input_shapes={'image': (...)} in Python)")
    graph = import_onnx(path, {"image": (1, 1, 6, 10)})
    assert graph.inputs[0].type.shape == (1, 1, 6, 10)
    assert graph.outputs[0].type.shape == (1, 2, 6, 10)


@pytest.mark.parametrize(("given", "expected"), [
    ({"img": (1, 1, 8, 8)}, "--input-shape names 'img', which is not an input of the model "
                            "(did you mean 'image'?); its inputs: 'image'"),
    ({"image": (1, 8, 8)}, "--input-shape image=1,8,8 has rank 3, but the model's input 'image' "
                           "has rank 4 (batchx1xHxW)"),
    ({"image": (1, 3, 8, 8)}, "--input-shape image=1,3,8,8 does not match the model's input "
                              "'image' (batchx1xHxW): dimension 1 is fixed to 1, not 3"),
])
def test_input_shape_that_does_not_match(tmp_path, given, expected):
    path = save(conv_model(shape=("batch", 1, "H", "W")), tmp_path / "m.onnx")
    assert message(path, input_shapes=given) == f"{path}: {expected}"


def test_no_inputs(tmp_path):
    m = model([helper.make_node("Relu", ["c"], ["y"])], {}, {"y": (2,)},
              {"c": np.ones(2, np.float32)})
    path = save(m, tmp_path / "const.onnx")
    assert "the model has no inputs" in message(path)


def test_integer_input(tmp_path):
    m = model([helper.make_node("Identity", ["image"], ["y"])], {"image": (1, 4)}, {"y": (1, 4)},
              input_type=TensorProto.INT64, output_type=TensorProto.INT64)
    assert "input 'image' has element type INT64; snncc compiles float32 models" in message(
        save(m, tmp_path / "int.onnx"))


def test_nan_and_inf_weights_name_the_initializer(tmp_path):
    w = rand(2, 1, 3, 3)
    w[0, 0, 0, :2] = [np.nan, np.inf]
    path = save(conv_model(weight=w), tmp_path / "nan.onnx")
    assert message(path) == (f"{path}: the weights hold NaN or Inf: initializer 'conv.weight' "
                             "(2 of 18 values); export the model again from a checkpoint with "
                             "finite weights")


def test_inf_in_a_constant_node(tmp_path):
    const = helper.make_node("Constant", [], ["k"], name="/scale/Constant",
                             value=helper.make_tensor("v", TensorProto.FLOAT, [], [np.inf]))
    m = model([const, helper.make_node("Mul", ["image", "k"], ["y"])], {"image": (1, 2)},
              {"y": (1, 2)})
    assert "Constant node '/scale/Constant'" in message(save(m, tmp_path / "inf.onnx"))


def test_opset_10_is_refused_with_the_upgrade_recipe(tmp_path):
    path = save(conv_model(opset=10), tmp_path / "old.onnx")
    text = message(path)
    assert text.startswith(f"{path}: the model uses ONNX opset 10; snncc reads opsets 11 to ")
    assert "onnx.version_converter" in text and "convert_version" in text
    assert "opset_version=13" in text


def test_unsupported_ops_are_all_listed_in_one_table(tmp_path):
    nodes = [
        helper.make_node("LeakyRelu", ["image"], ["a"], name="/act1/LeakyRelu"),
        helper.make_node("Relu", ["a"], ["b"], name="/act2/Relu"),  # fine, downstream
        helper.make_node("Tanh", ["b"], ["c"], name="/act3/Tanh"),
        helper.make_node("Mul", ["image", "image"], ["d"], name="/gate/Mul"),
        helper.make_node("MaxPool", ["image"], ["e"], name="/pool/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Add", ["c", "d"], ["y"], name="/sum/Add"),
    ]
    m = model(nodes, {"image": (1, 1, 4, 4)}, {"y": ANY4, "e": ANY4})
    path = save(m, tmp_path / "acts.onnx")
    with pytest.raises(UnsupportedModelError) as err:
        import_onnx(path)
    rows = [(r.node, r.op_type) for r in err.value.refusals]
    assert rows == [("/act1/LeakyRelu", "LeakyRelu"), ("/act3/Tanh", "Tanh"),
                    ("/gate/Mul", "Mul"), ("/pool/MaxPool", "MaxPool")]
    text = str(err.value)
    assert text.startswith(f"{path}: 4 nodes cannot be compiled to a spiking network:\n")
    header, rule, *lines = text.splitlines()[1:]
    assert re.fullmatch(r"  node +op type +why +what to do", header)
    assert set(rule.strip()) == {"-", " "} and len(lines) == 4
    assert "a spiking neuron's firing rate is a ReLU" in lines[0]
    assert "replace it by Relu and retrain" in lines[0]
    assert "a product of activations is not linear" in lines[2]
    assert "maxpool='avg' (CLI --maxpool=avg)" in lines[3] and "no exact max" in lines[3]


def pool_then_resizes_model() -> onnx.ModelProto:
    """MaxPool, then two linear Resizes, each after the node before it: every one refused."""
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [
        helper.make_node("MaxPool", ["image"], ["p"], name="/pool/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxPool", ["p"], ["q"], name="/pool2/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["q", "", "scales"], ["r"], name="/up1/Resize",
                         mode="cubic"),
        helper.make_node("Resize", ["r", "", "scales"], ["s"], name="/up2/Resize",
                         mode="cubic"),
        helper.make_node("Relu", ["s"], ["y"], name="/act/Relu"),
    ]
    m = model(nodes, {"image": (1, 2, 8, 8)}, {"y": ANY4})
    m.graph.initializer.append(scales)
    return m


def test_refusals_after_a_refused_node_are_listed_too(tmp_path):
    path = save(pool_then_resizes_model(), tmp_path / "pools.onnx")
    with pytest.raises(UnsupportedModelError) as err:
        import_onnx(path)
    assert [(r.node, r.op_type) for r in err.value.refusals] == [
        ("/pool/MaxPool", "MaxPool"), ("/pool2/MaxPool", "MaxPool"),
        ("/up1/Resize", "Resize"), ("/up2/Resize", "Resize")]
    assert "Resize mode 'cubic'" in err.value.refusals[3].why
    graph = err.value.graph
    assert [op.name for op in graph.ops] == ["onnx.MaxPool", "onnx.MaxPool", "onnx.Resize",
                                             "onnx.Resize", "act.relu"]
    assert graph.ops[3].result.type.shape == (1, 2, 8, 8)


def test_inspect_shows_a_model_with_refused_nodes(tmp_path, capsys):
    from snncc.cli.main import main

    path = save(pool_then_resizes_model(), tmp_path / "pools.onnx")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["p"].split()[1] == "onnx.MaxPool" and rows["p"].endswith("refused")
    assert rows["s"].split()[1] == "onnx.Resize" and rows["s"].endswith("refused")
    assert rows["y"].split()[1] == "act.relu" and not rows["y"].endswith("refused")
    assert "4 node(s) cannot be compiled to a spiking network:" in out
    assert main(["inspect", str(path), "--maxpool", "avg"]) == 0
    out = capsys.readouterr().out
    assert "2 node(s) cannot be compiled" in out and "syn.avgpool2d" in out


def test_other_domains_are_refused(tmp_path):
    m = model([helper.make_node("FusedConv", ["image"], ["y"], name="/f", domain="com.microsoft")],
              {"image": (1, 1, 4, 4)}, {"y": ANY4})
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    text = message(save(m, tmp_path / "ms.onnx"))
    assert "op domain 'com.microsoft' is not standard ONNX" in text


def maxpool_model(ceil_mode: int) -> onnx.ModelProto:
    pool = helper.make_node("MaxPool", ["image"], ["y"], name="/pool/MaxPool",
                            kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                            ceil_mode=ceil_mode)
    return model([pool], {"image": (1, 2, 7, 7)}, {"y": ANY4})


def test_maxpool_is_refused_by_default(tmp_path):
    path = save(maxpool_model(0), tmp_path / "pool.onnx")
    text = message(path)
    assert "a spiking network has no exact max" in text and "--maxpool=avg" in text


@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_maxpool_as_average_pooling_warns(tmp_path, ceil_mode):
    path = save(maxpool_model(ceil_mode), tmp_path / "pool.onnx")
    with pytest.warns(OnnxImportWarning, match=r"'/pool/MaxPool' compiled as average pooling"):
        graph = import_onnx(path, maxpool="avg")
    avg = maxpool_model(ceil_mode)
    avg.graph.node[0].op_type = "AveragePool"  # count_include_pad=0: padding not averaged
    x = rand(3, 2, 7, 7)
    avg_path = save(avg, tmp_path / "avg.onnx")
    want = np.concatenate([onnxruntime_run(avg_path, {"image": x[i:i + 1]})[0]
                           for i in range(3)])
    assert_close(run_analog(graph, [x])[0], want)


def test_no_warning_without_maxpool(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import_onnx(save(conv_model(), tmp_path / "m.onnx"), maxpool="avg")


def test_bad_maxpool_option(tmp_path):
    with pytest.raises(UsageError, match="maxpool must be 'error' or 'avg', got 'max'"):
        import_onnx(save(conv_model(), tmp_path / "m.onnx"), maxpool="max")


def test_errors_are_snncc_errors():
    assert issubclass(OnnxImportError, SnnccError)
    assert issubclass(UnsupportedModelError, SnnccError)
