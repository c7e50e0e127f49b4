"""The pass contract.

A pass is a frozen dataclass whose fields are its options. It names the IR properties it
`requires` and those it `establishes` (or `invalidates`), so the pass manager can check a
pipeline before running it. `run` rewrites the graph in place and returns whether it
changed anything.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from snncc.ir.graph import Graph


@dataclass
class PassContext:
    """What passes may need beyond the graph: data, a report to fill, an output stream.

    `calibration` holds input images (N×C×H×W) for data-based passes; `stats_file` a rate
    statistics JSON written during training; `report` collects each pass's findings under
    its own name (it becomes part of report.json).
    """

    calibration: Any = None
    stats_file: Path | None = None
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
    requires: ClassVar[frozenset[str]] = frozenset()
    establishes: ClassVar[frozenset[str]] = frozenset()
    invalidates: ClassVar[frozenset[str]] = frozenset()

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        """Rewrite `graph` in place; return True if anything changed."""
        raise NotImplementedError


@dataclass(frozen=True)
class PassResult:
    """What running one pass did."""

    name: str
    changed: bool
    seconds: float
