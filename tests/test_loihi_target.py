"""The Loihi target: nengo-loihi network, emulator runs, reports, hardware path, errors."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from loihi_graphs import single_layer, spiking_unet

from snncc.cli.main import main
from snncc.diagnostics import SnnccError
from snncc.hw.loihi.geometry import lower
from snncc.ir.ops import IF, LIF
from snncc.passes.tile_cores import TileCores
from snncc.pipeline import PassContext
from snncc.pipeline.registry import PASSES, TARGETS
from snncc.targets.loihi import LoihiTarget
from snncc.targets.loihi.allocator import placement_allocator
from snncc.targets.loihi.builder import build, import_nengo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "em_unet" / "unet.onnx"


@pytest.fixture(autouse=True, scope="module")
def registered():
    if "tile-cores" not in PASSES.names():
        PASSES.add(TileCores)
    if "loihi" not in TARGETS.names():
        TARGETS.add(LoihiTarget)
    yield


def tiled(graph, fraction: float = 1.0):
    ctx = PassContext()
    TileCores(max_fraction=fraction).run(graph, ctx)
    graph.with_properties("tiled")
    return graph, ctx


def test_emulator_agrees_with_numpy_loihi_mode():
    from snncc.targets.numpy import NumpyTarget

    g, _ = tiled(spiking_unet(16), 0.3)  # several cores per layer
    x = np.random.default_rng(3).random((1, 1, 16, 16)).astype(np.float32)
    emu = LoihiTarget().run(g, [x], "emulator", timesteps=30)
    ref = NumpyTarget().run(g, [x], "loihi", timesteps=30)
    agree = ((emu.outputs[0] > 0.5) == (ref.outputs[0] > 0.5)).mean()
    assert agree >= 0.99
    for name, layer in ref.stats["layers"].items():
        ours = emu.stats["spikes_per_layer"][name]
        assert ours == pytest.approx(layer["spikes_per_image"], rel=0.03), name


def test_filtered_populations_agree_with_numpy_loihi_mode():
    """Populations with a synaptic filter (tau_s, as convert-activations gives reset-to-zero
    neurons) run with nengo's Lowpass on the chip and the same integer decay in numpy."""
    from snncc.targets.numpy import NumpyTarget

    g, _ = tiled(spiking_unet(16), 0.3)
    for op in g.ops:
        if isinstance(op, IF):
            op.replace_attrs(tau_s=0.003)
    x = np.random.default_rng(4).random((1, 1, 16, 16)).astype(np.float32)
    emu = LoihiTarget().run(g, [x], "emulator", timesteps=40)
    ref = NumpyTarget().run(g, [x], "loihi", timesteps=40)
    assert ((emu.outputs[0] > 0.5) == (ref.outputs[0] > 0.5)).mean() >= 0.99
    for name, layer in ref.stats["layers"].items():
        assert emu.stats["spikes_per_layer"][name] == pytest.approx(
            layer["spikes_per_image"], rel=0.03), name


def test_membrane_floor_agrees_with_numpy_loihi_mode():
    """A negative membrane floor (v_min, Loihi's vmin; no synaptic filter) runs as
    nengo-loihi's vmin on the chip and as the same discretized floor in numpy."""
    from snncc.targets.numpy import NumpyTarget

    g, _ = tiled(spiking_unet(16), 0.3)
    for op in g.ops_of(IF):
        op.replace_attrs(v_min=-2.0 * op.attrs.v_threshold)
    x = np.random.default_rng(5).random((1, 1, 16, 16)).astype(np.float32)
    emu = LoihiTarget().run(g, [x], "emulator", timesteps=30)
    ref = NumpyTarget().run(g, [x], "loihi", timesteps=30)
    assert ((emu.outputs[0] > 0.5) == (ref.outputs[0] > 0.5)).mean() >= 0.99
    for name, layer in ref.stats["layers"].items():
        assert emu.stats["spikes_per_layer"][name] == pytest.approx(
            layer["spikes_per_image"], rel=0.03), name


def test_single_layer_rates_match_the_ir():
    """neuron.input (reset to zero): v += x each step, spike at v ≥ 1, back to 0. The chip
    layer: v += 0.5 · (input spike of the previous step) + 0.25, spike above 1 (Loihi)."""
    rates = np.linspace(0.05, 1.0, 16).reshape(4, 4)
    g, _ = tiled(single_layer(rates))
    steps = 30
    result = LoihiTarget().run(g, [rates[None, None]], "emulator", timesteps=steps)
    inp = chip = 0
    for x in rates.ravel():
        v = u = 0.0
        spiked = False
        for _ in range(steps):
            u += 0.5 * spiked + 0.25
            chip, u = (chip + 1, 0.0) if u > 1 else (chip, u)
            v += x
            spiked = v >= 1
            inp, v = (inp + 1, 0.0) if spiked else (inp, v)
    assert result.stats["spikes_per_layer"]["inp"] == inp
    assert abs(result.stats["spikes_per_layer"]["s"] - chip) <= rates.size
    assert result.outputs[0].shape == (1, 1, 4, 4)


