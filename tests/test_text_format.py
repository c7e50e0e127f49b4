"""Text format: byte-identical round trips, located parse errors, opaque ops."""

from __future__ import annotations

import re

import pytest
from irbuild import tiny_spiking, tiny_unet

from snncc.ir import OpaqueOp, ParseError, parse_graph, print_graph


def roundtrip(graph, **kwargs):
    text = print_graph(graph)
    again = parse_graph(text, "t.snnir", weights_loader=lambda f, s: graph.weights, **kwargs)
    assert print_graph(again) == text
    return text


@pytest.mark.parametrize("build", [tiny_unet, tiny_spiking])
def test_print_parse_print_is_byte_identical(build):
    text = roundtrip(build())
    assert text.startswith("snncc.ir 1\nweights \"weights.npz\" sha256 ")


def test_printing_is_deterministic_and_locations_survive():
    text = roundtrip(tiny_unet())
    assert text == print_graph(tiny_unet())
    assert 'loc("tiny.onnx":"/c1/Conv":"Conv")' in text


HEADER = 'snncc.ir 1\ngraph @g(%x: tensor<1x2xf32>) -> (tensor<1x2xf32>) {\n'


def parse_error(body: str, **kwargs) -> str:
    with pytest.raises(ParseError) as info:
        parse_graph(HEADER + body, "bad.snnir", **kwargs)
    return str(info.value)


@pytest.mark.parametrize(("body", "where", "message"), [
    ("  %y = act.relu(%x) : (tensor<1x2xf32>) -> tensor<1x2xf32>\n  return %y\n", None, None),
    ("  %y = act.relux(%x) : (tensor<1x2xf32>) -> tensor<1x2xf32>\n  return %y\n}\n",
     "bad.snnir:3:8", "unknown op 'act.relux' (did you mean 'act.relu'?)"),
    ("  %y = act.relu(%z) : (tensor<1x2xf32>) -> tensor<1x2xf32>\n  return %y\n}\n",
     "bad.snnir:3:17", "%z is used before it is defined"),
    ("  %y = act.relu(%x, %x) : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32>\n"
     "  return %y\n}\n", "bad.snnir:3:8", "takes 1 input(s), got 2"),
    ("  %y = act.relu(%x) : (tensor<1x3xf32>) -> tensor<1x3xf32>\n  return %y\n}\n",
     "bad.snnir:3:17", "%x has type tensor<1x2xf32>, the signature says tensor<1x3xf32>"),
    ("  %y = act.relu(%x) : (tensor<1x2xf32>) -> tensor<1x5xf32>\n  return %y\n}\n",
     "bad.snnir:3:8", "result type tensor<1x5xf32> but the op computes tensor<1x2xf32>"),
    ("  %y = act.softmax(%x) {axis = \"one\"} : (tensor<1x2xf32>) -> tensor<1x2xf32>\n"
     "  return %y\n}\n", "bad.snnir:3:8", "attribute 'axis': expected int, got \"one\""),
    ("  %y = act.softmax(%x) {axes = 1} : (tensor<1x2xf32>) -> tensor<1x2xf32>\n"
     "  return %y\n}\n", "bad.snnir:3:8", "unknown attribute 'axes'"),
    ("  %y = act.relu(%x) : (tensor<1x2xf32>) -> tensor<1x2xf32>\n  %y = act.relu(%x) : "
     "(tensor<1x2xf32>) -> tensor<1x2xf32>\n  return %y\n}\n", "bad.snnir:4:3",
     "%y is defined twice"),
    ("  %y = act.relu(%x) : (tensor<1x2xf32>) -> tensor<1x2xf32>\n  return %y %y\n}\n",
     "bad.snnir:4:13", "unexpected '%y'"),
])
def test_parse_errors_are_located_with_caret(body, where, message):
    if where is None:
        assert "unexpected end of input" in parse_error(body)
        return
    text = parse_error(body)
    assert text.startswith(where), text
    assert message in text
    line, col = map(int, where.split(":")[1:])
    source_line, caret = text.splitlines()[1:3]
    assert source_line.strip() == (HEADER + body).splitlines()[line - 1].strip()
    assert caret.index("^") - 2 == col - 1


def test_version_header_and_not_ir():
    with pytest.raises(ParseError, match="IR format version 7 is not supported"):
        parse_graph(HEADER.replace("snncc.ir 1", "snncc.ir 7") + "  return %x\n}\n", "old.snnir")
    with pytest.raises(ParseError, match="not an snncc IR file"):
        parse_graph("ir_version: 8\n", "model.txt")


def test_unregistered_ops_round_trip_as_opaque():
    body = ('  %y = myplugin.clip(%x) {lo = 0.0, hi = [1, 2], mode = "hard", w = @w["k"]} : '
            '(tensor<1x2xf32>) -> tensor<1x2xf32> loc("a.onnx":"/Clip":"Clip")\n  return %y\n}\n')
    assert "unknown op 'myplugin.clip'" in parse_error(body)
    assert "--allow-unregistered" in parse_error(body)
    import numpy as np

    from snncc.ir import WeightStore

    store = WeightStore({"k": np.ones(2)})
    text = HEADER.replace("\n", '\nweights "p.npz" sha256 "x"\n', 1) + body
    g = parse_graph(text, "p.snnir", allow_unregistered=True,
                    weights_loader=lambda f, s: store)
    assert isinstance(g.ops[0], OpaqueOp)
    text = print_graph(g)
    g2 = parse_graph(text, "p.snnir", allow_unregistered=True, weights_loader=lambda f, s: store)
    assert print_graph(g2) == text
    assert re.search(r'myplugin\.clip\(%x\) \{lo = 0\.0, hi = \[1, 2\], mode = "hard"', text)


def test_special_floats_and_escaped_strings_round_trip():
    from snncc.ir import Graph, OnnxLoc, TensorType
    from snncc.ir.ops import IF

    g = Graph("g")
    x = g.add_input("x", TensorType((1, 3)))
    g.outputs = [g.add(IF, [x], IF.Attrs(v_threshold=1e-30, amplitude=float("1e300")),
                       loc=OnnxLoc('we"ird\\name.onnx', "/a\nb", "Relu"))]
    roundtrip(g)
