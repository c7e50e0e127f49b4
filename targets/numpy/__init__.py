"""The numpy target: snncc's reference simulator.

`analog` runs the analog IR exactly as onnxruntime runs the ONNX model; `ideal` steps the
spiking IR with float dynamics; `loihi` reproduces nengo-loihi's integer dynamics. It
emits nothing beyond the IR itself: a compiled directory is all it needs to run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snncc.diagnostics import SnnccError, UsageError
from snncc.host.memory import gib, physical_memory
from snncc.ir.graph import Graph
from snncc.pipeline.target import RunResult, Target

OPS_PER_SECOND = 1e10  # optimistic: the gate refuses only runs far beyond this machine
BYTES_PER_VALUE = 16   # float32 state, current, spike count and output of every value


def run_cost(graph: Graph) -> tuple[float, int]:
    """Multiply-adds of one image for one step, and the values one image keeps."""
    ops, values = 0.0, 0
    for op in graph.ops:
        size = math.prod(op.result.type.shape[1:])
        weights = sum(graph.weights[ref].size for ref in op.weight_refs()
                      if ref in graph.weights)
        channels = op.result.type.shape[1] if op.result.type.rank > 1 else 1
        ops += size * max(1.0, weights / channels)
        values += size
    return ops, values


def check_run_size(graph: Graph, images: int, timesteps: int, batch_size: int,
                   max_seconds: float) -> None:
    """Refuse a run whose time or memory estimate is far beyond this machine."""
    per_step, values = run_cost(graph)
    seconds = per_step * images * timesteps / OPS_PER_SECOND
    memory = values * min(images, batch_size) * BYTES_PER_VALUE
    if seconds > max_seconds or memory > physical_memory():
        raise SnnccError(
            f"this run of {images} image(s) × {timesteps} step(s) would take at least "
            f"{seconds:.3g} s and {gib(memory)} (limits {max_seconds:g} s and this machine's "
            f"{gib(physical_memory())}); use fewer images, --timesteps or a smaller batch "
            "size, or raise the limit with --target 'numpy{max-seconds=...}'")


@dataclass(frozen=True)
class NumpyTarget(Target):
    name = "numpy"
    summary = "reference numpy simulator: analog (exact ONNX math), ideal and loihi spiking"
    default_pipeline = "canonicalize,fold-batchnorm"
    modes = ("analog", "ideal", "loihi")

    batch_size: int = 16
    max_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise SnnccError(f"batch-size must be ≥ 1, got {self.batch_size}")
        if not self.max_seconds > 0:
            raise SnnccError(f"max-seconds must be > 0, got {self.max_seconds}")

    def run(
        self,
        graph: Graph,
        inputs: list[np.ndarray],
        mode: str,
        timesteps: int | None = None,
        progress: bool = False,
    ) -> RunResult:
        if mode not in self.modes:
            raise UsageError(f"numpy target has no mode '{mode}' (modes: {', '.join(self.modes)})")
        steps = 1 if mode == "analog" else timesteps or graph.attrs.timesteps
        check_run_size(graph, len(inputs[0]), steps, self.batch_size, self.max_seconds)
        if mode == "analog":
            from snncc.ir.interp.analog import run_analog

            return RunResult(run_analog(graph, inputs, batch_size=self.batch_size))
        from snncc.sim.spiking import run_spiking

        return run_spiking(graph, inputs, mode=mode, timesteps=timesteps,
                           batch_size=self.batch_size, progress=progress)
