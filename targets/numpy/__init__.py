"""The numpy target: snncc's reference simulator.

`analog` runs the analog IR exactly as onnxruntime runs the ONNX model; `ideal` steps the
spiking IR with float dynamics; `loihi` reproduces nengo-loihi's integer dynamics. It
emits nothing beyond the IR itself: a compiled directory is all it needs to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.diagnostics import UsageError
from snncc.ir.graph import Graph
from snncc.pipeline.target import RunResult, Target


@dataclass(frozen=True)
class NumpyTarget(Target):
    name = "numpy"
    summary = "reference numpy simulator: analog (exact ONNX math), ideal and loihi spiking"
    default_pipeline = "canonicalize,fold-batchnorm"
    modes = ("analog", "ideal", "loihi")

    batch_size: int = 16

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
        if mode == "analog":
            from snncc.ir.interp.analog import run_analog

            return RunResult(run_analog(graph, inputs, batch_size=self.batch_size))
        from snncc.sim.spiking import run_spiking

        return run_spiking(graph, inputs, mode=mode, timesteps=timesteps,
                           batch_size=self.batch_size, progress=progress)
