"""Element-wise arithmetic, activations, batch norm, and the matrix products.

Sums of computed tensors become `syn.add`; anything combined with a constant becomes
`syn.affine` (x * scale + offset). Products or quotients of two computed tensors are not
linear in the activations, so no synapse computes them: they are refused.
"""

from __future__ import annotations

import math

import numpy as np

from snncc.frontend.onnx.context import NodeContext, lowering, normalize_axis
from snncc.frontend.onnx.errors import Unsupported
from snncc.ir.graph import Value
from snncc.ir.ops import (
    Add,
    AffineConst,
    BatchNorm,
    Dense,
    Relu,
    Reshape,
    Sigmoid,
    Softmax,
    Transpose,
)

_NONLINEAR = "multiply or divide by constants only (fold the factor into the weights)"


def _fits(x: Value, c: np.ndarray) -> np.ndarray:
    """`c` if broadcasting it leaves x's shape unchanged; refused if it would enlarge x."""
    try:
        fits = np.broadcast_shapes(x.type.shape, c.shape) == x.type.shape
    except ValueError:
        fits = False
    if not fits:
        raise Unsupported(f"the constant of shape {list(c.shape)} does not broadcast to the "
                          f"computed tensor {x.type}; snncc cannot enlarge a tensor this way")
    return c


def affine(n: NodeContext, x: Value, scale: np.ndarray | None, offset: np.ndarray | None,
           suffix: str = "") -> Value:
    """x * scale + offset, with the constants named after the node's output."""
    hint = n.node.output[0]
    refs = [None if c is None else n.new_weight(f"{hint}.{what}", _fits(x, c))
            for what, c in (("scale", scale), ("offset", offset))]
    return n.emit(AffineConst, [x], AffineConst.Attrs(refs[0], refs[1]), suffix)


def _signed_sum(n: NodeContext, signs: list[int]) -> Value:
    """Σ sign_i · input_i: computed terms through syn.add, constants as one offset."""
    terms = [(i, s) for i, s in enumerate(signs) if n.has(i)]
    computed = [(n.value(i), s) for i, s in terms if not n.is_const(i)]
    consts = [n.const(i) * s for i, s in terms if n.is_const(i)]
    offset = sum(consts[1:], consts[0]).astype(np.float32) if consts else None
    if len(computed) == 1:
        x, s = computed[0]
        if s > 0 and offset is None:
            return x
        return affine(n, x, np.float32(-1) if s < 0 else None, offset)
    shapes = {x.type.shape for x, _ in computed}
    if len(shapes) > 1:
        raise Unsupported(f"adds computed tensors of different shapes {sorted(shapes)} "
                          "(broadcasting)", "add tensors of the same shape")
    parts = [x if s > 0 else affine(n, x, np.float32(-1), None, f"_neg{i}")
             for i, (x, s) in enumerate(computed)]
    total = n.emit(Add, parts, suffix="_sum" if offset is not None else "")
    return total if offset is None else affine(n, total, None, offset)


@lowering("Add", since=7)
def lower_add(n: NodeContext) -> Value:
    return _signed_sum(n, [1, 1])


@lowering("Sub", since=7)
def lower_sub(n: NodeContext) -> Value:
    return _signed_sum(n, [1, -1])


@lowering("Sum", since=8)
def lower_sum(n: NodeContext) -> Value:
    return _signed_sum(n, [1] * len(n.node.input))


@lowering("Mul", since=7)
def lower_mul(n: NodeContext) -> Value:
    if not (n.is_const(0) or n.is_const(1)):
        raise Unsupported("multiplies two computed tensors: a product of activations is not "
                          "linear, no synapse computes it", _NONLINEAR)
    x, c = (n.value(1), n.const(0)) if n.is_const(0) else (n.value(0), n.const(1))
    return affine(n, x, c, None)


@lowering("Div", since=7)
def lower_div(n: NodeContext) -> Value:
    if not n.is_const(1):
        raise Unsupported("divides by a computed tensor: not linear, no synapse computes it",
                          _NONLINEAR)
    return affine(n, n.value(0), (1.0 / n.const(1).astype(np.float64)).astype(np.float32), None)


@lowering("Relu", since=6)
def lower_relu(n: NodeContext) -> Value:
    return n.emit(Relu, [n.value(0)])


