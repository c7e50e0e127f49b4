"""Issue #11 items 1-4, 7, 9 and #17 points 3, 9: outputs never destroy inputs, are checked
before any work, written atomically, and --force replaces only what snncc wrote."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from irbuild import tiny_unet
from models.onnx_build import model, save
from onnx import helper

from snncc.cli.main import main
from snncc.ir import load_ir, save_ir

SNNCC = str(Path(sys.executable).with_name("snncc"))


def small_onnx(path: Path, size: int = 8) -> Path:
    w = np.full((2, 1, 3, 3), 0.1, np.float32)
    return save(model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                       helper.make_node("Relu", ["c"], ["y"])],
                      {"x": [1, 1, size, size]}, {"y": [1, 2, size, size]}, {"w": w}), path)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    small_onnx(models / "small.onnx")
    (models / "notes.txt").write_text("mine")
    return tmp_path


@pytest.mark.parametrize("where", ["models", ".", "parent", "home", "root", "foreign"])
def test_force_never_deletes_a_directory_snncc_did_not_write(project, monkeypatch, capsys,
                                                             where):
    model_path = project / "models" / "small.onnx"
    (project / "foreign").mkdir()
    (project / "foreign" / "keep.txt").write_text("keep")
    monkeypatch.chdir(project / "models")
    monkeypatch.setenv("HOME", str(project / "foreign"))
    out = {"models": str(project / "models"), ".": ".", "parent": str(project),
           "home": "~", "root": "/", "foreign": str(project / "foreign")}[where]
    before = tree(project)
    argv = ["compile", str(model_path), "--target", "numpy", "-o",
            os.path.expanduser(out), "--force"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "choose" in err and "internal error" not in err
    assert tree(project) == before


def test_force_replaces_its_own_output_and_empty_dirs(project, capsys):
    m = project / "models" / "small.onnx"
    out = project / "out"
    out.mkdir()
    assert main(["compile", str(m), "--target", "numpy", "-o", str(out), "--force"]) == 0
    first = json.loads((out / "report.json").read_text())
    assert main(["compile", str(m), "--target", "numpy", "-o", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main(["compile", str(m), "--target", "numpy", "-o", str(out), "--force"]) == 0
    assert json.loads((out / "report.json").read_text())["compile_seconds"] is not None
    assert first["snncc_version"]
    assert sorted(p.name for p in project.iterdir()) == ["models", "out"]  # no leftovers
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~_umask()  # not 0700 (#17.9)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_compile_creates_missing_parents_and_removes_them_on_failure(project, capsys):
    m = project / "models" / "small.onnx"
    assert main(["compile", str(m), "--target", "numpy", "-o", str(project / "a" / "b" / "o"),
                 "-p", "canonicalize,no-such-pass"]) == 2
    assert not (project / "a").exists()
    assert main(["compile", str(m), "--target", "numpy", "-o",
                 str(project / "a" / "b" / "o")]) == 0
    assert (project / "a" / "b" / "o" / "model.snnir").is_file()


def test_opt_never_overwrites_its_input_or_weights(tmp_path, capsys):
    base = tmp_path / "base.snnir"
    save_ir(tiny_unet(), base)
    before = tree(tmp_path)
    for out, code, message in ((base, 1, "that is an input of this command"),
                               (tmp_path / "base.npz", 2, "expected a file ending in .snnir"),
                               (tmp_path, 2, "expected a file ending in .snnir"),
                               (tmp_path / "new" / "o.snnir", 1, "does not exist")):
        assert main(["opt", str(base), "-p", "canonicalize", "-o", str(out)]) == code
        assert message in capsys.readouterr().err
        assert tree(tmp_path) == before
    other = tmp_path / "other.snnir"
    save_ir(tiny_unet(), other, "base.npz")  # names base.npz as its weights
    before = tree(tmp_path)
    assert main(["opt", str(other), "-p", "canonicalize", "-o", str(base)]) == 1
    assert "that is an input of this command" in capsys.readouterr().err
    assert tree(tmp_path) == before
    load_ir(base)


def test_opt_stdout_is_reloadable_and_no_pipeline_prints(tmp_path, capsys):
    """#17 point 3: `snncc opt m.snnir -p canonicalize > out.snnir` reloads; no -p (or
    -p '') parses, verifies and prints, like mlir-opt."""
    base = tmp_path / "m.snnir"
    save_ir(tiny_unet(), base)
    for argv in (["-p", "canonicalize"], [], ["-p", ""]):
        assert main(["opt", str(base), *argv]) == 0
        text = capsys.readouterr().out
        assert 'weights "m.npz"' in text
        (tmp_path / "out.snnir").write_text(text)
        load_ir(tmp_path / "out.snnir").verify()
    assert main(["opt", str(base), "-p", "fold-batchnorm,fuse-linear"]) == 0
    captured = capsys.readouterr()
    assert "weights" not in captured.out.splitlines()[1]


def test_run_checks_every_output_before_running(project, capsys):
    m = project / "models" / "small.onnx"
    net = project / "net"
    assert main(["compile", str(m), "--target", "numpy", "-o", str(net)]) == 0
    x = project / "x.npy"
    np.save(x, np.zeros((1, 1, 8, 8), np.float32))
    (project / "out").mkdir()
    before = tree(project)
    cases = [
        (["-o", str(project / "out" / "r.npy"), "--report", str(project / "nope" / "r.json")],
         1, "does not exist"),
        (["-o", str(project / "nope" / "x.png")], 1, "does not exist"),
        (["-o", str(project / "x.txt")], 2, "expected a file ending in"),
        (["-o", str(project / "out")], 2, "expected a file ending in"),
        (["-o", str(project / "outdir.npy")], None, ""),
        (["-o", str(x)], 1, "that is an input of this command"),
        (["-o", str(net / "weights.npz")], 2, "expected a file ending in"),
        (["--report", str(net / "report.json")], 1, "that is an input of this command"),
        (["--timesteps", "0"], 1, "--timesteps must be ≥ 1"),
    ]
    (project / "outdir.npy").mkdir()
    before = tree(project)
    for extra, code, message in cases:
        got = main(["run", str(net), "--input", str(x), *extra])
        err = capsys.readouterr().err
        assert got == (code or 1) and message in err and "internal error" not in err, extra
        assert tree(project) == before, extra


def test_read_only_outputs_are_user_errors(project, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    m = project / "models" / "small.onnx"
    ro = project / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    assert main(["compile", str(m), "--target", "numpy", "-o", str(ro / "o")]) == 1
    assert "cannot write into" in capsys.readouterr().err


def test_write_failures_are_user_errors_and_leave_nothing(project, monkeypatch, capsys):
    """A read-only file system (EROFS) at write time: exit 1 naming the file."""
    import errno
    import tempfile

    m = project / "models" / "small.onnx"
    net = project / "net"
    assert main(["compile", str(m), "--target", "numpy", "-o", str(net)]) == 0
    x = project / "x.npy"
    np.save(x, np.zeros((1, 1, 8, 8), np.float32))
    before = tree(project)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["run", str(net), "--input", str(x), "-o", str(project / "o.npy")]) == 1
    assert f"{project / 'o.npy'}: cannot write: Read-only file system" in (
        capsys.readouterr().err)
    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["compile", str(m), "--target", "numpy", "-o", str(project / "n2")]) == 1
    assert "cannot create it: Read-only file system" in capsys.readouterr().err
    assert tree(project) == before


def test_dump_dir_that_is_a_file(tmp_path, capsys):
    base = tmp_path / "m.snnir"
    save_ir(tiny_unet(), base)
    (tmp_path / "f").write_text("x")
    assert main(["opt", str(base), "-p", "canonicalize", "--dump-dir",
                 str(tmp_path / "f")]) == 1
    assert "is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    (None, "no report.json"),
    ("{not json", "not a readable JSON report"),
    ("[1, 2]", "expected a JSON object, found list"),
    ('{"target": 3}', "'target' should be a str"),
])
def test_incomplete_or_malformed_compiled_dirs_are_refused(project, capsys, content,
                                                           message):
    net = project / "net"
    assert main(["compile", str(project / "models" / "small.onnx"), "--target", "numpy",
                 "-o", str(net)]) == 0
    report = net / "report.json"
    report.unlink()
    if content is not None:
        report.write_text(content)
    x = project / "x.npy"
    np.save(x, np.zeros((1, 1, 8, 8), np.float32))
    for argv in (["inspect", str(net)], ["run", str(net), "--input", str(x)],
                 ["eval", str(net), "--data", str(project)]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and "internal error" not in err


def test_inspect_into_a_closed_pipe_is_quiet(project):
    """#17 point 9: `snncc inspect X | head -1` ends without an error."""
    m = project / "models" / "small.onnx"
    proc = subprocess.run(f"set -o pipefail; {SNNCC} inspect {m} | true", shell=True,
                          capture_output=True, text=True, executable="/bin/bash")
    assert proc.returncode == 0 and proc.stderr == ""


