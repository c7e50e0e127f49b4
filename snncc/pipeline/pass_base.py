"""The pass contract.

A pass is a frozen dataclass whose fields are its options. It names the IR properties
(`snncc.ir.properties`) it `requires` and those it `establishes` (or `invalidates`), so the
pass manager can check a pipeline before running it. `run` rewrites the graph in place and
returns whether it changed anything; `ensures` is its postcondition, which the manager
checks after it ran (as onnx-ir's passes do): by default, that every property it
establishes holds.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from snncc.ir.graph import Graph
from snncc.ir.properties import Property


@dataclass
class PassContext:
    """What passes may need beyond the graph: data, a report to fill, an output stream.

    `calibration` holds input images (N×C×H×W) for data-based passes; `stats_file` a rate
    statistics JSON written during training, or `stats` such statistics already read
    (a `snncc.data.stats.RateStats`, e.g. from the ONNX file's metadata) with
    `stats_origin` saying where from; `trained` the declaration of a directly trained SNN
    (a `snncc.data.trained.TrainedSpiking`, from the ONNX file's metadata); `report`
    collects each pass's findings under its own name (it becomes part of report.json).
    """

    calibration: Any = None
    stats_file: Path | None = None
    stats: Any = None
    stats_origin: str = ""
    trained: Any = None
    report: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    log: TextIO = field(default_factory=lambda: sys.stderr)

    def record(self, pass_name: str, **facts: Any) -> None:
        self.report.setdefault(pass_name, {}).update(facts)


@dataclass(frozen=True)
class Pass:
    """Base class of all passes. Subclasses are frozen dataclasses."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    requires: ClassVar[frozenset[Property]] = frozenset()
    establishes: ClassVar[frozenset[Property]] = frozenset()
    invalidates: ClassVar[frozenset[Property]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for role in ("requires", "establishes", "invalidates"):
            bare = sorted(str(p) for p in getattr(cls, role) if not isinstance(p, Property))
            if bare:
                raise TypeError(f"pass {cls.__qualname__}: {role} lists {bare} as plain values; "
                                "use the constants of snncc.ir.properties, or declare your own "
                                "with Property(name, summary)")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        """Rewrite `graph` in place; return True if anything changed."""
        raise NotImplementedError

    def ensures(self, graph: Graph) -> str | None:
        """Why the graph breaks this pass's postcondition after `run` (None: it holds)."""
        for prop in sorted(self.establishes, key=str):
            problem = prop.check(graph)
            if problem:
                return f"the IR property '{prop}' does not hold: {problem}"
        return None


@dataclass(frozen=True)
class PassResult:
    """What running one pass did."""

    name: str
    changed: bool
    seconds: float
