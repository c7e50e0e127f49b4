"""Issue #11 items 5, 6 and 9: external data stays beside the model, bad data is exit 1,
a declared input too large for the machine is refused before anything is allocated."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from models.onnx_build import model, save
from onnx import TensorProto, helper, numpy_helper

from snncc.cli.main import main

W = np.arange(4, dtype=np.float32).reshape(1, 4, 1, 1)


def _external(t: TensorProto, location: str, offset: int = 0, length: int | None = None
              ) -> None:
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset),
               "length": str(W.nbytes if length is None else length)}
    for k, v in entries.items():
        t.external_data.add(key=k, value=v)


def _model(tmp_path: Path, location: str, constant: bool, **kw: int) -> Path:
    """conv(x, w) with w stored externally at `location` (an initializer or a Constant)."""
    (tmp_path / "m").mkdir(exist_ok=True)
    tensor = numpy_helper.from_array(W, "w")
    _external(tensor, location, **kw)
    conv = helper.make_node("Conv", ["x", "w"], ["y"])
    if constant:
        nodes = [helper.make_node("Constant", [], ["w"], value=tensor), conv]
        m = model(nodes, {"x": [1, 4, 4, 4]}, {"y": [1, 1, 4, 4]})
    else:
        m = model([conv], {"x": [1, 4, 4, 4]}, {"y": [1, 1, 4, 4]})
        m.graph.initializer.append(tensor)
    path = tmp_path / "m" / "model.onnx"
    path.write_bytes(m.SerializeToString())
    return path


@pytest.mark.parametrize("constant", [False, True])
def test_external_data_is_read_beside_the_model_not_the_working_directory(
        tmp_path, monkeypatch, capsys, constant):
    path = _model(tmp_path, "w.bin", constant)
    (path.parent / "w.bin").write_bytes(W.tobytes())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "w.bin").write_bytes((W + 100).tobytes())
    monkeypatch.chdir(cwd)
    assert main(["inspect", os.path.relpath(path, cwd), "--json"]) == 0
    from snncc.frontend.onnx import import_onnx

    graph = import_onnx(Path(os.path.relpath(path, cwd)))
    weights = [graph.weights[n] for n in graph.weights]
    assert any(np.array_equal(w.ravel(), W.ravel()) for w in weights)
    assert not any((w >= 100).any() for w in weights)


@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize(("location", "message"), [
    ("../secret.bin", "outside the model's directory"),
    ("/etc/hostname", "outside the model's directory"),
    ("link.bin", "outside the model's directory"),
    ("missing.bin", "cannot read its external data 'missing.bin'"),
    ("short.bin", "holds 8 bytes at offset 0, the tensor needs 16"),
])
def test_bad_external_data_is_a_user_error_naming_tensor_and_file(
        tmp_path, capsys, constant, location, message):
    path = _model(tmp_path, location, constant)
    (tmp_path / "secret.bin").write_bytes(W.tobytes())
    (path.parent / "link.bin").symlink_to(tmp_path / "secret.bin")
    (path.parent / "short.bin").write_bytes(W.tobytes()[:8])
    assert main(["compile", str(path), "--target", "numpy", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "internal error" not in err
    assert ("Constant node" if constant else "initializer 'w'") in err
    assert not (tmp_path / "out").exists()


def test_external_data_past_the_end_of_file(tmp_path, capsys):
    path = _model(tmp_path, "w.bin", False, offset=8)
    (path.parent / "w.bin").write_bytes(W.tobytes())
    assert main(["inspect", str(path)]) == 1
    assert "holds 8 bytes at offset 8, the tensor needs 16" in capsys.readouterr().err


def test_huge_declared_input_is_refused_before_allocating(tmp_path, capsys):
    w = np.ones((1, 1, 1, 1), np.float32)
    path = save(model([helper.make_node("Conv", ["x", "w"], ["c"]),
                       helper.make_node("Relu", ["c"], ["y"])],
                      {"x": [1, 1, 100000, 100000]}, {"y": [1, 1, 100000, 100000]}, {"w": w}),
                tmp_path / "big.onnx")
    for argv in (["inspect", str(path)],
                 ["compile", str(path), "--target", "loihi", "-o", str(tmp_path / "o")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "input 'x' of shape 1x1x100000x100000 takes 37.3 GiB per image" in err
    assert onnx.load(str(path)).graph.input[0].name == "x"  # the model itself is fine
