"""Findings live in the IR: a compile staged through `snncc opt` equals a one-shot compile
(same placement, same expected traffic and energy), and a model with dynamic input
dimensions compiles for Loihi with the shape `--input-shape` binds."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from snncc.cli.main import main
from snncc.evaluate.estimate import compile_estimate
from snncc.ir import load_ir, print_graph
from snncc.pipeline import PassContext, PassManager, parse_pipeline

torch = pytest.importorskip("torch")
from models.unets import UNetSpec, export_unet  # noqa: E402

FRONT = ("canonicalize,fold-batchnorm,fuse-linear,convert-activations{reset=zero},"
         "scale-rates,quantize-weights")
BACK = "tile-cores,partition-chips{cores-per-chip=2}"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("staged")
    onnx_path = export_unet(UNetSpec("staged", opset=13, up="convT2", width=4), d / "u.onnx")
    np.save(d / "cal.npy", np.random.default_rng(3).random((8, 1, 16, 16), np.float32))
    return onnx_path, d / "cal.npy"


def test_staged_compile_equals_one_shot(model, tmp_path):
    onnx_path, cal = model
    common = ["--calibration", str(cal), "--no-progress"]
    one = tmp_path / "one"
    assert main(["compile", str(onnx_path), "--target", "loihi", "-p", f"{FRONT},{BACK}",
                 "-o", str(one), *common]) == 0
    first = tmp_path / "first"
    assert main(["compile", str(onnx_path), "--target", "numpy", "-p", FRONT, "-o", str(first),
                 *common]) == 0
    staged = tmp_path / "staged.snnir"
    assert main(["opt", str(first / "model.snnir"), "-p", BACK, "-o", str(staged)]) == 0

    one_shot, two_step = load_ir(one / "model.snnir"), load_ir(staged)
    assert print_graph(two_step, weights_file="w.npz") == print_graph(one_shot,
                                                                       weights_file="w.npz")
    chips = [op.attrs.chips for op in two_step.ops if getattr(op.attrs, "chips", ())]
    assert len({c for per in chips for c in per}) > 1, "the test should span several chips"

    report = json.loads((one / "report.json").read_text())
    ctx = PassContext(progress=False)
    PassManager(parse_pipeline("partition-chips{cores-per-chip=2}")).run(two_step, ctx)
    placed = report["pass_reports"]["partition-chips"]
    assert ctx.report["partition-chips"] == placed
    assert placed["traffic"].startswith("rate-weighted")  # rates came from the IR, not a report
    estimate = compile_estimate(two_step, report["energy_estimate"]["ann"]["macs"], [1e-3])
    assert estimate["loihi"] == pytest.approx(report["energy_estimate"]["loihi"])


def test_dynamic_input_compiles_with_input_shape(model, tmp_path):
    onnx_path, cal = model
    proto = onnx.load(onnx_path)
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, ("n", None, "h", "w"), strict=True):
            if name is not None:
                dim.dim_param = name
    dynamic = tmp_path / "dyn.onnx"
    onnx.save(proto, dynamic)
    out = tmp_path / "dyn.snncc"
    assert main(["compile", str(dynamic), "--target", "loihi", "--input-shape",
                 "image=1,1,16,16", "--calibration", str(cal), "-o", str(out),
                 "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["energy_estimate"]["ann"]["macs"] > 0
    assert load_ir(out / "model.snnir").inputs[0].type.shape == (1, 1, 16, 16)
