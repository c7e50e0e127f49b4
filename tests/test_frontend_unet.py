"""U-Nets exported from PyTorch: the imported analog IR matches onnxruntime.

Each spec in `models.unets.SPECS` is exported once per session (torch.onnx, TorchScript
exporter, BatchNorm kept), imported, run on a few random images in chunks, and compared
with onnxruntime running the same file image by image.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from models.onnx_build import assert_close, onnxruntime_run
from models.unets import SPECS, UNetSpec, export_unet

from snncc.frontend.onnx import OnnxImportError, import_onnx
from snncc.ir import OnnxLoc
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import BatchNorm, Concat, ConvTranspose2d, Softmax, SparseMap, Transpose
from snncc.pipeline import PassContext, PassManager, parse_pipeline

IMAGES = 5


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("unets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notices about the exporter
        return {s.name: export_unet(s, out / f"{s.name}.onnx") for s in SPECS}


def shapes(spec: UNetSpec) -> dict[str, tuple[int, ...]] | None:
    size = (1, spec.in_channels, spec.size, spec.size)
    return {"image": size} if spec.dynamic_batch else None


def images(spec: UNetSpec) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.random((IMAGES, spec.in_channels, spec.size, spec.size), dtype=np.float32)


def reference(path: Path, x: np.ndarray) -> np.ndarray:
    return np.concatenate([onnxruntime_run(path, {"image": x[i:i + 1]})[0]
                           for i in range(len(x))])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_matches_onnxruntime(spec: UNetSpec, exported):
    path = exported[spec.name]
    graph = import_onnx(path, shapes(spec))
    x = images(spec)
    (got,) = run_analog(graph, [x], batch_size=2)
    assert_close(got, reference(path, x))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_structure_is_kept(spec: UNetSpec, exported):
    """BatchNorm survives export and import; every op points at an existing ONNX node."""
    path = exported[spec.name]
    onnx_nodes = {n.name: n.op_type for n in onnx.load(str(path)).graph.node}
    graph = import_onnx(path, shapes(spec))
    assert len(list(graph.ops_of(BatchNorm))) == list(onnx_nodes.values()).count(
        "BatchNormalization") == 10
    assert len(list(graph.ops_of(Concat))) == 2
    for op in graph.ops:
        assert isinstance(op.loc, OnnxLoc) and op.loc.file == path.name
        assert onnx_nodes[op.loc.node] == op.loc.op_type
    kernels = {graph.weights[op.attrs.weight].shape[2] for op in graph.ops_of(ConvTranspose2d)}
    assert kernels == {"convT2": {2}, "convT4": {4}, "bilinear": {4}}.get(spec.up, set())
    assert len(list(graph.ops_of(SparseMap))) == (2 if spec.up == "bilinear" else 0)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_folding_and_canonicalizing_keep_the_outputs(spec: UNetSpec, exported):
    path = exported[spec.name]
    graph = import_onnx(path, shapes(spec))
    x = images(spec)[:2]
    (before,) = run_analog(graph, [x])
    ctx = PassContext(progress=False)
    PassManager(parse_pipeline("canonicalize,fold-batchnorm")).run(graph, ctx)
    assert ctx.report["fold-batchnorm"] == {"folded": 10, "kept": []}
    assert not list(graph.ops_of(BatchNorm)) and not list(graph.ops_of(Transpose))
    if spec.head == "softmax":
        assert [op.attrs.axis for op in graph.ops_of(Softmax)] == [1]
    (after,) = run_analog(graph, [x])
    assert_close(after, before)


def test_dynamic_batch_needs_an_input_shape(exported):
    spec = next(s for s in SPECS if s.dynamic_batch)
    with pytest.raises(OnnxImportError, match=r"--input-shape image=1,3,24,24"):
        import_onnx(exported[spec.name])
