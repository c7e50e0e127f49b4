"""The docs' examples run, and the IR reference names every built-in op kind."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from snncc.ir import OP_REGISTRY

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXECUTED = ["ir.md", "writing-a-pass.md", "conversion.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("name", EXECUTED)
def test_python_examples_run(name, monkeypatch):
    blocks = python_blocks(DOCS / name)
    assert blocks, f"{name} has no python examples"
    module = types.ModuleType(f"docs_{name.replace('-', '_').removesuffix('.md')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in blocks:
        exec(compile(block, str(DOCS / name), "exec"), module.__dict__)


def test_ir_reference_names_every_builtin_op():
    text = (DOCS / "ir.md").read_text()
    builtin = [n for n, cls in OP_REGISTRY.items() if cls.__module__.startswith("snncc.")]
    missing = [n for n in builtin if f"`{n}`" not in text]
    assert not missing, f"docs/ir.md does not describe: {missing}"
