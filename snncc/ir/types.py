"""Static tensor types: `tensor<1x16x64x64xf32>`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DTYPES = ("f32", "f64", "i1", "i8", "i16", "i32", "i64")
_TYPE_RE = re.compile(r"tensor<((?:\d+x)*)([a-z]+\d*)>")


@dataclass(frozen=True)
class TensorType:
    """A tensor with a static shape (NCHW for feature maps) and an element type.

    `i1` tensors carry spikes (one bit per neuron per timestep); `f32` carries analog
    values and synaptic currents.
    """

    shape: tuple[int, ...]
    dtype: str = "f32"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown element type '{self.dtype}' (known: {', '.join(DTYPES)})")
        if any((not isinstance(d, int)) or d < 0 for d in self.shape):
            raise ValueError(f"shape {self.shape} must hold non-negative integers")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.dtype}>"

    @staticmethod
    def parse(text: str) -> TensorType:
        """Parse `tensor<1x2xf32>`; raises ValueError on anything else."""
        m = _TYPE_RE.fullmatch(text)
        if not m:
            raise ValueError(f"'{text}' is not a tensor type like tensor<1x3x64x64xf32>")
        dims = tuple(int(d) for d in m.group(1).split("x") if d)
        return TensorType(dims, m.group(2))


def f32(*shape: int) -> TensorType:
    return TensorType(tuple(shape), "f32")


def spikes(*shape: int) -> TensorType:
    return TensorType(tuple(shape), "i1")
