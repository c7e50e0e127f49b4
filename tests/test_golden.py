"""Golden IR tests: `tests/golden/<pass>/<case>.snnir` → pipeline → `<case>.expected.snnir`.

The pipeline is the directory name unless the input's first line says `// RUN: <pipeline>`.
Weights, if any, sit beside the input as `<case>.npz`. Every golden file must also round-trip
through print → parse → print. Set SNNCC_UPDATE_GOLDEN=1 to rewrite the expected files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snncc.ir import WeightStore, parse_graph, print_graph
from snncc.pipeline import PassContext, PassManager, parse_pipeline

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*.snnir") if not p.name.endswith(".expected.snnir")
               and p.read_text().startswith("// RUN:"))
ALL_FILES = sorted(GOLDEN.glob("*/*.snnir"))


def load(path: Path):
    npz = GOLDEN / path.parent.name / (path.name.split(".")[0] + ".npz")

    def weights(_name: str, _sha: str) -> WeightStore:
        return WeightStore.load(npz) if npz.is_file() else WeightStore()

    return parse_graph(path.read_text(), f"{path.parent.name}/{path.name}", weights_loader=weights)


def test_golden_cases_exist():
    assert CASES, "no golden cases found"


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pass_output_matches_expected(case: Path):
    pipeline = case.read_text().splitlines()[0].removeprefix("// RUN:").strip()
    graph = load(case)
    PassManager(parse_pipeline(pipeline)).run(graph, PassContext(progress=False))
    got = print_graph(graph, weights_file=case.name.split(".")[0] + ".expected.npz")
    expected = case.with_name(case.stem + ".expected.snnir")
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        expected.write_text(got)
        if len(graph.weights):
            graph.weights.save(expected.with_suffix(".npz"))
    assert got == expected.read_text()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_files_round_trip(path: Path):
    text = path.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//")) + "\n"
    graph = parse_graph(text, str(path), weights_loader=lambda f, s: WeightStore.load(
        path.parent / f) if (path.parent / f).is_file() else WeightStore())
    assert print_graph(graph, weights_file=body.split('"')[1]) == body
