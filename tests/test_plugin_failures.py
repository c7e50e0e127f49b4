"""Issue #11 item 10: a broken plugin is named, never a bare internal error or silence."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from irbuild import tiny_unet
from test_registry import fake_dist

from snncc.cli.main import main
from snncc.ir import save_ir
from snncc.pipeline import Pass
from snncc.pipeline.registry import PASSES, Registry


@dataclass(frozen=True)
class Crash(Pass):
    name = "test-crash"
    summary = "raises RuntimeError"

    def run(self, graph, ctx):
        raise RuntimeError("boom")


@dataclass(frozen=True)
class Quit(Pass):
    name = "test-quit"
    summary = "calls sys.exit(0)"

    def run(self, graph, ctx):
        sys.exit(0)


@pytest.fixture
def dump(tmp_path) -> Path:
    path = tmp_path / "t.snnir"
    save_ir(tiny_unet(), path)
    return path


@pytest.mark.parametrize(("cls", "what"), [(Crash, "raised RuntimeError: boom"),
                                           (Quit, "called sys.exit(0)")])
def test_a_pass_that_crashes_or_exits_is_named(dump, capsys, cls, what):
    PASSES.add(cls)
    try:
        assert main(["opt", str(dump), "-p", f"canonicalize,{cls.name}"]) == 3
    finally:
        PASSES.remove(cls.name)
    captured = capsys.readouterr()
    assert f"pass '{cls.name}' from registered in-process {what}" in captured.err
    assert "passes run before it: canonicalize" in captured.err and captured.out == ""


@pytest.mark.parametrize(("source", "error"), [
    ("def broken(:\n", "SyntaxError"),
    ("raise ValueError('config missing')\n", "ValueError: config missing"),
    ("import sys\nsys.exit(2)\n", "SystemExit: 2"),
])
def test_broken_plugin_modules_name_the_entry_point_and_the_rest_still_list(
        tmp_path, monkeypatch, capsys, source, error):
    (tmp_path / "bad_plug.py").write_text(source)
    fake_dist(tmp_path, "bad_plug", "snncc.passes", ["bad-pass = bad_plug:P"])
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("snncc.passes", "pass", "passes")
    monkeypatch.setattr("snncc.cli.list_cmd.PASSES", registry)
    monkeypatch.setattr("snncc.pipeline.manager.PASSES", registry)
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    assert "bad-pass: BROKEN: pass 'bad-pass' from bad_plug (bad_plug:P) cannot be loaded" in out
    assert error in out and "canonicalize: " in out
    dump = tmp_path / "t.snnir"
    save_ir(tiny_unet(), dump)
    assert main(["opt", str(dump), "-p", "bad-pass"]) == 1
    assert "bad_plug (bad_plug:P) cannot be loaded" in capsys.readouterr().err
    sys.modules.pop("bad_plug", None)