def test_emit_reports_cores_use_and_build_facts(tmp_path):
    g, ctx = tiled(spiking_unet(16), 0.3)
    report = LoihiTarget().emit(g, tmp_path, ctx)
    assert report["cores"] == ctx.report["tile-cores"]["cores"]
    assert report["neurons"] == {"on_chip": 2560, "host": 256 + 256}
    assert report["chips"] is None and report["interchip_spikes_per_step"] is None
    assert "partition-chips" in report["interchip_note"]
    for use in report["utilisation"].values():
        assert 0 < use["mean"] <= use["max"] <= use["limit"]
    facts = json.loads((tmp_path / report["build_facts"]).read_text())
    layers = {x["name"]: x for x in facts["layers"]}
    assert layers["inp"]["on_chip"] is False and layers["enc"]["on_chip"] is True
    assert layers["enc"]["block_shape"] == list(g.ops[2].attrs.block_shape)
    kinds = {p["name"]: p["transform"] for p in facts["projections"]}
    assert kinds["up_c"] == "ConvolutionTranspose" and kinds["out_c"] == "host"


def test_placement_reaches_nengo_loihi_allocator():
    g, _ = tiled(spiking_unet(16), 0.05)
    lowered = lower(g)
    for layer in lowered.chip_layers():
        blocks = zip(layer.shape, layer.op.attrs.block_shape, strict=True)
        n = int(np.prod([-(-s // b) for s, b in blocks]))
        layer.op.replace_attrs(chips=tuple(i % 2 for i in range(n)))
    _, nengo_loihi = import_nengo()
    built = build(g, lowered, {"x": np.zeros((1, 16, 16))})
    model = nengo_loihi.builder.Model(dt=g.attrs.dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.build(built.network)
    chips = {built.ensembles[x.op.result.name]: x.op.attrs.chips for x in lowered.chip_layers()}
    board = placement_allocator(chips)(model, n_chips=2)
    per_chip = [len(chip.cores) for chip in board.chips]
    wanted = [sum(c == k for x in lowered.chip_layers() for c in x.op.attrs.chips)
              for k in (0, 1)]
    assert per_chip == wanted and sum(per_chip) == len(model.blocks)


def test_hardware_without_nxsdk_is_refused():
    g, _ = tiled(spiking_unet(16))
    with pytest.raises(SnnccError, match=r"needs Intel's NxSDK.*--mode emulator"):
        LoihiTarget().run(g, [np.zeros((1, 1, 16, 16))], "hardware", timesteps=5)


@pytest.mark.parametrize("attrs, message", [
    (dict(reset="subtract"), "resets the membrane to zero.*reset=zero"),
    (dict(refractory=2), "no refractory period"),
    (dict(v_initial=0.5), "starts every membrane on the chip at zero"),
])
def test_neuron_configurations_loihi_cannot_run(attrs, message):
    g, _ = tiled(spiking_unet(16))
    op = next(op for op in g.ops if isinstance(op, IF) and op.result.name == "down")
    op.replace_attrs(**attrs)
    problems = LoihiTarget().check(g)
    assert len(problems) == 1
    assert "ONNX node '/down/Relu'" in problems[0]
    assert re.search(message, problems[0])


def test_lif_too_slow_for_loihi_decay():
    from loihi_graphs import wide_layer

    g, _ = tiled(wide_layer(1, 2, 4, 3, lif=True))
    op = next(op for op in g.ops if isinstance(op, LIF))
    op.replace_attrs(tau=100.0)
    assert any("too long for Loihi's 12-bit voltage decay" in p for p in LoihiTarget().check(g))


def test_untiled_graph_is_refused():
    problems = LoihiTarget().check(spiking_unet(16))
    assert problems == ["the graph is not tiled into cores; add tile-cores to the pipeline"]


def test_too_big_run_is_refused_with_estimate():
    g, _ = tiled(spiking_unet(16))
    with pytest.raises(SnnccError, match=r"too big: estimated .* s .*MiB.*loihi mode .* would "
                       r"take about \d+ s: --target numpy --mode loihi.*max-seconds"):
        LoihiTarget(max_seconds=1e-6).run(g, [np.zeros((1, 1, 16, 16))], "emulator",
                                          timesteps=100)


def test_unknown_target_gets_did_you_mean(capsys, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    assert main(["compile", str(model), "--target", "loihii"]) == 2
    assert "unknown target 'loihii' (did you mean 'loihi'?)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not EXAMPLE.is_file(), reason="examples/em_unet/unet.onnx not trained yet")
def test_example_unet_compiles_builds_and_runs(tmp_path):
    out = tmp_path / "unet.snncc"
    assert main(["compile", str(EXAMPLE), "--target", "loihi", "-o", str(out),
                 "--stats", str(EXAMPLE.with_suffix(".stats.json")), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())["target_report"]
    for use in report["utilisation"].values():
        assert use["max"] <= use["limit"]
    from snncc.evaluate.compiled import load_compiled

    graph, _ = load_compiled(out)
    result = LoihiTarget().run(graph, [np.full((1, 1, 64, 64), 0.5, np.float32)], "emulator",
                               timesteps=3)
    assert result.outputs[0].shape == (1, 1, 64, 64)
