"""The ONNX backend node tests of the ops snncc lowers, ready to import and run.

The installed onnx wheel does not ship `onnx/backend/test/data/node/`, so the cases come
from the generators it does ship (`onnx.backend.test.case.node.<op>`): importing such a
module runs its `export*` functions, which record each case's model, inputs and expected
outputs (the same data the `data/node/test_*` directories hold).

In these models weights are graph inputs; snncc needs them constant, so `frozen_model`
turns the inputs at the positions in `CONSTANT_INPUTS` into initializers.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
import onnx
from onnx import numpy_helper

CASE_MODULES = (
    "add", "averagepool", "batch_normalization", "concat", "constant", "conv", "convtranspose",
    "div", "dropout", "flatten", "gemm", "globalaveragepool", "identity", "matmul", "mul",
    "relu", "reshape", "resize", "sigmoid", "softmax", "sub", "sum", "transpose", "upsample",
)

# op type → input positions that are weights or static parameters in a real model
CONSTANT_INPUTS: dict[str, frozenset[int]] = {
    "Conv": frozenset({1, 2}),
    "ConvTranspose": frozenset({1, 2}),
    "BatchNormalization": frozenset({1, 2, 3, 4}),
    "Gemm": frozenset({1, 2}),
    "MatMul": frozenset({1}),
    "Mul": frozenset({1}),
    "Div": frozenset({1}),
    "Reshape": frozenset({1}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
    "Dropout": frozenset({1, 2}),
}


@dataclass(frozen=True)
class NodeCase:
    name: str
    model: onnx.ModelProto
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]


@cache
def node_cases() -> dict[str, NodeCase]:
    """Every generated case of CASE_MODULES, except function expansions (`*_expanded*`),
    which test an op's decomposition into other ops rather than the op."""
    from onnx.backend.test.case import node

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in CASE_MODULES:
            importlib.import_module(f"onnx.backend.test.case.node.{name}")
    cases = {}
    for case in node._NodeTestCases:
        if "_expanded" in case.name:
            continue
        (inputs, outputs), = case.data_sets
        cases[case.name] = NodeCase(case.name, case.model, tuple(inputs), tuple(outputs))
    return cases


def frozen_model(case: NodeCase) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """The case's model with its weight inputs as initializers, and the remaining inputs."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    (node,) = model.graph.node
    positions = CONSTANT_INPUTS.get(node.op_type, frozenset())
    frozen = {name for i, name in enumerate(node.input) if i in positions and name}
    feeds = []
    kept = []
    for vi, array in zip(case.model.graph.input, case.inputs, strict=True):
        if vi.name in frozen:
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), vi.name))
        else:
            kept.append(vi)
            feeds.append(np.asarray(array))
    del model.graph.input[:]
    model.graph.input.extend(kept)
    return model, feeds
