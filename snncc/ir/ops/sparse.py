"""A fixed sparse linear map: the projections no convolution expresses.

`syn.sparse` maps one sample's input (any shape, flattened in C order) to a result of
shape `out_shape` through a list of (output index, input index, weight) entries, summed
where entries repeat. The frontend uses it for the clamped border of bilinear upsampling
(the rest is a transposed convolution), and fuse-linear composes it with the convolutions
after it; on Loihi it becomes a `nengo.transforms.Sparse` connection.

Weights: `weight` (nnz,) float, `indices` (nnz, 2) int32 [output, input].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from snncc.ir.attributes import WeightRef
from snncc.ir.op import register_op
from snncc.ir.ops.common import analog_input, non_negative, per_channel, require, weight
from snncc.ir.ops.kinds import Synapse
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore


@dataclass(frozen=True)
class SparseAttrs:
    weight: WeightRef
    indices: WeightRef
    out_shape: tuple[int, ...]
    bias: WeightRef | None = None


@register_op
class SparseMap(Synapse):
    name = "syn.sparse"
    summary = "fixed sparse linear map: (output, input) index pairs with weights, per sample"
    Attrs = SparseAttrs
    connectivity = ("indices",)

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: SparseAttrs, weights: WeightStore):
        (x,) = in_types
        analog_input(x)
        require(x.rank >= 1, f"input must have a batch axis, got {x}")
        require(len(attrs.out_shape) >= 1, "out_shape must not be empty")
        non_negative(attrs.out_shape, "out_shape")
        values = weight(weights, attrs.weight, 1, "weight")
        idx = weight(weights, attrs.indices, 2, "indices", integer=True)
        require(idx.shape == (len(values), 2),
                f"indices {attrs.indices} has shape {idx.shape}; expected ({len(values)}, 2): "
                "one (output, input) pair per weight")
        n_out, n_in = math.prod(attrs.out_shape), math.prod(x.shape[1:])
        if len(idx):
            require(idx.min() >= 0 and idx[:, 0].max() < n_out and idx[:, 1].max() < n_in,
                    f"indices {attrs.indices} reach outside the {n_out} outputs or the "
                    f"{n_in} inputs of one sample")
        shape = (x.shape[0], *attrs.out_shape)
        per_channel(weights, attrs.bias, shape, "bias")
        return TensorType(shape)
