"""Reading an ONNX file: parse, check, bind input shapes, infer shapes, check the weights.

Everything here fails with an `OnnxImportError` naming the file and saying what to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from snncc.diagnostics import closest
from snncc.frontend.onnx.errors import OnnxImportError
from snncc.host.memory import check_tensor_size

MIN_OPSET = 11
MAX_OPSET = onnx.defs.onnx_opset_version()


@dataclass
class LoadedModel:
    """A checked model with static input shapes, ready for lowering."""

    model: onnx.ModelProto
    file: str
    opset: int
    inputs: list[tuple[str, tuple[int, ...]]]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def load_model(path: Path, input_shapes: Mapping[str, tuple[int, ...]] | None) -> LoadedModel:
    file = str(path)
    model = read_model(path)
    opset = _check_opset(model, file)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, UnicodeDecodeError) as err:
        raise OnnxImportError(f"{file}: the ONNX checker rejects the model: {err}\nre-export "
                              "the model, or repair it with the onnx tools") from None
    constants = _initializers(model, file)
    inputs = _bind_inputs(model, file, constants, dict(input_shapes or {}))
    for name, shape in inputs:
        check_tensor_size(f"{file}: input '{name}'", shape)
    _check_finite(model, file, constants)
    shapes = _infer_shapes(model, file, inputs)
    for name, shape in shapes.items():
        check_tensor_size(f"{file}: tensor '{name}'", shape)
    return LoadedModel(model, file, opset, inputs, constants, shapes)


def read_model(path: Path) -> onnx.ModelProto:
    """The ModelProto in `path`, its external data read from beside it; refused with a
    located message when the file is not a (complete) ONNX model."""
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OnnxImportError(f"{file}: no such file") from None
    except OSError as err:
        raise OnnxImportError(f"{file}: cannot read the file: {err.strerror}") from None
    # A serialized ModelProto starts with field 1 (ir_version, a small varint): 0x08 0x03..
    looks_onnx = len(data) >= 2 and data[0] == 0x08 and 0 < data[1] < 0x40
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        if looks_onnx:
            raise OnnxImportError(
                f"{file}: the ONNX file is truncated or corrupted ({len(data)} bytes could not "
                "be parsed); copy or export it again") from None
        raise OnnxImportError(f"{file}: not an ONNX model (the file is not a serialized "
                              "onnx.ModelProto); pass the .onnx file the exporter wrote") from None
    if not model.HasField("graph") or model.ir_version == 0:
        what = "is truncated (it holds no graph)" if looks_onnx else "is not an ONNX model"
        raise OnnxImportError(f"{file}: the file {what}; pass a complete .onnx file")
    for what, tensor in _tensors(model.graph):
        if tensor.data_location == TensorProto.EXTERNAL:
            _load_external(tensor, what, path)
    return model


def _tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, TensorProto]]:
    """Every tensor a graph stores: initializers and node attributes (subgraphs too)."""
    for t in graph.initializer:
        yield f"initializer '{t.name}'", t
    for node in graph.node:
        for attr in node.attribute:
            where = f"{node.op_type} node '{node.name or node.output[0]}'"
            for t in [attr.t] if attr.HasField("t") else list(attr.tensors):
                yield where, t
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _tensors(sub)


def _load_external(tensor: TensorProto, what: str, model_path: Path) -> None:
    """Read a tensor's external data from a file inside the model's directory only."""
    file = str(model_path)
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    base = model_path.resolve().parent
    target = (base / location).resolve()
    if not location or Path(location).is_absolute() or base not in target.parents:
        raise OnnxImportError(
            f"{file}: {what} keeps its data in '{location}', outside the model's directory "
            f"{base}; snncc reads external data only from files beside the model (no '..', "
            "absolute paths or links leading out)")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        with target.open("rb") as f:
            f.seek(offset)
            data = f.read() if length < 0 else f.read(length)
    except (OSError, ValueError) as err:
        raise OnnxImportError(f"{file}: {what}: cannot read its external data '{location}': "
                              f"{getattr(err, 'strerror', None) or err}; keep the file beside "
                              "the model") from None
    expected = math.prod(tensor.dims) * _itemsize(tensor, file, what)
    if len(data) != expected:
        raise OnnxImportError(f"{file}: {what}: its external data '{location}' holds "
                              f"{len(data)} bytes at offset {offset}, the tensor needs "
                              f"{expected}; export the model and its data file again")
    tensor.raw_data = data
    tensor.data_location = TensorProto.DEFAULT
    del tensor.external_data[:]


def _itemsize(tensor: TensorProto, file: str, what: str) -> int:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        raise OnnxImportError(f"{file}: {what} has data type {tensor.data_type}, which "
                              "cannot be stored externally; export it as float32") from None


def _check_opset(model: onnx.ModelProto, file: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise OnnxImportError(f"{file}: the model imports no standard ONNX opset")
    opset = versions[0]
    if opset < MIN_OPSET:
        raise OnnxImportError(
            f"{file}: the model uses ONNX opset {opset}; snncc reads opsets {MIN_OPSET} to "
            f"{MAX_OPSET}. Upgrade it with onnx.version_converter:\n"
            f"  python -c \"import onnx, onnx.version_converter as vc; onnx.save("
            f"vc.convert_version(onnx.load('{file}'), 13), 'upgraded.onnx')\"\n"
            "or export it again with opset_version=13 or newer")
    if opset > MAX_OPSET:
        raise OnnxImportError(
            f"{file}: the model uses ONNX opset {opset}, newer than the installed onnx package "
            f"{onnx.__version__} knows ({MAX_OPSET}); upgrade onnx or export with an older opset")
    return opset


def _initializers(model: onnx.ModelProto, file: str) -> dict[str, np.ndarray]:
    if model.graph.sparse_initializer:
        raise OnnxImportError(f"{file}: sparse initializers are not supported; export the "
                              "weights as dense tensors")
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _dims(vi: onnx.ValueInfoProto) -> list[int | str] | None:
    """The declared dims of a graph input (int if static, a name or '?' if not)."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.dim_value > 0 else (d.dim_param or "?") for d in tt.shape.dim]


