"""The pass manager: check a pipeline statically, run it, verify after every pass.

Instrumentation mirrors MLIR / xDSL: print the IR after all passes or after named ones,
dump every stage into a directory, time the passes. A failing pass is reported with its
name and the passes that ran before it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from snncc.diagnostics import SnnccError, UsageError
from snncc.ir.graph import Graph
from snncc.ir.io import save_ir
from snncc.ir.op import IRError
from snncc.ir.printer import print_graph
from snncc.ir.properties import Property
from snncc.pipeline.options import PipelineError, bind, format_spec, parse_specs
from snncc.pipeline.pass_base import Pass, PassContext, PassResult
from snncc.pipeline.registry import PASSES


class PassFailed(SnnccError):
    """A pass raised a user error, or left an invalid graph (a bug in that pass: exit 3)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_pipeline(text: str) -> list[Pass]:
    """Bind a pipeline string to pass instances from the registry."""
    passes = []
    for spec in parse_specs(text):
        try:
            cls = PASSES.get(spec.name)
        except UsageError as err:  # an unknown name; a broken plugin stays a RegistryError
            raise PipelineError(f"{err}\n  {text}\n  {' ' * (spec.column - 1)}^") from None
        passes.append(bind(cls, spec, text))
    return passes


def with_options(text: str, pass_name: str, **options: Any) -> str:
    """Pipeline `text` with `options` set on its pass `pass_name` (its other options kept);
    the other passes keep their text as written. A pipeline without that pass, or an option
    the pass does not take, is a PipelineError."""
    specs, passes = parse_specs(text), parse_pipeline(text)
    if pass_name not in [spec.name for spec in specs]:
        raise PipelineError(f"pipeline has no {pass_name}: {text}")
    ends = [spec.column - 1 for spec in specs[1:]] + [len(text)]
    pieces = []
    for spec, end, bound in zip(specs, ends, passes, strict=True):
        if spec.name != pass_name:
            pieces.append(text[spec.column - 1:end].rstrip(", "))
            continue
        try:
            pieces.append(format_spec(dataclasses.replace(bound, **options)))
        except (TypeError, ValueError) as err:
            raise PipelineError(f"{pass_name}: {err}") from None
    return ",".join(pieces)


def _names(props: frozenset[Property]) -> set[str]:
    return {prop.name for prop in props}


def _providers(prop: str) -> list[str]:
    return [cls.name for cls in PASSES.all() if prop in _names(cls.establishes)]


def check_pipeline(passes: list[Pass], available: set[str]) -> None:
    """Refuse a pipeline in which a pass requires a property nothing before it establishes."""
    have = set(available)
    for i, p in enumerate(passes):
        missing = sorted(_names(p.requires) - have)
        if missing:
            prop = missing[0]
            providers = _providers(prop)
            hint = (f"add {' or '.join(repr(n) for n in providers)} before it" if providers
                    else "no registered pass establishes it")
            raise PipelineError(
                f"pass '{p.name}' (position {i + 1}) requires the IR property '{prop}', which "
                f"nothing before it establishes; {hint}"
            )
        have = (have - _names(p.invalidates)) | _names(p.establishes)


@dataclass
class PassManager:
    passes: list[Pass]
    verify_each: bool = True
    print_after_all: bool = False
    print_after: set[str] = field(default_factory=set)
    dump_dir: Path | None = None
    time_passes: bool = False
    out: TextIO | None = None

    def _emit(self, text: str, ctx: PassContext) -> None:
        (self.out or ctx.log).write(text)

    def run(self, graph: Graph, ctx: PassContext | None = None) -> list[PassResult]:
        ctx = ctx or PassContext()
        unknown = self.print_after - {p.name for p in self.passes}
        if unknown:
            raise PipelineError(f"--print-ir-after names '{sorted(unknown)[0]}', which is not in "
                                f"the pipeline ({', '.join(p.name for p in self.passes)})")
        check_pipeline(self.passes, set(graph.attrs.properties))
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            save_ir(graph, self.dump_dir / "00-input.snnir")
        results: list[PassResult] = []
        for i, p in enumerate(self.passes, start=1):
            before = ", ".join(r.name for r in results) or "none"
            start = time.perf_counter()
            try:
                changed = p.run(graph, ctx)
            except SnnccError as err:
                raise PassFailed(f"pass '{p.name}' failed (passes run before it: {before}):\n"
                                 f"{err}", getattr(err, "exit_code", 1)) from None
            except MemoryError:
                raise
            except (Exception, SystemExit) as err:  # a bug in the pass, named for its author
                what = (f"called sys.exit({err.code!r})" if isinstance(err, SystemExit)
                        else f"raised {type(err).__name__}: {err}")
                raise PassFailed(f"pass '{p.name}' from {PASSES.source(p.name)} {what} "
                                 f"(passes run before it: {before}); this is a bug in that "
                                 "pass: report it to its authors", 3) from err
            seconds = time.perf_counter() - start
            graph.with_properties(*sorted(_names(p.establishes)),
                                  drop=tuple(_names(p.invalidates)))
            if self.verify_each:
                try:
                    graph.verify()
                except IRError as err:
                    raise PassFailed(
                        f"the IR is invalid after pass '{p.name}' (passes run before it: "
                        f"{before}): {err}; this is a bug in that pass", 3) from None
                problem = p.ensures(graph)
                if problem:
                    raise PassFailed(
                        f"pass '{p.name}' did not establish what it promises (passes run "
                        f"before it: {before}): {problem}; this is a bug in that pass", 3)
            results.append(PassResult(p.name, bool(changed), seconds))
            if self.print_after_all or p.name in self.print_after:
                self._emit(f"// ----- IR after {format_spec(p)} -----\n{print_graph(graph)}", ctx)
            if self.dump_dir is not None:
                save_ir(graph, self.dump_dir / f"{i:02d}-{p.name}.snnir")
        if self.time_passes:
            total = sum(r.seconds for r in results) or 1e-12
            lines = ["// pass timing", f"//   {'seconds':>9}  {'share':>6}  pass"]
            lines += [f"//   {r.seconds:9.4f}  {100 * r.seconds / total:5.1f}%  {r.name}"
                      for r in results]
            self._emit("\n".join(lines) + "\n", ctx)
        return results
