"""The analog interpreter: runs analog IR op by op with the numpy kernels.

Like torch.fx's Interpreter, it walks the ops in order with a registry that maps each op
class to a kernel adapter. Images run in chunks of `batch_size`; a value is dropped after
its last use within a chunk, so memory follows the widest cut of the graph, not its size.

Batch semantics: the IR's shapes are one sample's (batch dim B, usually 1). An input of
N·B rows holds N samples stacked along axis 0, and so does every value. Most ops treat
axis 0 row by row ("row-wise") and run on a whole chunk at once; ops that mix axis 0 (a
transpose that moves it, a softmax over it, a reshape that changes it, ...) run sample by
sample with the IR's exact shapes, and their results are stacked again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.attributes import WeightRef
from snncc.ir.dispatch import OpTable
from snncc.ir.graph import Graph, Value
from snncc.ir.interp import kernels
from snncc.ir.op import Op
from snncc.ir.ops import (
    Add,
    AffineConst,
    AvgPool2d,
    BatchNorm,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Flatten,
    Relu,
    Reshape,
    Sigmoid,
    Softmax,
    SparseMap,
    SumPool2d,
    Transpose,
    Upsample,
)
from snncc.ir.weights import WeightStore

Adapter = Callable[[Op, list[np.ndarray], WeightStore], np.ndarray]
Observer = Callable[[Value, np.ndarray], None]


class AnalogRunError(SnnccError):
    """A kernel failed on a verified graph: a bug in snncc, hence the internal exit code."""

    exit_code = 3


@dataclass(frozen=True)
class KernelEntry:
    """How to run one op class: the adapter, and whether it may see a whole chunk at once."""

    run: Adapter
    rowwise: Callable[[Op, WeightStore], bool]


ANALOG_KERNELS: OpTable[KernelEntry] = OpTable("analog kernel")


def _always(op: Op, weights: WeightStore) -> bool:
    return True


def analog_kernel(
    *op_classes: type[Op], rowwise: Callable[[Op, WeightStore], bool] = _always
) -> Callable[[Adapter], Adapter]:
    """Decorator: register an adapter `(op, inputs, weights) -> array` for op classes.

    `rowwise(op, weights)` says whether the op treats axis 0 row by row (the default), so
    it can run on a whole chunk of samples at once; otherwise it runs sample by sample.
    """

    def wrap(fn: Adapter) -> Adapter:
        ANALOG_KERNELS.add(KernelEntry(fn, rowwise), *op_classes)
        return fn

    return wrap


def _opt(weights: WeightStore, ref: WeightRef | None) -> np.ndarray | None:
    return None if ref is None else weights[ref]


def _axis(op: Op) -> int:
    return op.attrs.axis % op.result.type.rank


def _samples(x: np.ndarray, value: Value) -> int:
    """How many samples the rows of `x` hold (1 when run with the IR's exact shape)."""
    return x.shape[0] // value.type.shape[0]


@analog_kernel(Conv2d)
def _conv(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.conv2d(xs[0], w[a.weight], _opt(w, a.bias), a.strides, a.pads, a.dilations,
                    a.groups)


@analog_kernel(ConvTranspose2d)
def _conv_t(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.conv_transpose2d(xs[0], w[a.weight], _opt(w, a.bias), a.strides, a.pads,
                              a.dilations, a.output_padding, a.groups)


@analog_kernel(AvgPool2d)
def _avgpool(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.avg_pool2d(xs[0], a.kernel, a.strides, a.pads, a.count_include_pad, a.ceil_mode)


@analog_kernel(SumPool2d)
def _sumpool(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.sum_pool2d(xs[0], a.kernel, a.strides, a.pads)


@analog_kernel(Upsample)
def _upsample(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.upsample_nearest(xs[0], op.attrs.scale)


@analog_kernel(Concat, rowwise=lambda op, w: _axis(op) != 0)
def _concat(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.concat(xs, _axis(op))


@analog_kernel(Add)
def _add(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.add(xs)


def _affine_rowwise(op: Op, w: WeightStore) -> bool:
    """Row-wise unless a constant varies along axis 0 (it then needs the sample's rows)."""
    rank = op.inputs[0].type.rank
    consts = [w[ref] for ref in (op.attrs.scale, op.attrs.offset) if ref is not None]
    return all(c.ndim < rank or c.shape[0] == 1 for c in consts)


@analog_kernel(AffineConst, rowwise=_affine_rowwise)
def _affine(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.affine(xs[0], _opt(w, a.scale), _opt(w, a.offset))


@analog_kernel(BatchNorm)
def _batchnorm(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.batchnorm(xs[0], w[a.scale], w[a.bias], w[a.mean], w[a.var], a.epsilon)


@analog_kernel(Dense)
def _dense(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.dense(xs[0], w[op.attrs.weight], _opt(w, op.attrs.bias))


@analog_kernel(SparseMap)
def _sparse(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    a = op.attrs
    return kernels.sparse_map(xs[0], w[a.weight], w[a.indices], a.out_shape, _opt(w, a.bias))


@analog_kernel(Flatten, rowwise=lambda op, w: op.attrs.axis >= 1)
def _flatten(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.flatten(xs[0], op.attrs.axis)


@analog_kernel(Reshape, rowwise=lambda op, w: op.attrs.shape[0] == op.inputs[0].type.shape[0])
def _reshape(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    shape = op.attrs.shape
    return kernels.reshape(xs[0], (_samples(xs[0], op.inputs[0]) * shape[0], *shape[1:]))


@analog_kernel(Transpose, rowwise=lambda op, w: op.attrs.perm[0] == 0)
def _transpose(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.transpose(xs[0], op.attrs.perm)


@analog_kernel(Relu)
def _relu(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.relu(xs[0])


@analog_kernel(Sigmoid)
def _sigmoid(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.sigmoid(xs[0])


@analog_kernel(Softmax, rowwise=lambda op, w: _axis(op) != 0)
def _softmax(op: Op, xs: list[np.ndarray], w: WeightStore) -> np.ndarray:
    return kernels.softmax(xs[0], _axis(op))


# the interpreter --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Step:
    op: Op
    kernel: KernelEntry
    rowwise: bool
    frees: tuple[int, ...]  # ids of values whose last use is this op


def _plan(graph: Graph) -> list[_Step]:
    """Kernel, batch mode and values to free for every op; refuses ops without kernels."""
    missing = [op for op in graph.ops if op not in ANALOG_KERNELS]
    if missing:
        lines = "\n".join(f"  - {op.name} '%{op.result.name}' at {op.loc.describe()}"
                          for op in missing)
        raise SnnccError(
            f"the numpy analog mode runs analog IR only; graph @{graph.name} holds ops it has "
            f"no kernel for:\n{lines}\nrun it in a spiking mode, or before the passes that "
            "introduced these ops"
        )
    last_use: dict[int, int] = {}
    for index, op in enumerate(graph.ops):
        for v in op.inputs:
            last_use[id(v)] = index
    kept = {id(v) for v in graph.outputs}
    steps = []
    for index, op in enumerate(graph.ops):
        entry = ANALOG_KERNELS[op]
        frees = tuple({id(v) for v in op.inputs
                       if last_use[id(v)] == index and id(v) not in kept})
        steps.append(_Step(op, entry, entry.rowwise(op, graph.weights), frees))
    return steps


def _check_inputs(graph: Graph, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """float32 inputs and the number of samples they hold (the same for every input)."""
    if len(inputs) != len(graph.inputs):
        raise SnnccError(f"graph @{graph.name} takes {len(graph.inputs)} input(s), "
                         f"got {len(inputs)}")
    arrays, counts = [], set()
    for value, x in zip(graph.inputs, inputs, strict=True):
        x = kernels.as_f32(np.asarray(x))
        batch, rest = value.type.shape[0], value.type.shape[1:]
        if x.ndim != value.type.rank or x.shape[1:] != rest or x.shape[0] % batch or not len(x):
            want = "x".join(["N" if batch == 1 else f"N*{batch}", *map(str, rest)])
            raise SnnccError(f"input %{value.name} has shape {'x'.join(map(str, x.shape))}; "
                             f"expected {want} (N samples of the model's input {value.type})")
        arrays.append(x)
        counts.add(x.shape[0] // batch)
    if len(counts) != 1:
        raise SnnccError(f"the inputs hold different numbers of samples: {sorted(counts)}")
    return arrays, counts.pop()


def _apply(step: _Step, args: list[np.ndarray], weights: WeightStore) -> np.ndarray:
    op = step.op
    try:
        if step.rowwise:
            return step.kernel.run(op, args, weights)
        batches = [v.type.shape[0] for v in op.inputs]
        parts = [
            step.kernel.run(op, [a[s * b:(s + 1) * b] for a, b in zip(args, batches,
                                                                         strict=True)], weights)
            for s in range(_samples(args[0], op.inputs[0]))
        ]
        return np.concatenate(parts)
    except Exception as err:
        raise AnalogRunError(
            f"{op.describe()} failed in the numpy analog "
            f"run: {type(err).__name__}: {err}"
        ) from err


def run_analog(
    graph: Graph,
    inputs: Sequence[np.ndarray],
    batch_size: int = 16,
    *,
    observe: Observer | None = None,
    watch: Collection[Value] | None = None,
) -> list[np.ndarray]:
    """Run analog IR on N samples; return one array per graph output, N samples stacked.

    Each input holds N·B rows for the IR's input shape B×C×H×W (B is usually 1, so N
    images). `observe(value, chunk)` is called for every value in `watch` (every value
    when `watch` is None) as soon as a chunk of it is computed: calibration uses it to
    collect activations without keeping the whole graph's values in memory.
    """
    if batch_size < 1:
        raise SnnccError(f"batch_size must be ≥ 1, got {batch_size}")
    arrays, samples = _check_inputs(graph, inputs)
    steps = _plan(graph)
    watched = None if watch is None else {id(v) for v in watch}

    def seen(value: Value, array: np.ndarray) -> None:
        if observe is not None and (watched is None or id(value) in watched):
            observe(value, array)

    chunks: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    for start in range(0, samples, batch_size):
        stop = min(start + batch_size, samples)
        env: dict[int, np.ndarray] = {}
        for value, x in zip(graph.inputs, arrays, strict=True):
            b = value.type.shape[0]
            env[id(value)] = x[start * b: stop * b]
            seen(value, env[id(value)])
        for step in steps:
            result = _apply(step, [env[id(v)] for v in step.op.inputs], graph.weights)
            env[id(step.op.result)] = result
            seen(step.op.result, result)
            for key in step.frees:
                del env[key]
        for k, value in enumerate(graph.outputs):
            chunks[k].append(env[id(value)])
    return [np.concatenate(parts) for parts in chunks]


def collect_values(
    graph: Graph, inputs: Sequence[np.ndarray], values: Collection[Value], batch_size: int = 16
) -> dict[Value, np.ndarray]:
    """The full arrays (all samples) of `values`; for small data sets and tests."""
    parts: dict[Value, list[np.ndarray]] = {v: [] for v in values}
    run_analog(graph, inputs, batch_size, watch=values,
               observe=lambda value, array: parts[value].append(array))
    return {v: np.concatenate(p) for v, p in parts.items()}
