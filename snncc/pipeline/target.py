"""The target contract: what a backend supports, what it writes, and how it runs.

A target is a frozen dataclass whose fields are its options (given on the command line as
`--target 'loihi{hardware=true}'`, the pipeline-string syntax). It names the pipeline that
`snncc compile` runs by default, checks the graph it is given, writes its artifacts into
the output directory, and can run a compiled graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from snncc.ir.graph import Graph
from snncc.pipeline.pass_base import PassContext


@dataclass
class RunResult:
    """Outputs of a run (one array per graph output, batch first) and what was measured.

    `frames` maps a timestep t to the outputs decoded from the first t steps (spiking runs
    asked for them), to show the prediction converging; `frame_stats` maps it to what had
    been measured by then (per-layer spikes and rates, as in `stats["layers"]`).
    """

    outputs: list[np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)
    frames: dict[int, list[np.ndarray]] = field(default_factory=dict)
    frame_stats: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Base class of all targets."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    default_pipeline: ClassVar[str] = "canonicalize"
    # run instead of the default on a directly trained SNN (ONNX metadata 'snncc.spiking')
    trained_pipeline: ClassVar[str | None] = None
    # run instead of the default with `compile --distill` (needs calibration images)
    distill_pipeline: ClassVar[str | None] = None
    modes: ClassVar[tuple[str, ...]] = ()

    def check(self, graph: Graph) -> list[str]:
        """Problems that stop this target from taking `graph` (empty when it can)."""
        return []

    def emit(self, graph: Graph, outdir: Path, ctx: PassContext) -> dict[str, Any]:
        """Write target-specific artifacts into `outdir`; return facts for report.json."""
        return {}

    def run(
        self,
        graph: Graph,
        inputs: list[np.ndarray],
        mode: str,
        timesteps: int | None = None,
        progress: bool = False,
    ) -> RunResult:
        """Run `graph` on a batch of inputs in one of `modes`."""
        raise NotImplementedError(f"target '{self.name}' cannot run graphs")
