"""Issue #11 items 9, 11 and 12: user mistakes get exit 1 or 2 with a message naming the
file or option; nothing silently wrong (NaN, 16-bit images, spoofed IR) is accepted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from irbuild import tiny_unet
from models.onnx_build import model, save
from onnx import helper
from PIL import Image

from snncc.cli.main import main
from snncc.ir import save_ir

SNNCC = str(Path(sys.executable).with_name("snncc"))
SPIKING = "canonicalize,fold-batchnorm,fuse-linear,convert-activations,scale-rates"


def _seg_model(path: Path) -> Path:
    """conv → relu → conv → sigmoid on 8×8: a one-channel segmenter."""
    rng = np.random.default_rng(0)
    weights = {"w1": rng.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.5,
               "w2": rng.standard_normal((1, 4, 1, 1)).astype(np.float32) * 0.5}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Relu", ["c"], ["r"], name="r1"),
             helper.make_node("Conv", ["r", "w2"], ["z"], name="c2"),
             helper.make_node("Sigmoid", ["z"], ["y"], name="s")]
    return save(model(nodes, {"x": [1, 1, 8, 8]}, {"y": [1, 1, 8, 8]}, weights), path)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    _seg_model(root / "seg.onnx")
    np.save(root / "cal.npy", np.random.default_rng(1).random((4, 1, 8, 8), np.float32))
    assert main(["compile", str(root / "seg.onnx"), "--target", "numpy", "-p", SPIKING,
                 "--calibration", str(root / "cal.npy"), "-o", str(root / "snn"),
                 "--no-progress"]) == 0
    assert main(["compile", str(root / "seg.onnx"), "--target", "numpy",
                 "-o", str(root / "ann")]) == 0
    for sub in ("image", "label"):
        (root / "data" / sub).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "data" / sub / "0.png")
    return root


def _stats(root: Path, layer: object) -> Path:
    path = root / "stats.json"
    path.write_text(json.dumps({"format": "snncc-rate-stats", "version": 1, "dt": 0.001,
                                "percentile": 99.9, "rate_scale_hz": 100.0,
                                "layers": {"r1": layer}}))
    return path


def _layer(value: object) -> dict[str, object]:
    return {"percentile_activation": value, "max_activation": 1.0, "mean_activation": 0.5,
            "samples": 10}


@pytest.mark.parametrize(("content", "message"), [
    ([1, 2], "expected a JSON object, found list"),
    (_layer(float("nan")), "percentile_activation must be a finite activation"),
    (_layer(-1.0), "percentile_activation must be a finite activation"),
    (_layer(1e300), "percentile_activation must be a finite activation"),
])
def test_bad_stats_files(root, capsys, content, message):
    path = _stats(root, content) if not isinstance(content, list) else root / "stats.json"
    if isinstance(content, list):
        path.write_text(json.dumps(content))
    assert main(["compile", str(root / "seg.onnx"), "--target", "numpy", "-p", SPIKING,
                 "--stats", str(path), "-o", str(root / "x")]) == 1
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "internal error" not in err


@pytest.mark.parametrize(("array", "message"), [
    (np.array([["a", "b"]]), "holds <U1 values, not numbers"),
    (np.full((2, 1, 8, 8), np.nan, np.float32), "128 of 128 values are NaN or infinite"),
    (np.full((2, 1, 8, 8), np.inf, np.float32), "NaN or infinite"),
])
def test_bad_calibration_and_run_inputs(root, capsys, array, message):
    path = root / "bad.npy"
    np.save(path, array)
    assert main(["compile", str(root / "seg.onnx"), "--target", "numpy", "-p", SPIKING,
                 "--calibration", str(path), "-o", str(root / "x")]) == 1
    assert message in capsys.readouterr().err
    assert main(["run", str(root / "ann"), "--input", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_16_bit_png_is_read_by_65535(root, tmp_path):
    gray = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    np.save(tmp_path / "g.npy", (gray / 65535.0).astype(np.float32))
    assert main(["run", str(root / "ann"), "--input", str(tmp_path / "g16.png"), "-o",
                 str(tmp_path / "a.npy")]) == 0
    assert main(["run", str(root / "ann"), "--input", str(tmp_path / "g.npy"), "-o",
                 str(tmp_path / "b.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"),
                               atol=1e-6)


def test_nan_energy_constant(root, tmp_path, capsys):
    path = tmp_path / "e.json"
    path.write_text('{"synop_pj": NaN}')
    assert main(["eval", str(root / "snn"), "--data", str(root / "data"),
                 "--energy-constants", str(path)]) == 1
    assert "finite non-negative numbers: ['synop_pj']" in capsys.readouterr().err


def _ir_with(tmp_path: Path, edit) -> Path:
    path = tmp_path / "m.snnir"
    save_ir(tiny_unet(), path)
    path.write_text(edit(path.read_text()))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("{dt = 0.001", "{dt = nan"), "dt must be a positive number"),
    (lambda t: t.replace("timesteps = 100", "timesteps = -5"), "timesteps must be ≥ 1"),
    (lambda t: t.replace('properties = []', 'properties = ["magic"]'),
     "unknown property 'magic'"),
    (lambda t: t.replace('properties = []', 'properties = ["spiking"]'),
     "property 'spiking' is claimed but does not hold"),
    (lambda t: t.replace('properties = []', 'properties = ["tiled"]'), None),
])
def test_ir_graph_attributes_and_properties_are_validated(tmp_path, capsys, edit, message):
    path = _ir_with(tmp_path, edit)
    code = main(["inspect", str(path)])
    err = capsys.readouterr().err
    if message is None:  # no population lacks a block shape: 'tiled' holds vacuously
        assert code == 0
        return
    assert code == 1 and message in err and f"{path}:3:" in err


@pytest.mark.parametrize(("array", "message"), [
    (np.array(["a", "b"]), "holds <U1 values; snncc weights are floating point"),
    (np.ones(3, np.int64), "holds int64 values"),
    (np.array([np.nan, 1.0], np.float32), "holds 1 NaN or infinite value(s)"),
])
def test_ir_weight_arrays_are_validated(tmp_path, capsys, array, message):
    from snncc.ir.weights import WeightStore

    path = _ir_with(tmp_path, lambda t: t)
    store = dict(np.load(path.with_suffix(".npz")))
    store["c1.b"] = array
    np.savez(path.with_suffix(".npz"), **store)
    sha = WeightStore(store).sha256()
    text = path.read_text()
    old = text.split('sha256 "')[1].split('"')[0]
    path.write_text(text.replace(old, sha))
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and f"{path}:2:" in err


def test_run_below_the_readout_delay_is_refused_on_both_targets(tmp_path, capsys):
    m = _seg_model(tmp_path / "seg.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(1).random((4, 1, 8, 8), np.float32))
    np.save(tmp_path / "x.npy", np.random.default_rng(2).random((1, 1, 8, 8), np.float32))
    assert main(["compile", str(m), "--target", "loihi", "--calibration",
                 str(tmp_path / "cal.npy"), "-o", str(tmp_path / "l"), "--no-progress"]) == 0
    for target in ("loihi", "numpy"):
        assert main(["run", str(tmp_path / "l"), "--input", str(tmp_path / "x.npy"),
                     "--target", target, "--timesteps", "2", "--no-progress"]) == 1
        assert "does not reach past the readout delay" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["compile", "{m}", "--target", "numpy{batch-size=-4}", "-o", "{tmp}/o"], 1,
     "batch-size must be ≥ 1, got -4"),
    (["compile", "{m}", "--target", "numpy", "-p", "canonicalize,scale-rates{percentile=0}",
      "-o", "{tmp}/o"], 1, "percentile"),
    (["eval", "{snn}", "--data", "{data}", "--crops", "-1"], 1, "--crops must be ≥ 0"),
    (["eval", "{snn}", "--data", "{data}", "--sweep", "0,5"], 1, "must be ≥ 1"),
    (["eval", "{snn}", "--data", "{data}", "--sweep", "x"], 2, "expected timestep counts"),
    (["eval", "{snn}", "--data", "{data}", "--indices", "a-b"], 2, "expected numbers"),
    (["compile", "{m}", "--target", "numpy{batch-size=x}", "-o", "{tmp}/o"], 2, "batch-size"),
    (["eval", "{snn}", "--data", "{data}", "--batch-size", "0"], 1, "--batch-size must be ≥ 1"),
    (["eval", "{snn}", "--data", "{data}", "--indices", "0-99999999999"], 1,
     "selects more than 100,000 images"),
    (["eval", "{snn}", "--data", "{data}", "--timesteps", "100000000000"], 1,
     "limits 3600 s"),
    (["run", "{ann}", "--input", "{cal}", "--target", "numpy{max-seconds=1e-9}"], 1,
     "limits 1e-09 s"),
    (["run", "{snn}", "--input", "{cal}", "--frames", "{tmp}/f.npy", "--frame-count", "0"], 1,
     "--frame-count must be ≥ 1"),
])
def test_option_values_out_of_range(root, tmp_path, capsys, argv, code, message):
    """One rule: a well-formed value out of its range is exit 1, for flags, pass options
    and target options alike (a malformed one is exit 2)."""
    places = {"{m}": root / "seg.onnx", "{tmp}": tmp_path, "{snn}": root / "snn",
              "{ann}": root / "ann", "{data}": root / "data", "{cal}": root / "cal.npy"}
    for key, value in places.items():
        argv = [a.replace(key, str(value)) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err


def test_compile_help_shows_a_target_spec_that_works():
    proc = subprocess.run([SNNCC, "compile", "--help"], capture_output=True, text=True)
    assert "hardware=true" not in proc.stdout and "loihi{max-seconds=600}" in proc.stdout


def test_every_refusal_is_listed_also_below_a_refused_node(tmp_path, capsys):
    w = np.ones((2, 1, 3, 3), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Resize", ["p", "", "scales"], ["u"], mode="cubic"),
             helper.make_node("Erf", ["u"], ["y"])]
    path = save(model(nodes, {"x": [1, 1, 8, 8]}, {"y": [1, 2, 8, 8]},
                      {"w": w, "scales": np.array([1, 1, 2, 2], np.float32)}),
                tmp_path / "refuse.onnx")
    assert main(["compile", str(path), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "3 nodes cannot be compiled" in err
    assert all(op in err for op in ("MaxPool", "Resize mode 'cubic'", "Erf"))


def test_warnings_are_one_line(tmp_path):
    w = np.ones((2, 1, 3, 3), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    path = save(model(nodes, {"x": [1, 1, 8, 8]}, {"y": [1, 2, 4, 4]}, {"w": w}),
                tmp_path / "mp.onnx")
    proc = subprocess.run([SNNCC, "compile", str(path), "--target", "numpy", "--maxpool", "avg",
                           "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 0
    lines = [line for line in proc.stderr.splitlines() if "average pooling" in line]
    assert len(lines) == 1 and lines[0].startswith("snncc: warning: ")
    assert "warnings.warn" not in proc.stderr


def test_eval_and_run_take_a_directory_or_an_snnir(root, tmp_path, capsys):
    """#17 point 4: one way to name a network."""
    ir = root / "snn" / "model.snnir"
    args = ["--data", str(root / "data"), "--json", "--no-progress", "--no-record"]
    assert main(["eval", str(root / "snn"), *args]) == 0
    from_dir = json.loads(capsys.readouterr().out)
    assert main(["eval", str(ir), *args]) == 1
    assert "an IR file, without report.json) names no source model; pass --onnx" in (
        capsys.readouterr().err)
    assert main(["eval", str(ir), "--onnx", str(root / "seg.onnx"), *args]) == 0
    from_ir = json.loads(capsys.readouterr().out)
    assert from_ir["snn"] == from_dir["snn"] and from_ir["ann"] == from_dir["ann"]
    assert main(["run", str(ir), "--input", str(root / "cal.npy"), "-o",
                 str(tmp_path / "a.npy")]) == 0
    assert main(["inspect", str(ir)]) == 0