@lowering("Sigmoid", since=6)
def lower_sigmoid(n: NodeContext) -> Value:
    return n.emit(Sigmoid, [n.value(0)])


@lowering("Softmax", since=13)
def lower_softmax(n: NodeContext) -> Value:
    x = n.value(0)
    return n.emit(Softmax, [x], Softmax.Attrs(normalize_axis(n.attr("axis", -1), x.type.rank)))


@lowering("Softmax", since=1, until=12)
def lower_softmax_2d(n: NodeContext) -> Value:
    """Before opset 13 Softmax normalizes over all axes from `axis` on (input made 2-D)."""
    x = n.value(0)
    shape = x.type.shape
    axis = normalize_axis(n.attr("axis", 1), x.type.rank)
    if axis == x.type.rank - 1:
        return n.emit(Softmax, [x], Softmax.Attrs(axis))
    flat = n.emit(Reshape, [x], Reshape.Attrs((math.prod(shape[:axis]),
                                                math.prod(shape[axis:]))), "_2d")
    return n.emit(Reshape, [n.emit(Softmax, [flat], Softmax.Attrs(1), "_softmax")],
                  Reshape.Attrs(shape))


@lowering("BatchNormalization", since=9)
def lower_batchnorm(n: NodeContext) -> Value:
    if n.attr("training_mode", 0):
        raise Unsupported("training-mode BatchNormalization normalizes with each batch's "
                          "statistics", "export the model in eval mode (model.eval())")
    x = n.value(0)
    for i in range(1, 5):
        c = n.const(i)
        if c is None or c.shape != (x.type.shape[1],):
            raise Unsupported(f"input {i} must be a constant of shape ({x.type.shape[1]},)")
    return n.emit(BatchNorm, [x], BatchNorm.Attrs(
        n.weight(1), n.weight(2), n.weight(3), n.weight(4), float(n.attr("epsilon", 1e-5))))


def _constant_rhs(n: NodeContext) -> np.ndarray:
    b = n.const(1) if n.is_const(1) else None
    if b is None or n.is_const(0):
        raise Unsupported("the right operand must be a constant weight and the left one the "
                          "computed tensor", "use a Linear layer (constant weights)")
    return b


@lowering("Gemm", since=7)
def lower_gemm(n: NodeContext) -> Value:
    """alpha·A'B' + beta·C as a dense layer; a C that varies by row becomes an affine offset."""
    b = _constant_rhs(n)
    a = n.value(0)
    if n.attr("transA", 0):
        a = n.emit(Transpose, [a], Transpose.Attrs((1, 0)), "_t")
    alpha, beta = n.attr("alpha", 1.0), n.attr("beta", 1.0)
    w = b if n.attr("transB", 0) else b.T
    weight = n.weight(1) if w is b and alpha == 1.0 else n.new_weight(n.node.input[1], w * alpha)
    c = n.const(2)
    bias = offset = None
    if c is not None:
        c = c * beta
        if c.ndim < 2 or c.shape[0] == 1:  # the same for every row: a bias
            bias = n.new_weight(n.node.input[2], np.broadcast_to(c.reshape(-1), w.shape[:1]))
        else:
            offset = c
    y = n.emit(Dense, [a], Dense.Attrs(weight, bias), "_dense" if offset is not None else "")
    return y if offset is None else affine(n, y, None, offset)


@lowering("MatMul", since=1)
def lower_matmul(n: NodeContext) -> Value:
    """x @ B with a constant 2-D B; higher-rank x is flattened to rows and back."""
    b = _constant_rhs(n)
    x = n.value(0)
    if b.ndim < 2 or any(d != 1 for d in b.shape[:-2]) or x.type.rank < max(2, b.ndim):
        raise Unsupported(f"MatMul of {x.type} by a constant of shape {list(b.shape)}: snncc "
                          "supports a 2-D constant right operand only")
    k, m = b.shape[-2:]
    weight = n.new_weight(n.node.input[1], b.reshape(k, m).T)
    if x.type.rank == 2:
        return n.emit(Dense, [x], Dense.Attrs(weight))
    lead = x.type.shape[:-1]
    rows = n.emit(Reshape, [x], Reshape.Attrs((math.prod(lead), k)), "_2d")
    y = n.emit(Dense, [rows], Dense.Attrs(weight), "_dense")
    return n.emit(Reshape, [y], Reshape.Attrs((*lead, m)))
