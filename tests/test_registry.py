"""Entry-point registries: discovery, duplicates, did-you-mean, lazy loading."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from snncc.diagnostics import UsageError
from snncc.pipeline import Pass
from snncc.pipeline.registry import PASSES, TARGETS, Registry, RegistryError


def fake_dist(root, dist: str, group: str, lines: list[str]) -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(lines) + "\n")


def test_builtins_come_through_entry_points():
    assert {"canonicalize", "remove-dead-ops"} <= set(PASSES.names())
    assert "numpy" in TARGETS.names()
    assert PASSES.source("canonicalize").startswith("snncc (snncc.passes.canonicalize:")


def test_duplicate_entry_points_name_both_sources(tmp_path, monkeypatch):
    fake_dist(tmp_path, "plug_a", "snncc.test_dups", ["same = plug_a:P"])
    fake_dist(tmp_path, "plug_b", "snncc.test_dups", ["same = plug_b:P"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError) as info:
        Registry("snncc.test_dups", "pass", "passes").names()
    assert "pass 'same' is registered twice: by plug_" in str(info.value)
    assert "plug_a (plug_a:P)" in str(info.value) and "plug_b (plug_b:P)" in str(info.value)


def test_only_the_requested_entry_point_is_imported(tmp_path, monkeypatch):
    pkg = tmp_path / "lazy_plug.py"
    pkg.write_text("raise ImportError('lazy_plug must not be imported')\n")
    fake_dist(tmp_path, "lazy_plug", "snncc.test_lazy",
              ["broken = lazy_plug:P", "fine = snncc.passes.canonicalize:Canonicalize"])
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("snncc.test_lazy", "pass", "passes")
    with pytest.raises(RegistryError, match="entry-point name must match"):
        reg.get("fine")
    assert "lazy_plug" not in sys.modules
    with pytest.raises(RegistryError, match=r"'broken' from lazy_plug .* cannot be loaded"):
        reg.get("broken")


def test_unknown_names_get_did_you_mean():
    with pytest.raises(UsageError, match=r"unknown target 'lohi' \(did you mean 'loihi'\?\)|"
                       r"unknown target 'lohi'"):
        TARGETS.get("lohi")
    with pytest.raises(UsageError, match=r"did you mean 'canonicalize'"):
        PASSES.get("canonicalise")


def test_in_process_duplicate_is_refused():
    @dataclass(frozen=True)
    class Clash(Pass):
        name = "canonicalize"

    with pytest.raises(RegistryError, match="'canonicalize' is registered twice: by snncc"):
        PASSES.add(Clash, source="my script")
