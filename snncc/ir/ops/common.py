"""Checks shared by op kinds."""

from __future__ import annotations

import numpy as np

from snncc.ir.attributes import WeightRef
from snncc.ir.op import IRError
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore


def require(condition: bool, message: str) -> None:
    if not condition:
        raise IRError(message)


def analog_input(t: TensorType, rank: int | None = None, what: str = "input") -> None:
    """Synapse ops read analog values (f32) or spikes (i1)."""
    require(t.dtype in ("f32", "i1"), f"{what} must be f32 or i1, got {t}")
    if rank is not None:
        require(t.rank == rank, f"{what} must have rank {rank}, got {t}")


def float_input(t: TensorType, what: str = "input") -> None:
    require(t.dtype == "f32", f"{what} must be f32, got {t}")


def same_shapes(types: list[TensorType], what: str = "inputs") -> None:
    shapes = {t.shape for t in types}
    require(len(shapes) == 1, f"{what} must share one shape, got {', '.join(map(str, types))}")


def weight(weights: WeightStore, ref: WeightRef, ndim: int, what: str,
           integer: bool = False) -> np.ndarray:
    """The array `ref` names: floating point, or int32 indices when `integer`."""
    require(ref in weights, f"{what} {ref} is not in the weight store")
    array = weights[ref]
    require(array.ndim == ndim, f"{what} {ref} must have {ndim} dimensions, got {array.shape}")
    ok = array.dtype == np.int32 if integer else np.issubdtype(array.dtype, np.floating)
    require(ok, f"{what} {ref} holds {array.dtype} values; expected "
            f"{'int32 indices' if integer else 'floating-point weights'}")
    return array


def per_channel(weights: WeightStore, ref: WeightRef | None, shape: tuple[int, ...], what: str):
    """A bias-like array: shape (C,) for C = shape[1], or the full shape without batch."""
    if ref is None:
        return
    require(ref in weights, f"{what} {ref} is not in the weight store")
    require(np.issubdtype(weights[ref].dtype, np.floating),
            f"{what} {ref} holds {weights[ref].dtype} values; expected floating-point weights")
    got = weights[ref].shape
    require(
        len(shape) >= 2 and got in ((shape[1],), tuple(shape[1:])),
        f"{what} {ref} has shape {got}; expected ({shape[1] if len(shape) > 1 else '?'},) "
        f"or {tuple(shape[1:])}",
    )


def positive(values: tuple[int, ...], what: str) -> None:
    require(all(v >= 1 for v in values), f"{what} must be ≥ 1, got {list(values)}")


def non_negative(values: tuple[int, ...], what: str) -> None:
    require(all(v >= 0 for v in values), f"{what} must be ≥ 0, got {list(values)}")


def pooled_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, ceil: bool) -> int:
    """Output length of a window op (ONNX/PyTorch rule: the last window starts inside)."""
    span = size + pad_lo + pad_hi - kernel
    require(span >= 0, f"window {kernel} is larger than the padded input {size + pad_lo + pad_hi}")
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_lo:
        out -= 1
    return out