def _compile_proc(m: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([SNNCC, "compile", str(m), "--target", "numpy", "-o", str(out),
                             "--force", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_concurrent_force_compiles_into_one_directory(project):
    m = small_onnx(project / "models" / "big.onnx", size=128)
    out = project / "out"
    procs = [_compile_proc(m, out) for _ in range(4)]
    results = [(p.wait(), p.stderr.read().decode()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert main(["inspect", str(out)]) == 0
    assert sorted(p.name for p in project.iterdir()) == ["models", "out"]


def _kill_while_writing(proc: subprocess.Popen[bytes], parent: Path, signum: int) -> None:
    """Send `signum` as soon as the compile's temporary output directory appears."""
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(".out.") for p in parent.iterdir()):
            proc.send_signal(signum)
            return
        time.sleep(0.0005)


@pytest.mark.parametrize("signum", [15, 9])
def test_killed_compile_leaves_the_old_output_or_nothing(project, signum, capsys):
    m = small_onnx(project / "models" / "big.onnx", size=256)
    out = project / "out"
    assert main(["compile", str(m), "--target", "numpy", "-o", str(out)]) == 0
    old = tree(out)
    killed = 0
    for _ in range(3):
        proc = _compile_proc(m, out)
        _kill_while_writing(proc, project, signum)
        code = proc.wait()
        assert code in (0, -signum, 128 + signum), (code, proc.stderr.read())
        killed += code != 0
        assert main(["inspect", str(out)]) == 0
        assert tree(out).keys() == old.keys()
        leftovers = [p.name for p in project.iterdir() if p.name not in ("models", "out")]
        if signum == 15:
            assert leftovers == []  # SIGTERM cleans up like Ctrl-C
        for name in leftovers:  # SIGKILL cannot clean up: what it leaves is refused
            assert main(["inspect", str(project / name)]) == 1
    assert killed
    assert main(["compile", str(m), "--target", "numpy", "-o", str(out), "--force"]) == 0
    assert sorted(p.name for p in project.iterdir()) == ["models", "out"]  # stale ones gone
