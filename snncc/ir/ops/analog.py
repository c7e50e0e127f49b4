"""Analog ops: they compute exactly what the ONNX model computes.

Layouts follow ONNX: NCHW tensors, conv weights (C_out, C_in/groups, kH, kW), transposed
conv weights (C_in, C_out/groups, kH, kW), pads as [top, left, bottom, right], dense
weights (out, in) as in PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snncc.ir.attributes import WeightRef
from snncc.ir.op import NoAttrs, Op, register_op
from snncc.ir.ops.common import (
    analog_input,
    float_input,
    non_negative,
    per_channel,
    pooled_size,
    positive,
    require,
    same_shapes,
    weight,
)
from snncc.ir.ops.kinds import Synapse, View
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore

if TYPE_CHECKING:
    pass

Pair = tuple[int, int]
Quad = tuple[int, int, int, int]


@dataclass(frozen=True)
class ConvAttrs:
    weight: WeightRef
    bias: WeightRef | None = None
    strides: Pair = (1, 1)
    pads: Quad = (0, 0, 0, 0)
    dilations: Pair = (1, 1)
    groups: int = 1


@register_op
class Conv2d(Synapse):
    name = "syn.conv2d"
    summary = "2-D convolution (cross-correlation) with optional bias"
    Attrs = ConvAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: ConvAttrs, weights: WeightStore):
        (x,) = in_types
        analog_input(x, 4)
        w = weight(weights, attrs.weight, 4, "weight")
        positive(attrs.strides + attrs.dilations + (attrs.groups,), "strides, dilations, groups")
        non_negative(attrs.pads, "pads")
        n, c, h, wd = x.shape
        require(c == w.shape[1] * attrs.groups,
                f"input has {c} channels but weight {w.shape} with groups={attrs.groups} "
                f"expects {w.shape[1] * attrs.groups}")
        require(w.shape[0] % attrs.groups == 0, "output channels must divide by groups")
        out = [
            pooled_size(size, (k - 1) * d + 1, s, lo, hi, False)
            for size, k, d, s, lo, hi in zip(
                (h, wd), w.shape[2:], attrs.dilations, attrs.strides,
                attrs.pads[:2], attrs.pads[2:], strict=True,
            )
        ]
        shape = (n, w.shape[0], *out)
        per_channel(weights, attrs.bias, shape, "bias")
        return TensorType(shape)


@dataclass(frozen=True)
class ConvTransposeAttrs:
    weight: WeightRef
    bias: WeightRef | None = None
    strides: Pair = (1, 1)
    pads: Quad = (0, 0, 0, 0)
    dilations: Pair = (1, 1)
    output_padding: Pair = (0, 0)
    groups: int = 1


@register_op
class ConvTranspose2d(Synapse):
    name = "syn.conv_transpose2d"
    summary = "2-D transposed convolution with output padding and optional bias"
    Attrs = ConvTransposeAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: ConvTransposeAttrs, weights: WeightStore):
        (x,) = in_types
        analog_input(x, 4)
        w = weight(weights, attrs.weight, 4, "weight")
        positive(attrs.strides + attrs.dilations + (attrs.groups,), "strides, dilations, groups")
        non_negative(attrs.pads + attrs.output_padding, "pads and output_padding")
        n, c, h, wd = x.shape
        require(c == w.shape[0],
                f"input has {c} channels but weight {w.shape} expects {w.shape[0]}")
        require(c % attrs.groups == 0, "input channels must divide by groups")
        out = []
        for i, size in enumerate((h, wd)):
            length = (
                attrs.strides[i] * (size - 1) + attrs.output_padding[i]
                + (w.shape[2 + i] - 1) * attrs.dilations[i] + 1
                - attrs.pads[i] - attrs.pads[i + 2]
            )
            require(length > 0, f"output size {length} along axis {i + 2} is not positive")
            out.append(length)
        shape = (n, w.shape[1] * attrs.groups, *out)
        per_channel(weights, attrs.bias, shape, "bias")
        return TensorType(shape)


@dataclass(frozen=True)
class AvgPoolAttrs:
    kernel: Pair
    strides: Pair = (1, 1)
    pads: Quad = (0, 0, 0, 0)
    count_include_pad: bool = False
    ceil_mode: bool = False


def _pool_shape(x: TensorType, kernel: Pair, strides: Pair, pads: Quad, ceil: bool):
    analog_input(x, 4)
    positive(kernel + strides, "kernel and strides")
    non_negative(pads, "pads")
    n, c, h, w = x.shape
    out = [
        pooled_size(size, k, s, lo, hi, ceil)
        for size, k, s, lo, hi in zip((h, w), kernel, strides, pads[:2], pads[2:], strict=True)
    ]
    return TensorType((n, c, *out))


@register_op
class AvgPool2d(Op):
    name = "syn.avgpool2d"
    summary = "average pooling (ONNX AveragePool / GlobalAveragePool)"
    Attrs = AvgPoolAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: AvgPoolAttrs, weights: WeightStore):
        return _pool_shape(in_types[0], attrs.kernel, attrs.strides, attrs.pads, attrs.ceil_mode)


@dataclass(frozen=True)
class SumPoolAttrs:
    kernel: Pair
    strides: Pair = (1, 1)
    pads: Quad = (0, 0, 0, 0)


@register_op
class SumPool2d(Op):
    name = "syn.sumpool2d"
    summary = "sum pooling (NIR SumPool2d): average pooling without the division"
    Attrs = SumPoolAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: SumPoolAttrs, weights: WeightStore):
        return _pool_shape(in_types[0], attrs.kernel, attrs.strides, attrs.pads, False)


@dataclass(frozen=True)
class UpsampleAttrs:
    scale: Pair = (2, 2)


@register_op
class Upsample(Op):
    name = "syn.upsample"
    summary = "nearest-neighbour upsampling by integer factors"
    Attrs = UpsampleAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: UpsampleAttrs, weights: WeightStore):
        (x,) = in_types
        analog_input(x, 4)
        positive(attrs.scale, "scale")
        n, c, h, w = x.shape
        return TensorType((n, c, h * attrs.scale[0], w * attrs.scale[1]))


@dataclass(frozen=True)
class AxisAttrs:
    axis: int = 1


@register_op
class Concat(Op):
    name = "syn.concat"
    summary = "concatenation along an axis"
    Attrs = AxisAttrs
    max_inputs = None

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: AxisAttrs, weights: WeightStore):
        first = in_types[0]
        for t in in_types:
            analog_input(t)
        rank = first.rank
        require(-rank <= attrs.axis < rank, f"axis {attrs.axis} out of range for rank {rank}")
        axis = attrs.axis % rank
        for t in in_types[1:]:
            require(t.rank == rank and all(
                a == b for i, (a, b) in enumerate(zip(t.shape, first.shape, strict=True))
                if i != axis
            ), f"inputs {first} and {t} differ outside axis {axis}")
        shape = list(first.shape)
        shape[axis] = sum(t.shape[axis] for t in in_types)
        return TensorType(tuple(shape))


@register_op
class Add(Op):
    name = "syn.add"
    summary = "element-wise sum of same-shaped tensors (ONNX Add / Sum)"
    max_inputs = None

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: NoAttrs, weights: WeightStore):
        for t in in_types:
            analog_input(t)
        same_shapes(in_types)
        return in_types[0].with_dtype("f32")


@dataclass(frozen=True)
class AffineAttrs:
    scale: WeightRef | None = None
    offset: WeightRef | None = None


@register_op
class AffineConst(Op):
    name = "syn.affine"
    summary = "x * scale + offset with constant, broadcast operands (ONNX Mul/Div/Add/Sub)"
    Attrs = AffineAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: AffineAttrs, weights: WeightStore):
        import numpy as np

        (x,) = in_types
        analog_input(x)
        for what, ref in (("scale", attrs.scale), ("offset", attrs.offset)):
            if ref is None:
                continue
            require(ref in weights, f"{what} {ref} is not in the weight store")
            try:
                shape = np.broadcast_shapes(x.shape, weights[ref].shape)
            except ValueError:
                shape = None
            require(shape == x.shape,
                    f"{what} {ref} of shape {weights[ref].shape} does not broadcast to {x}")
        return x.with_dtype("f32")


@dataclass(frozen=True)
class BatchNormAttrs:
    scale: WeightRef
    bias: WeightRef
    mean: WeightRef
    var: WeightRef
    epsilon: float = 1e-5


@register_op
class BatchNorm(Op):
    name = "syn.batchnorm"
    summary = "inference-mode batch normalization over axis 1 (folded by fold-batchnorm)"
    Attrs = BatchNormAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: BatchNormAttrs, weights: WeightStore):
        (x,) = in_types
        float_input(x)
        require(x.rank >= 2, f"input must have a channel axis, got {x}")
        for what in ("scale", "bias", "mean", "var"):
            w = weight(weights, getattr(attrs, what), 1, what)
            require(w.shape == (x.shape[1],),
                    f"{what} has shape {w.shape}, expected ({x.shape[1]},)")
        require(attrs.epsilon >= 0, "epsilon must be ≥ 0")
        return x


@dataclass(frozen=True)
class DenseAttrs:
    weight: WeightRef
    bias: WeightRef | None = None


@register_op
class Dense(Synapse):
    name = "syn.dense"
    summary = "fully connected layer y = x W^T + b, weight (out, in)"
    Attrs = DenseAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: DenseAttrs, weights: WeightStore):
        (x,) = in_types
        analog_input(x, 2)
        w = weight(weights, attrs.weight, 2, "weight")
        require(x.shape[1] == w.shape[1], f"input {x} does not match weight {w.shape} (out, in)")
        shape = (x.shape[0], w.shape[0])
        per_channel(weights, attrs.bias, shape, "bias")
        return TensorType(shape)


@register_op
class Flatten(View):
    name = "syn.flatten"
    summary = "flatten to 2-D: dimensions before axis, and from axis on"
    Attrs = AxisAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: AxisAttrs, weights: WeightStore):
        (x,) = in_types
        require(0 <= attrs.axis <= x.rank, f"axis {attrs.axis} out of range for {x}")
        return TensorType((math.prod(x.shape[: attrs.axis]), math.prod(x.shape[attrs.axis:])),
                          x.dtype)


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]


@register_op
class Reshape(View):
    name = "syn.reshape"
    summary = "reshape to a static shape with the same number of elements"
    Attrs = ReshapeAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: ReshapeAttrs, weights: WeightStore):
        (x,) = in_types
        non_negative(attrs.shape, "shape")
        require(math.prod(attrs.shape) == x.size,
                f"cannot reshape {x} ({x.size} elements) to {list(attrs.shape)}")
        return TensorType(attrs.shape, x.dtype)


@dataclass(frozen=True)
class PermAttrs:
    perm: tuple[int, ...]


@register_op
class Transpose(Op):
    name = "syn.transpose"
    summary = "permute axes"
    Attrs = PermAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: PermAttrs, weights: WeightStore):
        (x,) = in_types
        require(sorted(attrs.perm) == list(range(x.rank)),
                f"perm {list(attrs.perm)} is not a permutation of {x.rank} axes")
        return TensorType(tuple(x.shape[p] for p in attrs.perm), x.dtype)


@register_op
class Relu(Op):
    name = "act.relu"
    summary = "rectified linear unit (becomes a spiking population)"

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: NoAttrs, weights: WeightStore):
        float_input(in_types[0])
        return in_types[0]


@register_op
class Sigmoid(Op):
    name = "act.sigmoid"
    summary = "logistic sigmoid readout, computed on the host"

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: NoAttrs, weights: WeightStore):
        float_input(in_types[0])
        return in_types[0]


@register_op
class Softmax(Op):
    name = "act.softmax"
    summary = "softmax readout along an axis, computed on the host"
    Attrs = AxisAttrs

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: AxisAttrs, weights: WeightStore):
        (x,) = in_types
        float_input(x)
        require(-x.rank <= attrs.axis < x.rank, f"axis {attrs.axis} out of range for {x}")
        return x