def _bind_inputs(
    model: onnx.ModelProto,
    file: str,
    constants: dict[str, np.ndarray],
    given: dict[str, tuple[int, ...]],
) -> list[tuple[str, tuple[int, ...]]]:
    """Static shapes for the real inputs (not initializers); written back into the model."""
    real = [vi for vi in model.graph.input if vi.name not in constants]
    if not real:
        raise OnnxImportError(f"{file}: the model has no inputs (every graph input is an "
                              "initializer); snncc compiles models that take an input tensor")
    names = [vi.name for vi in real]
    for name in given:
        if name not in names:
            raise OnnxImportError(
                f"{file}: --input-shape names '{name}', which is not an input of the model"
                f"{closest(name, names)}; its inputs: {', '.join(repr(n) for n in names)}")
    bound = []
    for vi in real:
        if not vi.type.HasField("tensor_type"):
            raise OnnxImportError(f"{file}: input '{vi.name}' is not a tensor; snncc compiles "
                                  "models whose inputs are float32 tensors")
        elem = vi.type.tensor_type.elem_type
        if elem != TensorProto.FLOAT:
            raise OnnxImportError(
                f"{file}: input '{vi.name}' has element type "
                f"{TensorProto.DataType.Name(elem)}; snncc compiles float32 models")
        shape = _static_shape(file, vi, given.get(vi.name))
        dims = vi.type.tensor_type.shape
        dims.ClearField("dim")
        for d in shape:
            dims.dim.add().dim_value = d
        bound.append((vi.name, shape))
    return bound


def _static_shape(file: str, vi: onnx.ValueInfoProto, given: tuple[int, ...] | None):
    declared = _dims(vi)
    dims = vi.type.tensor_type.shape.dim
    if any(d.HasField("dim_value") and d.dim_value == 0 for d in dims):
        raise OnnxImportError(f"{file}: input '{vi.name}' is empty (a dimension is 0); snncc "
                              "compiles models whose inputs hold data")
    shown = "x".join(map(str, declared)) if declared is not None else "unknown rank"
    if given is None:
        if declared is not None and all(isinstance(d, int) for d in declared):
            return tuple(declared)
        example = ",".join(str(d) if isinstance(d, int) else ("1" if i == 0 else d.upper())
                           for i, d in enumerate(declared or ["N", "C", "H", "W"]))
        raise OnnxImportError(
            f"{file}: input '{vi.name}' has a dynamic shape ({shown}); give a static one with "
            f"--input-shape {vi.name}={example} (input_shapes={{'{vi.name}': (...)}} "
            "in Python)")
    flag = f"--input-shape {vi.name}={','.join(map(str, given))}"
    if any(d <= 0 for d in given):
        raise OnnxImportError(f"{file}: {flag}: dimensions must be positive")
    if declared is not None:
        if len(given) != len(declared):
            raise OnnxImportError(f"{file}: {flag} has rank {len(given)}, but the model's "
                                  f"input '{vi.name}' has rank {len(declared)} ({shown})")
        for axis, (g, d) in enumerate(zip(given, declared, strict=True)):
            if isinstance(d, int) and g != d:
                raise OnnxImportError(f"{file}: {flag} does not match the model's input "
                                      f"'{vi.name}' ({shown}): dimension {axis} is fixed to "
                                      f"{d}, not {g}")
    return tuple(given)


def _check_finite(model: onnx.ModelProto, file: str, constants: dict[str, np.ndarray]) -> None:
    bad = [f"initializer '{name}' ({int(np.size(a) - np.isfinite(a).sum())} of {np.size(a)} "
           "values)" for name, a in constants.items()
           if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all()]
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    a = numpy_helper.to_array(attr.t)
                    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
                        bad.append(f"Constant node '{node.name or node.output[0]}'")
    if bad:
        raise OnnxImportError(f"{file}: the weights hold NaN or Inf: {'; '.join(bad)}; "
                              "export the model again from a checkpoint with finite weights")


def _infer_shapes(
    model: onnx.ModelProto, file: str, inputs: list[tuple[str, tuple[int, ...]]]
) -> dict[str, tuple[int, ...]]:
    """Static shapes ONNX shape inference finds (used to cross-check the lowering)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                     data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as err:
        shapes = ", ".join(f"{n}={'x'.join(map(str, s))}" for n, s in inputs)
        raise OnnxImportError(f"{file}: ONNX shape inference fails for the input shape(s) "
                              f"{shapes}: {err}") from None
    shapes = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output]:
        dims = _dims(vi)
        if dims is not None and all(isinstance(d, int) for d in dims):
            shapes[vi.name] = tuple(dims)
    return shapes
