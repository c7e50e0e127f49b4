"""Hand-built ONNX models for frontend tests, and onnxruntime as the reference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int | str | None]],
    outputs: dict[str, Sequence[int | str | None]],
    weights: dict[str, np.ndarray] | None = None,
    opset: int = 13,
    input_type: int = TensorProto.FLOAT,
    output_type: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """A model with IR version 10 (onnx 1.23 writes 14, which onnxruntime 1.31 refuses).

    Shapes list dims: an int, a name (dynamic), or None (unknown).
    """
    graph = helper.make_graph(
        list(nodes), "test",
        [helper.make_tensor_value_info(n, input_type, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, output_type, s) for n, s in outputs.items()],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (weights or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def save(m: onnx.ModelProto, path: Path) -> Path:
    onnx.save(m, str(path))
    return path


def onnxruntime_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_close(got: np.ndarray, want: np.ndarray, rel: float = 1e-4) -> None:
    """max |got - want| ≤ rel × the output's range (or its magnitude when constant)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = float(np.ptp(want)) or float(np.abs(want).max()) or 1.0
    err = float(np.abs(got - want).max())
    assert err <= rel * scale, f"max abs error {err:.3g} > {rel} × output range {scale:.3g}"
