"""A torch U-Net with bilinear upsampling (nn.Upsample, align_corners=False) through the
whole compiler: fuse-linear keeps it exact, the spiking modes run it on both simulators
(bit-exact to each other in loihi mode), and the Loihi passes handle its syn.sparse."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
from models.onnx_build import onnxruntime_run
from models.unets import UNetSpec, export_unet

from snncc.frontend.onnx import import_onnx
from snncc.ir import Graph
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import ConvTranspose2d, SparseMap
from snncc.pipeline import PassContext, PassManager, parse_pipeline
from snncc.sim import synapses
from snncc.sim.spiking import run_spiking

SPEC = UNetSpec("bilinear", opset=17, up="bilinear", head="sigmoid", size=12)
FRONT = "canonicalize,fold-batchnorm,fuse-linear"


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_unet(SPEC, tmp_path_factory.mktemp("bilinear") / "bilinear.onnx")


def images(n: int) -> np.ndarray:
    return np.random.default_rng(3).random((n, 1, SPEC.size, SPEC.size), dtype=np.float32)


def run(graph: Graph, pipeline: str, calibration: np.ndarray | None = None) -> PassContext:
    ctx = PassContext(calibration=calibration, progress=False)
    PassManager(parse_pipeline(pipeline)).run(graph, ctx)
    return ctx


def test_fuse_linear_composes_the_border_and_stays_exact(onnx_path):
    graph = import_onnx(onnx_path)
    x = images(4)
    want = np.concatenate([onnxruntime_run(onnx_path, {"image": x[i:i + 1]})[0]
                           for i in range(len(x))])
    (before,) = run_analog(graph, [x])
    run(graph, FRONT)
    (after,) = run_analog(graph, [x])
    assert np.abs(before - want).max() < 1e-6
    assert np.abs(after - before).max() < 1e-6
    sparse = list(graph.ops_of(SparseMap))
    # one sparse projection per upsampling, into the decoder's first conv population
    assert len(sparse) == 2
    assert all(op.inputs[0].owner.name == "act.relu" for op in sparse)
    assert {op.result.type.shape[1:] for op in sparse} == {(8, 6, 6), (4, 12, 12)}
    assert all(graph.weights[op.attrs.weight].shape[2:] == (6, 6)
               for op in graph.ops_of(ConvTranspose2d))


@pytest.fixture(scope="module")
def spiking(onnx_path) -> Graph:
    graph = import_onnx(onnx_path)
    run(graph, FRONT + ",convert-activations{reset=zero},scale-rates,quantize-weights",
        calibration=images(8))
    return graph


@pytest.mark.parametrize("path", [None, "dense", "events"])
def test_loihi_mode_is_bit_exact_between_the_engines(spiking, path, monkeypatch):
    if path is not None:
        monkeypatch.setattr(synapses, "EVENT_DENSITY", 2.0 if path == "events" else 0.0)
    x = images(3)
    ref = run_spiking(spiking, [x], "loihi", timesteps=60, engine="reference")
    fast = run_spiking(spiking, [x], "loihi", timesteps=60)
    assert fast.stats["layers"] == ref.stats["layers"]
    np.testing.assert_array_equal(fast.outputs[0], ref.outputs[0])
    assert ref.stats["spikes_per_image"] > 0


def test_ideal_mode_approaches_the_ann(onnx_path):
    graph = import_onnx(onnx_path)
    x = images(4)
    (ann,) = run_analog(graph, [x])
    run(graph, FRONT + ",convert-activations,scale-rates", calibration=images(8))
    errors = [np.abs(run_spiking(graph, [x], "ideal", timesteps=t).outputs[0] - ann).mean()
              for t in (20, 200)]
    assert errors[1] < errors[0]
    assert errors[1] < 0.05


def test_tile_cores_keeps_a_sparse_target_in_one_block(spiking):
    graph = copy.deepcopy(spiking)
    ctx = run(graph, "tile-cores")
    for op in graph.ops_of(SparseMap):
        (pop,) = [u for u in graph.ops if op.result in u.inputs]
        assert tuple(pop.attrs.block_shape) == pop.result.type.shape[1:]
    assert ctx.report["tile-cores"]["cores"] >= 1


def test_the_loihi_geometry_counts_the_sparse_projection_as_nengo_loihi_does(spiking):
    from snncc.hw.loihi.geometry import lower
    from snncc.hw.loihi.limits import CoreUse
    from snncc.ir.interp import kernels

    graph = copy.deepcopy(spiking)
    run(graph, "tile-cores")
    lowered = lower(graph)
    found = 0
    for layer in lowered.chip_layers():
        for p in (p for p in layer.projections if p.kind == "sparse"):
            a = p.op.attrs
            spikes = (np.random.default_rng(0).random((2, *p.in_shape)) < 0.3).astype(np.float32)
            want = kernels.sparse_map(spikes, graph.weights[a.weight], graph.weights[a.indices],
                                      a.out_shape)
            np.testing.assert_allclose(p.apply(spikes), want, atol=1e-4)
            # one discrete axon per presynaptic neuron the projection reads
            axons, bits = CoreUse(lowered).synapse(p, tuple((0, n) for n in layer.shape), True)
            assert axons == len(np.unique(graph.weights[a.indices][:, 1])) < np.prod(p.in_shape)
            assert bits > 0
            found += 1
    assert found == 2


def test_a_sparse_target_larger_than_a_core_is_refused_with_the_reason(tmp_path):
    from snncc.diagnostics import SnnccError

    spec = UNetSpec("bilinear-wide", opset=17, up="bilinear", size=24, width=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_unet(spec, tmp_path / "wide.onnx")
    graph = import_onnx(path)
    x = np.random.default_rng(0).random((4, 1, 24, 24), dtype=np.float32)
    with pytest.raises(SnnccError, match=r"nengo-loihi 1\.1 cannot split a block fed by sparse"):
        run(graph, FRONT + ",convert-activations{reset=zero},scale-rates,quantize-weights,"
            "tile-cores", calibration=x)


def test_the_nengo_loihi_emulator_runs_it_and_agrees_with_numpy_loihi_mode(spiking):
    from snncc.targets.loihi import LoihiTarget
    from snncc.targets.numpy import NumpyTarget

    graph = copy.deepcopy(spiking)
    run(graph, "tile-cores")
    x = images(1)
    emu = LoihiTarget().run(graph, [x], "emulator", timesteps=60)
    ref = NumpyTarget().run(graph, [x], "loihi", timesteps=60)
    assert ((emu.outputs[0] > 0.5) == (ref.outputs[0] > 0.5)).mean() >= 0.97
    for name, layer in ref.stats["layers"].items():
        assert emu.stats["spikes_per_layer"][name] == pytest.approx(
            layer["spikes_per_image"], rel=0.05, abs=5), name
