"""Resize: nearest-neighbour upsampling by integer factors only.

Exporters describe the same upsampling in many ways (scales or sizes, several coordinate
transformation and rounding modes, an `axes` subset). Rather than trusting mode names, the
lowering computes the source index of every output row and column as ONNX defines it and
accepts the node only when that is exactly "repeat each pixel r times" for an integer r.

(The older Upsample op is deprecated since opset 10 and refused by the ONNX checker from
then on; onnx.version_converter rewrites it into Resize when a model is upgraded to 11.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snncc.frontend.onnx.context import NodeContext, lowering, normalize_axis
from snncc.frontend.onnx.errors import Unsupported
from snncc.ir.graph import Value
from snncc.ir.ops import Upsample

# x_original from x_resized, per coordinate_transformation_mode (ONNX Resize).
Transform = Callable[[np.ndarray, float, int, int], np.ndarray]


def _half_pixel_symmetric(o: np.ndarray, scale: float, n_in: int, n_out: int) -> np.ndarray:
    adjustment = n_out / (scale * n_in)
    offset = n_in / 2 * (1 - adjustment)
    return offset + (o + 0.5) / scale - 0.5


TRANSFORMS: dict[str, Transform] = {
    "half_pixel": lambda o, s, n_in, n_out: (o + 0.5) / s - 0.5,
    "half_pixel_symmetric": _half_pixel_symmetric,
    "pytorch_half_pixel": lambda o, s, n_in, n_out: (o + 0.5) / s - 0.5 if n_out > 1 else 0 * o,
    "align_corners": lambda o, s, n_in, n_out: (
        o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0 * o),
    "asymmetric": lambda o, s, n_in, n_out: o / s,
    "tf_half_pixel_for_nn": lambda o, s, n_in, n_out: (o + 0.5) / s,
}
ROUNDING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "round_prefer_floor": lambda x: np.ceil(x - 0.5),
    "round_prefer_ceil": lambda x: np.floor(x + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}
_TODO = "upsample by an integer factor in nearest mode (nn.Upsample(scale_factor=2))"


def source_indices(transform: str, rounding: str, scale: float, n_in: int, n_out: int):
    """The input index each output index reads, as ONNX Resize (mode 'nearest') defines it."""
    x = TRANSFORMS[transform](np.arange(n_out, dtype=np.float64), scale, n_in, n_out)
    return np.clip(ROUNDING[rounding](x), 0, n_in - 1).astype(np.int64)


def _upsample(n: NodeContext, x: Value, scales: list[float], sizes: list[int],
              transform: str, rounding: str) -> Value:
    if transform not in TRANSFORMS:
        raise Unsupported(f"coordinate_transformation_mode='{transform}'", _TODO)
    if rounding not in ROUNDING:
        raise Unsupported(f"nearest_mode='{rounding}' is not an ONNX rounding mode")
    shape = x.type.shape
    if tuple(sizes[:2]) != shape[:2]:
        raise Unsupported(f"resizes the batch or channel axis ({list(shape)} → {sizes})", _TODO)
    factors = []
    for axis in (2, 3):
        n_in, n_out, scale = shape[axis], sizes[axis], scales[axis]
        if n_out % n_in or n_out < n_in:
            raise Unsupported(f"scale {scale:g} along axis {axis} ({n_in} → {n_out}) is not "
                              "an integer ≥ 1: only nearest upsampling by integer factors has "
                              "an exact spiking form", _TODO)
        r = n_out // n_in
        if not np.array_equal(source_indices(transform, rounding, scale, n_in, n_out),
                              np.arange(n_out) // r):
            raise Unsupported(f"coordinate_transformation_mode='{transform}' with "
                              f"nearest_mode='{rounding}' does not repeat each pixel {r} "
                              f"times along axis {axis}", _TODO)
        factors.append(r)
    return n.emit(Upsample, [x], Upsample.Attrs((factors[0], factors[1])))


def _rank4(n: NodeContext) -> Value:
    x = n.value(0)
    if x.type.rank != 4:
        raise Unsupported(f"resizes a rank-{x.type.rank} tensor; snncc upsamples NCHW images")
    return x


@lowering("Resize", since=11)
def lower_resize(n: NodeContext) -> Value:
    mode = n.attr("mode", "nearest")
    if mode != "nearest":
        raise Unsupported(f"Resize mode '{mode}': only nearest-neighbour upsampling by integer "
                          "factors has an exact spiking form", _TODO)
    x = _rank4(n)
    shape = x.type.shape
    axes = [normalize_axis(a, 4) for a in n.attr("axes", [0, 1, 2, 3])]
    scales_in, sizes_in = n.const(2), n.const(3)
    scales = [1.0] * 4
    sizes = list(shape)
    given = sizes_in if sizes_in is not None else scales_in
    if given is None:
        raise Unsupported("neither scales nor sizes is given")
    if given.size != len(axes):
        raise Unsupported(f"{given.size} scales or sizes for {len(axes)} axes")
    if sizes_in is not None:
        wanted = dict(zip(axes, sizes_in.tolist(), strict=True))
        policy = n.attr("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            for a, size in wanted.items():
                scales[a], sizes[a] = size / shape[a], int(size)
        else:
            pick = min if policy == "not_larger" else max
            ratio = pick(size / shape[a] for a, size in wanted.items())
            for a in wanted:
                scales[a], sizes[a] = ratio, math.floor(ratio * shape[a] + 0.5)
    else:
        for a, scale in zip(axes, scales_in.tolist(), strict=True):
            scales[a], sizes[a] = float(scale), math.floor(shape[a] * float(scale))
    return _upsample(n, x, scales, sizes, n.attr("coordinate_transformation_mode", "half_pixel"),
                     n.attr("nearest_mode", "round_prefer_floor"))
