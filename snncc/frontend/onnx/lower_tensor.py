"""Shape and layout ops, pass-throughs, and static shape queries."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from snncc.frontend.onnx.context import NodeContext, Tensor, lowering, normalize_axis
from snncc.frontend.onnx.errors import Unsupported
from snncc.ir.graph import Value
from snncc.ir.ops import Concat, Flatten, Reshape, Transpose


@lowering("Concat", since=4)
def lower_concat(n: NodeContext) -> Value:
    if any(n.is_const(i) for i in range(len(n.node.input))):
        raise Unsupported("concatenates a constant with computed tensors",
                          "concatenate computed tensors only")
    xs = [n.value(i) for i in range(len(n.node.input))]
    return n.emit(Concat, xs, Concat.Attrs(normalize_axis(n.attr("axis"), xs[0].type.rank)))


@lowering("Flatten", since=1)
def lower_flatten(n: NodeContext) -> Value:
    x = n.value(0)
    axis = n.attr("axis", 1)
    return n.emit(Flatten, [x], Flatten.Attrs(axis + x.type.rank if axis < 0 else axis))


@lowering("Reshape", since=5)
def lower_reshape(n: NodeContext) -> Value:
    """A static target shape: 0 copies the input's dimension (unless allowzero), -1 is inferred."""
    x = n.value(0)
    target = n.const(1)
    if target is None:
        raise Unsupported("the target shape is empty")
    shape = [int(d) for d in target.tolist()]
    allowzero = n.attr("allowzero", 0)
    shape = [x.type.shape[i] if d == 0 and not allowzero else d for i, d in enumerate(shape)]
    if 0 in shape:
        raise Unsupported(f"reshapes to an empty tensor {shape}")
    if shape.count(-1) > 1:
        raise Unsupported(f"target shape {shape} has more than one -1")
    if -1 in shape:
        known = -math.prod(shape)
        if x.type.size % known:
            raise Unsupported(f"cannot reshape {x.type} to {shape}")
        shape[shape.index(-1)] = x.type.size // known
    return n.emit(Reshape, [x], Reshape.Attrs(tuple(shape)))


@lowering("Transpose", since=1)
def lower_transpose(n: NodeContext) -> Value:
    x = n.value(0)
    perm = n.attr("perm", list(range(x.type.rank))[::-1])
    return n.emit(Transpose, [x], Transpose.Attrs(tuple(perm)))


@lowering("Identity", since=1)
def lower_identity(n: NodeContext) -> Tensor:
    return n.value(0)


@lowering("Dropout", since=10)
def lower_dropout(n: NodeContext) -> Tensor:
    """Inference-mode dropout passes its input through."""
    training = n.const(2)
    if training is not None and bool(training):
        raise Unsupported("training-mode Dropout drops random units",
                          "export the model in eval mode (model.eval())")
    return n.value(0)


@lowering("Cast", since=6)
def lower_cast(n: NodeContext) -> Tensor:
    """Only the no-op cast of a float32 tensor to float32 (constants are folded before)."""
    to = n.attr("to")
    if to != TensorProto.FLOAT:
        raise Unsupported(f"casts the network's float32 tensor to "
                          f"{TensorProto.DataType.Name(to)}")
    return n.value(0)


@lowering("Shape", since=1)
def lower_shape(n: NodeContext) -> np.ndarray:
    """Shapes are static after binding the inputs: a constant."""
    shape = n.value(0).type.shape
    rank = len(shape)

    def clamp(i: int) -> int:
        return min(rank, max(0, i + rank if i < 0 else i))

    return np.array(shape[clamp(n.attr("start", 0)):clamp(n.attr("end", rank))], np.int64)


@lowering("Size", since=1)
def lower_size(n: NodeContext) -> np.ndarray:
    return np.array(n.value(0).type.size, np.int64)
