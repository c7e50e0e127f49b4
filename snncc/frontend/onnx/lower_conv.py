"""Conv, ConvTranspose and the pooling ops (MaxPool only as average pooling, on request)."""

from __future__ import annotations

from snncc.frontend.onnx.context import NodeContext, lowering
from snncc.frontend.onnx.errors import Unsupported
from snncc.ir.graph import Value
from snncc.ir.ops import AvgPool2d, Conv2d, ConvTranspose2d

Pair = tuple[int, int]
Quad = tuple[int, int, int, int]


def image_input(n: NodeContext, what: str) -> Value:
    """The NCHW input of a 2-D op; other ranks are refused with the dimension count."""
    x = n.value(0)
    if x.type.rank != 4:
        raise Unsupported(f"{x.type.rank - 2}-D {what}: snncc supports 2-D (NCHW) only",
                          "use the 2-D form of the layer (e.g. Conv2d, AvgPool2d)")
    return x


def pair(n: NodeContext, name: str, default: int = 1) -> Pair:
    values = n.attr(name, [default, default])
    if len(values) != 2:
        raise Unsupported(f"attribute {name}={values} does not have 2 entries")
    return values[0], values[1]


def same_pads(auto_pad: str, total: int) -> Pair:
    """Split a total padding: SAME_UPPER puts the odd one at the end, SAME_LOWER at the start."""
    small = total // 2
    return (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)


def window_pads(n: NodeContext, size: Pair, kernel: Pair, strides: Pair, dilations: Pair) -> Quad:
    """Explicit [top, left, bottom, right] pads of a Conv / pool node from pads or auto_pad."""
    auto_pad = n.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = n.attr("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise Unsupported(f"pads={pads} does not have 4 entries")
        return pads[0], pads[1], pads[2], pads[3]
    if auto_pad == "VALID":
        return 0, 0, 0, 0
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise Unsupported(f"auto_pad='{auto_pad}' is not an ONNX padding mode")
    split = []
    for axis in range(2):
        out = -(-size[axis] // strides[axis])
        span = (kernel[axis] - 1) * dilations[axis] + 1
        split.append(same_pads(auto_pad, max(0, (out - 1) * strides[axis] + span - size[axis])))
    return split[0][0], split[1][0], split[0][1], split[1][1]


def _weights(n: NodeContext):
    w = n.const(1)
    if w is None or w.ndim != 4:
        raise Unsupported("the weight must be a constant 4-D tensor")
    kernel = n.attr("kernel_shape")
    if kernel is not None and tuple(kernel) != w.shape[2:]:
        raise Unsupported(f"kernel_shape={kernel} differs from the weight's shape {w.shape}")
    bias = n.weight(2) if n.const(2) is not None else None
    return w, n.weight(1), bias


@lowering("Conv", since=1)
def lower_conv(n: NodeContext) -> Value:
    x = image_input(n, "convolution")
    w, weight, bias = _weights(n)
    strides, dilations = pair(n, "strides"), pair(n, "dilations")
    pads = window_pads(n, x.type.shape[2:], w.shape[2:], strides, dilations)
    return n.emit(Conv2d, [x], Conv2d.Attrs(weight, bias, strides, pads, dilations,
                                            n.attr("group", 1)))


@lowering("ConvTranspose", since=1)
def lower_conv_transpose(n: NodeContext) -> Value:
    """Explicit pads; output_shape and SAME auto_pad become pads (and output_padding)."""
    x = image_input(n, "transposed convolution")
    w, weight, bias = _weights(n)
    strides, dilations = pair(n, "strides"), pair(n, "dilations")
    output_padding = list(pair(n, "output_padding", 0))
    auto_pad = n.attr("auto_pad", "NOTSET")
    output_shape = n.attr("output_shape")
    if output_shape is None and auto_pad in ("NOTSET", "VALID"):
        pads = window_pads(n, x.type.shape[2:], w.shape[2:], strides, dilations)
        return n.emit(ConvTranspose2d, [x], ConvTranspose2d.Attrs(
            weight, bias, strides, pads, dilations, tuple(output_padding), n.attr("group", 1)))
    if output_shape is None:
        output_shape = [size * s for size, s in zip(x.type.shape[2:], strides, strict=True)]
    output_shape = list(output_shape)[-2:]
    begin, end = [], []
    for axis in range(2):
        full = (strides[axis] * (x.type.shape[2 + axis] - 1) + output_padding[axis]
                + (w.shape[2 + axis] - 1) * dilations[axis] + 1)
        lo, hi = same_pads(auto_pad if auto_pad == "SAME_UPPER" else "SAME_LOWER",
                           full - output_shape[axis])
        if lo < 0:
            raise Unsupported(f"output_shape={output_shape} needs zeros before the first "
                              "output row or column, which snncc cannot represent")
        if hi < 0:  # the output extends beyond the last contribution: zeros at the end
            output_padding[axis] -= hi
            hi = 0
        begin.append(lo)
        end.append(hi)
    return n.emit(ConvTranspose2d, [x], ConvTranspose2d.Attrs(
        weight, bias, strides, (begin[0], begin[1], end[0], end[1]), dilations,
        (output_padding[0], output_padding[1]), n.attr("group", 1)))


def _pool(n: NodeContext, count_include_pad: bool) -> Value:
    x = image_input(n, "pooling")
    kernel = n.attr("kernel_shape")
    if kernel is None or len(kernel) != 2:
        raise Unsupported(f"kernel_shape={kernel} is not a 2-D window")
    if pair(n, "dilations") != (1, 1):
        raise Unsupported(f"dilated pooling (dilations={n.attr('dilations')})",
                          "pool without dilations")
    strides = pair(n, "strides")
    pads = window_pads(n, x.type.shape[2:], (kernel[0], kernel[1]), strides, (1, 1))
    return n.emit(AvgPool2d, [x], AvgPool2d.Attrs(
        (kernel[0], kernel[1]), strides, pads, count_include_pad, bool(n.attr("ceil_mode", 0))))


@lowering("AveragePool", since=7)
def lower_average_pool(n: NodeContext) -> Value:
    return _pool(n, bool(n.attr("count_include_pad", 0)))


@lowering("MaxPool", since=8)
def lower_max_pool(n: NodeContext) -> Value:
    """Only with maxpool='avg' (the importer refuses MaxPool otherwise): padding excluded."""
    n.state.approximated.append(n.loc.node)
    return _pool(n, count_include_pad=False)


def _global(n: NodeContext) -> Value:
    x = image_input(n, "global pooling")
    return n.emit(AvgPool2d, [x], AvgPool2d.Attrs((x.type.shape[2], x.type.shape[3])))


@lowering("GlobalAveragePool", since=1)
def lower_global_average_pool(n: NodeContext) -> Value:
    return _global(n)


@lowering("GlobalMaxPool", since=1)
def lower_global_max_pool(n: NodeContext) -> Value:
    n.state.approximated.append(n.loc.node)
    return _global(n)
