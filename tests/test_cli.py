"""The command line: opt, inspect, passes, targets, plugins, and what bad input gets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from irbuild import tiny_unet

from snncc.cli.main import main
from snncc.ir import load_ir, save_ir

SNNCC = str(Path(sys.executable).with_name("snncc"))


@pytest.fixture
def dump(tmp_path) -> Path:
    path = tmp_path / "tiny.snnir"
    save_ir(tiny_unet(), path)
    return path


def test_opt_prints_ir_and_writes_output(dump, tmp_path, capsys):
    assert main(["opt", str(dump), "-p", "canonicalize"]) == 0
    assert capsys.readouterr().out.startswith("snncc.ir 1\n")
    out = tmp_path / "out.snnir"
    assert main(["opt", str(dump), "-p", "canonicalize,remove-dead-ops", "-o", str(out)]) == 0
    assert load_ir(out).attrs.properties == ("canonical",)


def test_opt_instrumentation_flags(dump, tmp_path, capsys):
    code = main(["opt", str(dump), "-p", "canonicalize,remove-dead-ops", "--print-ir-after-all",
                 "--time-passes", "--dump-dir", str(tmp_path / "stages")])
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("// ----- IR after") == 2 and "// pass timing" in err
    assert len(list((tmp_path / "stages").glob("*.snnir"))) == 3


def test_third_party_plugin_is_discovered_and_runs(dump, capsys):
    assert main(["passes"]) == 0
    listing = capsys.readouterr().out
    assert "number-values: rename every op result" in listing
    assert "from snncc-example-plugin (snncc_example_plugin:NumberValues)" in listing
    assert main(["opt", str(dump), "-p", "number-values{prefix=n}"]) == 0
    text = capsys.readouterr().out
    assert "%n0 = syn.conv2d(%x)" in text and "return %n8" in text


def test_passes_and_targets_json(capsys):
    assert main(["passes", "--json"]) == 0
    passes = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert passes["canonicalize"]["establishes"] == ["canonical"]
    assert main(["targets", "--json"]) == 0
    targets = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert "analog" in targets["numpy"]["modes"]


def test_inspect_dump_text_and_json(dump, capsys):
    assert main(["inspect", str(dump)]) == 0
    text = capsys.readouterr().out
    assert "syn.conv2d" in text and "weights stored" in text
    assert main(["inspect", str(dump), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["summary"]
    assert info["ops"]["syn.conv2d"] == 3
    layer = {r["name"]: r for r in info["layers"]}
    # 3x3 conv, pads 1, 8x8 map: per axis 8*3 - 2 border taps = 22 → 4 * 1 * 22 * 22
    assert layer["c1"]["synapses"] == 4 * 22 * 22


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["opt", "{dump}", "-p", "canonicalise"], 2, "unknown pass 'canonicalise' (did you mean"),
    (["opt", "{dump}", "-p", "number-values{prefx=n}"], 2, "has no option 'prefx'"),
    (["opt", "{dump}", "-p", "number-values{prefix=1x}"], 1,
     "prefix '1x' must be an identifier"),
    (["opt", "{missing}", "-p", "canonicalize"], 1, "cannot read IR file"),
    (["inspect", "{missing}"], 1, "no such file or directory"),
    (["run", "{tmp}", "--input", "x.npy"], 1, "not a compiled directory (no model.snnir)"),
    (["compile", "m.onnx", "--target", "lohi"], 2, "unknown target 'lohi'"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_bad_input_exit_codes_and_messages(argv, code, message, dump, tmp_path, capsys):
    places = {"{dump}": str(dump), "{missing}": str(tmp_path / "nope.snnir"),
              "{tmp}": str(tmp_path)}
    argv = [places.get(a, a) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_parse_errors_from_the_console_script(dump):
    dump.write_text(dump.read_text().replace("syn.conv2d", "syn.convv2d", 1))
    proc = subprocess.run([SNNCC, "opt", str(dump), "-p", "canonicalize"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    expected = f"{dump}:4:9: error: unknown op 'syn.convv2d' (did you mean 'syn.conv2d'?)"
    assert expected in proc.stderr
    assert "^" in proc.stderr and "Traceback" not in proc.stderr


def test_weights_mismatch_is_reported_with_the_dump(dump, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    save_ir(tiny_unet(seed=1), other / "tiny.snnir")
    shutil.copy(other / "tiny.npz", dump.with_suffix(".npz"))
    assert main(["inspect", str(dump)]) == 1
    err = capsys.readouterr().err
    assert "does not match" in err and "tiny.snnir" in err


def test_reports_are_strict_json(tmp_path):
    """NaN and infinities (e.g. an unknown mean activation) are written as null."""
    import json

    from snncc.cli.common import write_json

    path = tmp_path / "r.json"
    write_json(path, {"mean": float("nan"), "rates": [float("inf"), 1.5], "n": 3})

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "mean": None, "rates": [None, 1.5], "n": 3}
