"""Issue #11 item 8: conv → relu → Flatten/Reshape → dense compiles for both targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from snncc.cli.main import main

torch = pytest.importorskip("torch")


class Classifier(torch.nn.Module):
    """A small CNN classifier as PyTorch users write it: conv, relu, flatten, linear."""

    def __init__(self, view: bool) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 10, bias=not view)
        self.view = view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = h.reshape(h.shape[0], -1) if self.view else torch.flatten(h, 1)
        return self.fc(h)


def _export(tmp_path: Path, view: bool) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(Classifier(view).eval(), torch.zeros(1, 1, 8, 8), str(path),
                      opset_version=13, dynamo=False)
    model = onnx.load(str(path))
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("view", "ops"), [(False, {"Flatten", "Gemm"}),
                                           (True, {"Reshape", "MatMul"})])
def test_flatten_into_dense_compiles_and_runs_on_both_targets(tmp_path, capsys, view, ops):
    model = _export(tmp_path, view)
    assert ops <= {n.op_type for n in onnx.load(str(model)).graph.node}
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", rng.random((8, 1, 8, 8), dtype=np.float32))
    np.save(tmp_path / "x.npy", rng.random((1, 1, 8, 8), dtype=np.float32))
    assert main(["compile", str(model), "--target", "numpy", "-o", str(tmp_path / "ann"),
                 "--no-progress"]) == 0
    assert main(["run", str(tmp_path / "ann"), "--input", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "ann.npy")]) == 0
    ann = np.load(tmp_path / "ann.npy")
    spiking = "canonicalize,fold-batchnorm,fuse-linear,convert-activations,scale-rates"
    for target, pipeline in (("numpy", ["-p", spiking]), ("loihi", [])):
        out = tmp_path / target
        assert main(["compile", str(model), "--target", target, *pipeline, "-o", str(out),
                     "--calibration", str(tmp_path / "cal.npy"), "--no-progress"]) == 0, (
            capsys.readouterr().err)
        for mode in ("ideal", "loihi"):
            assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--target",
                         "numpy", "--mode", mode, "-o", str(tmp_path / "snn.npy"),
                         "--timesteps", "200", "--no-progress"]) == 0
            snn = np.load(tmp_path / "snn.npy")
            assert np.abs(snn - ann).max() < 0.2 * np.ptp(ann), (target, mode, snn, ann)
