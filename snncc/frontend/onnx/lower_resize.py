"""Resize: nearest and linear (bilinear) upsampling by integer factors.

Exporters describe the same upsampling in many ways (scales or sizes, several coordinate
transformation and rounding modes, an `axes` subset). Rather than trusting mode names, the
lowering computes what every output row and column reads as ONNX defines it:

- nearest: accepted only when that is exactly "repeat each pixel r times" for an integer r;
- linear: each axis is a fixed matrix A (output × input). Its interior is a transposed
  convolution with stride r (the interpolation kernel, e.g. [0.25, 0.75, 0.75, 0.25] for
  ×2 with half-pixel centres); the clamped border is not. So the 2-D map A_h ⊗ A_w becomes
  a per-channel transposed convolution plus a `syn.sparse` border correction, summed:
  exact. Modes whose weights vary across the image (align_corners) are refused.

(The older Upsample op is deprecated since opset 10 and refused by the ONNX checker from
then on; onnx.version_converter rewrites it into Resize when a model is upgraded to 11.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snncc.frontend.onnx.context import NodeContext, lowering, normalize_axis
from snncc.frontend.onnx.errors import Unsupported
from snncc.ir.graph import Value
from snncc.ir.ops import Add, ConvTranspose2d, SparseMap, Upsample

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
_TODO = ("upsample by an integer factor in nearest or bilinear mode "
         "(nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False))")
_ZERO = 1e-9  # interpolation weights below this are rounding noise of the coordinates


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


def linear_matrix(transform: str, scale: float, n_in: int, n_out: int) -> np.ndarray:
    """A (n_out × n_in): ONNX Resize in 'linear' mode along one axis (neighbours clamped
    to the edge, as the ONNX reference pads with edge values)."""
    x = TRANSFORMS[transform](np.arange(n_out, dtype=np.float64), scale, n_in, n_out)
    lo = np.floor(x)
    ratio = x - lo
    a = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for index, weight in ((lo, 1 - ratio), (lo + 1, ratio)):
        np.add.at(a, (rows, np.clip(index, 0, n_in - 1).astype(np.int64)), weight)
    a[np.abs(a) < _ZERO] = 0.0
    return a


@dataclass(frozen=True)
class Band:
    """The translation-invariant part of a 1-D resize matrix: a transposed convolution."""

    kernel: np.ndarray
    stride: int
    pad_lo: int
    pad_hi: int
    output_padding: int

    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        m = np.zeros((n_out, n_in))
        for i in range(n_in):
            for t, w in enumerate(self.kernel):
                o = i * self.stride - self.pad_lo + t
                if 0 <= o < n_out:
                    m[o, i] += w
        return m


def band(a: np.ndarray, r: int, axis: int) -> Band:
    """The transposed convolution that A's middle column spells out, checked to leave only
    a border (no more rows than the kernel at either end) to correct."""
    n_out, n_in = a.shape
    j = n_in // 2
    rows = np.nonzero(a[:, j])[0]
    kernel = a[rows[0]:rows[-1] + 1, j]
    pad_lo = int(j * r - rows[0])
    full = (n_in - 1) * r + len(kernel)
    extra = n_out - (full - pad_lo)  # > 0: output padding; < 0: crop at the end
    b = Band(kernel, r, pad_lo, int(max(-extra, 0)), int(max(extra, 0)))
    if pad_lo < 0:
        raise Unsupported(f"linear resize along axis {axis} reads input {j} from output "
                          f"{rows[0]}, before its transposed-convolution position", _TODO)
    off = np.nonzero(np.abs(a - b.matrix(n_in, n_out)).max(axis=1) > _ZERO)[0]
    k = len(kernel)
    if np.any((off >= k) & (off < n_out - k)):
        raise Unsupported(f"linear resize along axis {axis} ({n_in} → {n_out}) weighs its "
                          "inputs differently across the image, so it is no convolution with "
                          "a border correction (e.g. align_corners); export with "
                          "align_corners=False", _TODO)
    return b


def _sparse_part(a: np.ndarray, bands: list[np.ndarray], channels: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(weights, indices) of A_h ⊗ A_w − T_h ⊗ T_w for every channel (per-sample C·H·W
    flat indices): the border the transposed convolution misses."""
    (ah, aw), (th, tw) = a, bands
    (ho, hi), (wo, wi) = ah.shape, aw.shape
    full = np.einsum("ab,cd->acbd", ah, aw) - np.einsum("ab,cd->acbd", th, tw)
    full[np.abs(full) < _ZERO] = 0.0
    oy, ox, iy, ix = np.nonzero(full)
    values = full[oy, ox, iy, ix]
    out_pix, in_pix = oy * wo + ox, iy * wi + ix
    c = np.arange(channels)[:, None]
    rows = (c * ho * wo + out_pix[None]).ravel()
    cols = (c * hi * wi + in_pix[None]).ravel()
    return np.tile(values, channels), np.stack([rows, cols], axis=1)


