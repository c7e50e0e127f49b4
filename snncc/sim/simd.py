"""Explicit float32 vectors for the engine's numba kernels: load, add, store.

numba compiles with LLVM's SLP vectorizer off (numba issue #8705), and its loop vectorizer
turns a row add of unknown length into a 32-wide main loop with 4-wide and scalar
epilogues: rows of 8–32 floats, the engine's usual channel counts, ran mostly in the
epilogues, behind run-time alias and length checks. These intrinsics emit LLVM vector
instructions directly, one per row of a length known at compile time: `vload(a, i,
lanes)` reads the row a[i:i + n] as one value, `vadd` adds two rows lane by lane,
`vstore(a, i, v)` writes it back. A value can stay in registers across a loop (an
accumulator). Each lane is one IEEE float32 add, so a kernel gives exactly the sums of the
plain loop it replaces, in the same order.

`lanes` is any tuple of n elements (`row_lanes(n)`): numba types a tuple with its length, so
a kernel compiles once per row length, which LLVM then knows. Rows are not bounds-checked
(nor are numba's own array accesses); arrays must be 1-D, C-contiguous float32.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

MAX_LANES = 32  # longest row one vector holds (4 AVX2 / 2 AVX-512 registers)


class F32Vec(types.Type):
    """A row of `lanes` float32 values held as one LLVM vector."""

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes
        super().__init__(name=f"f32x{lanes}")


@register_model(F32Vec)
class _F32VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(ir.FloatType(), fe_type.lanes))


def row_lanes(n: int) -> tuple[int, ...]:
    """The `lanes` argument for rows of n floats."""
    return (0,) * n


def _row_array(arr) -> bool:
    return (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype == types.float32)


def _row_pointer(context, builder, arrty, arr, index, lanes: int):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(cgutils.gep(builder, data, index),
                           ir.PointerType(ir.VectorType(ir.FloatType(), lanes)))


@intrinsic
def vload(typingctx, arr, index, lanes):
    """arr[index:index + n] as one vector; n = len(lanes)."""
    if not (_row_array(arr) and isinstance(index, types.Integer)
            and isinstance(lanes, types.UniTuple) and 0 < lanes.count <= MAX_LANES):
        return None
    n = lanes.count

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], args[0], args[1], n)
        return builder.load(ptr, align=4)

    return F32Vec(n)(arr, index, lanes), codegen


@intrinsic
def vstore(typingctx, arr, index, row):
    """arr[index:index + n] = row."""
    if not (_row_array(arr) and isinstance(index, types.Integer) and isinstance(row, F32Vec)):
        return None
    n = row.lanes

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], args[0], args[1], n)
        builder.store(args[2], ptr, align=4)
        return context.get_dummy_value()

    return types.none(arr, index, row), codegen


@intrinsic
def vadd(typingctx, a, b):
    """a + b, lane by lane (float32 adds)."""
    if not (isinstance(a, F32Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen
