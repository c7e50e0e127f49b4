"""Property-based fuzzing of the command line (issue #11): a mutated ONNX model or IR dump
(bytes, fields, shapes, attributes, weights) makes every command end with exit 0, 1 or 2,
never exit 3; nothing is written outside `-o`, and no input file changes.

Fixed seed; `SNNCC_FUZZ_EXAMPLES=2000` (and another `SNNCC_FUZZ_SEED`) runs longer than
CI's default."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from irbuild import tiny_unet
from test_bad_inputs import _seg_model

from snncc.cli.main import main
from snncc.ir import save_ir

EXAMPLES = int(os.environ.get("SNNCC_FUZZ_EXAMPLES", "40"))
SEED = int(os.environ.get("SNNCC_FUZZ_SEED", "11"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

with tempfile.TemporaryDirectory() as _d:
    BASE_ONNX = _seg_model(Path(_d) / "m.onnx").read_bytes()
    save_ir(tiny_unet(), Path(_d) / "m.snnir")
    BASE_IR = (Path(_d) / "m.snnir").read_text()
    BASE_NPZ = (Path(_d) / "m.npz").read_bytes()


def _bytes_mutation(data: bytes, draw) -> bytes:
    """Flip, cut, duplicate or overwrite a stretch of bytes."""
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
    at = draw(st.integers(0, max(len(data) - 1, 0)))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    return data[:at] + bytes(draw(st.integers(1, 32))) + data[at + 32:]


@st.composite
def onnx_models(draw) -> bytes:
    """The valid model with one of its bytes, dims, attributes, op types or weights changed."""
    if draw(st.booleans()):
        return _bytes_mutation(BASE_ONNX, draw)
    m = onnx.load_from_string(BASE_ONNX)
    kind = draw(st.sampled_from(["dim", "attr", "op", "weight", "dtype", "input", "opset"]))
    number = st.sampled_from([0, -1, 1, 2, 3, 7, 10**6, 2**40])
    if kind == "dim":
        vi = draw(st.sampled_from([*m.graph.input, *m.graph.output]))
        dim = draw(st.sampled_from(list(vi.type.tensor_type.shape.dim)))
        if draw(st.booleans()):
            dim.dim_value = draw(number)
        else:
            dim.dim_param = draw(st.sampled_from(["N", "", "?"]))
    elif kind == "attr":
        node = draw(st.sampled_from(list(m.graph.node)))
        node.attribute.append(onnx.helper.make_attribute(
            draw(st.sampled_from(["pads", "strides", "kernel_shape", "group", "dilations"])),
            draw(st.lists(number, min_size=1, max_size=5)) if draw(st.booleans())
            else draw(number)))
    elif kind == "op":
        node = draw(st.sampled_from(list(m.graph.node)))
        node.op_type = draw(st.sampled_from(["Relu", "Conv", "MaxPool", "Gemm", "Flatten",
                                             "Resize", "Softmax", "Frob", "Add", "Concat"]))
    elif kind == "weight":
        t = draw(st.sampled_from(list(m.graph.initializer)))
        values = onnx.numpy_helper.to_array(t).copy()
        values.flat[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -1e38, 0.0, 1e30]))
        if draw(st.booleans()):
            values = values.reshape(-1)
        t.CopyFrom(onnx.numpy_helper.from_array(values, t.name))
    elif kind == "dtype":
        vi = draw(st.sampled_from([*m.graph.input, *m.graph.output]))
        vi.type.tensor_type.elem_type = draw(st.sampled_from([2, 6, 7, 10, 11, 16]))
    elif kind == "input":
        m.graph.input[0].name = draw(st.sampled_from(["w1", "r", "y", "nothing", ""]))
    else:
        m.opset_import[0].version = draw(st.sampled_from([1, 7, 10, 13, 17, 99]))
    return m.SerializeToString()


@st.composite
def ir_dumps(draw) -> tuple[bytes, bytes]:
    """The valid dump with its text or its weights changed."""
    text, npz = BASE_IR.encode(), BASE_NPZ
    kind = draw(st.sampled_from(["bytes", "token", "line", "npz"]))
    if kind == "bytes":
        text = _bytes_mutation(text, draw)
    elif kind == "token":
        tokens = sorted(set(BASE_IR.replace("(", " ").replace(")", " ").replace(",", " ")
                            .split()))
        old = draw(st.sampled_from(tokens))
        new = draw(st.sampled_from([*tokens, "0", "-5", "nan", "inf", "1e308", '"x"', "[]",
                                    "tensor<0x1xf32>", "tensor<1x1x99999x99999xf32>", ""]))
        text = BASE_IR.replace(old, new, draw(st.sampled_from([1, -1]))).encode()
    elif kind == "line":
        lines = BASE_IR.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i] if draw(st.booleans()) else ""
        text = "".join(lines).encode()
    else:
        npz = _bytes_mutation(npz, draw)
    return text, npz


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _check(inputs: dict[str, bytes], commands: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, data in inputs.items():
            (root / name).write_bytes(data)
        for argv in commands:
            out = root / "out"
            argv = [a.replace("{root}", d) for a in argv]
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            assert code in (0, 1, 2), (argv, code, err.getvalue())
            assert "Traceback" not in err.getvalue()
            assert {k: v for k, v in _tree(root).items()
                    if not k.startswith("out")} == inputs, argv
            if out.is_dir():
                for p in sorted(out.rglob("*"), reverse=True):
                    p.unlink() if p.is_file() else p.rmdir()
                out.rmdir()
            elif out.exists():
                out.unlink()


@seed(SEED)
@FUZZ
@given(onnx_models())
def test_mutated_onnx_models(data):
    _check({"m.onnx": data}, [
        ["inspect", "{root}/m.onnx"],
        ["compile", "{root}/m.onnx", "--target", "numpy", "-o", "{root}/out", "--no-progress"],
    ])


@seed(SEED + 1)
@FUZZ
@given(ir_dumps())
def test_mutated_ir_dumps(dump):
    text, npz = dump
    _check({"m.snnir": text, "m.npz": npz}, [
        ["inspect", "{root}/m.snnir"],
        ["opt", "{root}/m.snnir", "-p", "canonicalize,remove-dead-ops", "-o",
         "{root}/out.snnir"],
        ["run", "{root}/m.snnir", "--input", "{root}/m.npz", "--no-progress"],
    ])