def _bilinear(n: NodeContext, x: Value, scales: list[float], sizes: list[int],
              transform: str) -> Value:
    if transform not in TRANSFORMS:
        raise Unsupported(f"coordinate_transformation_mode='{transform}'", _TODO)
    shape = x.type.shape
    if tuple(sizes[:2]) != shape[:2]:
        raise Unsupported(f"resizes the batch or channel axis ({list(shape)} → {sizes})", _TODO)
    mats, bands = [], []
    for axis in (2, 3):
        n_in, n_out = shape[axis], sizes[axis]
        if n_out % n_in or n_out < n_in:
            raise Unsupported(f"scale {scales[axis]:g} along axis {axis} ({n_in} → {n_out}) is "
                              "not an integer ≥ 1: only upsampling by integer factors has an "
                              "exact spiking form", _TODO)
        a = linear_matrix(transform, scales[axis], n_in, n_out)
        mats.append(a)
        bands.append(band(a, n_out // n_in, axis))
    c = shape[1]
    (bh, bw) = bands
    kernel = np.broadcast_to(np.outer(bh.kernel, bw.kernel), (c, 1, len(bh.kernel),
                                                              len(bw.kernel)))
    attrs = ConvTranspose2d.Attrs(
        n.new_weight(f"{n.node.name or 'resize'}.bilinear", kernel),
        strides=(bh.stride, bw.stride), pads=(bh.pad_lo, bw.pad_lo, bh.pad_hi, bw.pad_hi),
        output_padding=(bh.output_padding, bw.output_padding), groups=c)
    conv = n.emit(ConvTranspose2d, [x], attrs, suffix="_band")
    values, indices = _sparse_part(mats, [b.matrix(*m.shape[::-1]) for b, m in
                                          zip(bands, mats, strict=True)], c)
    if not len(values):
        return conv
    border = n.emit(SparseMap, [x], SparseMap.Attrs(
        n.new_weight(f"{n.node.name or 'resize'}.border", values),
        n.graph.weights.add(f"{n.node.name or 'resize'}.border_indices",
                            indices.astype(np.int32)),
        tuple(int(d) for d in sizes[1:])), suffix="_border")
    return n.emit(Add, [conv, border])


def _rank4(n: NodeContext) -> Value:
    x = n.value(0)
    if x.type.rank != 4:
        raise Unsupported(f"resizes a rank-{x.type.rank} tensor; snncc upsamples NCHW images")
    return x


@lowering("Resize", since=11)
def lower_resize(n: NodeContext) -> Value:
    mode = n.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise Unsupported(f"Resize mode '{mode}': only nearest and linear upsampling by "
                          "integer factors have an exact spiking form", _TODO)
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
    transform = n.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "linear":
        return _bilinear(n, x, scales, sizes, transform)
    return _upsample(n, x, scales, sizes, transform, n.attr("nearest_mode", "round_prefer_floor"))
