"""Direct spiking training (snncc.sim.differentiable): the trainer's forward pass is the
compiled network's `loihi` mode, spike for spike; its export compiles with no option; the
emulator agrees; bad declarations are refused with a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from models.unets import UNetSpec, export_unet

from snncc.cli.main import main
from snncc.data.trained import METADATA_KEY, TrainedLayer, TrainedSpiking, TrainedSpikingError
from snncc.evaluate.compiled import load_compiled
from snncc.ir.ops import IF, Readout, SpikeInput
from snncc.sim.arrival import read_out_from
from snncc.sim.differentiable import SURROGATE_BETA, SpikingNet, _IFScan
from snncc.sim.spiking import readout_delay, run_spiking
from snncc.training.hybrid import converted_graph, declaration
from snncc.training.spiking_export import export_spiking

STEPS = 16
# (network, where its readout starts: None = the slowest path's arrival, as converted;
# "first" = the first spikes' arrival through the shortest skip path, trained to use it)
SPECS = [
    (UNetSpec("convT-sigmoid", opset=13, size=16, up="convT2", head="sigmoid", width=3),
     "first"),
    (UNetSpec("bn-resize-strided-residual-softmax", opset=13, size=16, up="resize",
              down="strided", residual=True, head="softmax", classes=2, width=3), None),
]


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 16, 16)).astype(np.float32)


def _train(spec: UNetSpec, read_from: str | None, tmp: Path) -> tuple[SpikingNet, Path]:
    """Convert a PyTorch export, train a few steps towards a random target, export."""
    ann = export_unet(spec, tmp / f"{spec.name}.onnx")
    graph = converted_graph(ann, v_min=-1.0, calibration=_images(8, 0))
    if read_from is not None:
        slowest = readout_delay(graph)
        assert read_out_from(graph, read_from) < slowest  # the skip path is shorter
    net = SpikingNet(graph)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = _images(4, 1)
    target = torch.from_numpy((_images(4, 2) > 0.5).astype(np.float32))
    for _ in range(3):
        readouts, _ = net(x, STEPS)
        (out,) = readouts.values()
        loss = torch.nn.functional.mse_loss(out[:, :1], target)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all()
                   for p in net.parameters())
        opt.step()
    net.write_back()
    rates = net.mean_rates(x, STEPS)
    declared = declaration(graph, STEPS, rates, {"test": spec.name})
    return net, export_spiking(graph, declared, tmp / f"{spec.name}.snn.onnx")


@pytest.fixture(scope="module", params=SPECS, ids=lambda s: f"{s[0].name}-from-{s[1]}")
def trained(request, tmp_path_factory):
    spec, read_from = request.param
    tmp = tmp_path_factory.mktemp(spec.name)
    net, model = _train(spec, read_from, tmp)
    out = tmp / "out.snncc"
    assert main(["compile", str(model), "--target", "loihi", "-o", str(out),
                 "--no-progress"]) == 0
    graph, report = load_compiled(out)
    return net, model, graph, report


def test_compiled_trained_network_runs_as_the_trainer_did(trained):
    """Fidelity: the compiled graph's `loihi` mode spikes exactly as the trainer's forward
    pass (same quantized weights, thresholds, floors; one step per hop)."""
    net, _, graph, _ = trained
    x = _images(3, 7)
    with torch.no_grad():
        readouts, counts = net(x, STEPS)
    result = run_spiking(graph, [x], mode="loihi", timesteps=STEPS, engine="reference")
    assert result.stats["overflows"] == 0
    layers = result.stats["layers"]
    assert set(counts) == {op.result.name for op in graph.ops_of(IF)}
    for name, c in counts.items():
        assert int(c.sum()) == layers[name]["spikes"], name
    assert sum(int(c.sum()) for c in counts.values()) > 0
    fast = run_spiking(graph, [x], mode="loihi", timesteps=STEPS)
    np.testing.assert_allclose(fast.outputs[0], result.outputs[0], atol=1e-6)
    (readout,) = graph.ops_of(Readout)
    host = graph.outputs[0].owner
    logits = readouts[readout.result.name].numpy()
    expected = (1 / (1 + np.exp(-logits)) if host.name == "act.sigmoid"
                else np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(result.outputs[0], expected, atol=1e-5)


def test_compile_takes_the_trained_thresholds_instead_of_scaling(trained):
    _, model, graph, report = trained
    names = [p["name"] for p in report["passes"]]
    assert "trained-spiking" in names and "scale-rates" not in names
    declared = TrainedSpiking.from_json(json.loads(next(
        p.value for p in onnx.load(str(model)).metadata_props if p.key == METADATA_KEY)))
    assert graph.attrs.timesteps == STEPS and METADATA_KEY in graph.attrs.trained
    for op in graph.ops_of(IF):
        layer = declared.layers[op.loc.node]
        assert op.attrs.mean_rate == pytest.approx(layer.mean_rate)
        assert op.attrs.v_min == pytest.approx(declared.v_min * layer.v_threshold)
    (inp,) = graph.ops_of(SpikeInput)
    assert inp.attrs.v_threshold == declared.input_threshold
    (readout,) = graph.ops_of(Readout)  # from the step it was trained to read from
    assert readout.attrs.delay == declared.readout_delay
    assert readout.attrs.delay == report["pass_reports"]["trained-spiking"]["readout_delay"]
    assert "trained" in (Path(report["source_model"]).parent / "out.snncc" / "model.snnir"
                         ).read_text().split("{", 2)[1]


def test_a_trained_network_is_not_distilled_again(trained, tmp_path, capsys):
    _, model, _, _ = trained
    np.save(tmp_path / "cal.npy", _images(4, 3))
    out = tmp_path / "again.snncc"
    assert main(["compile", str(model), "--distill", "--calibration", str(tmp_path / "cal.npy"),
                 "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "is already trained through its spiking dynamics" in err and "without --distill" in err
    assert not out.exists()


def test_emulator_agrees_with_numpy_loihi_mode_on_a_trained_network(trained):
    """As for converted networks (test_loihi_target), with the bound measured there for
    this network: nengo-loihi discretizes the (already quantized) weights again from
    floats, which moves some layers' counts by up to 5 % (docs/targets-loihi.md)."""
    from snncc.targets.loihi import LoihiTarget
    from snncc.targets.numpy import NumpyTarget

    _, _, graph, _ = trained
    x = _images(2, 9)
    steps = 30
    emu = LoihiTarget().run(graph, [x], "emulator", timesteps=steps)
    ref = NumpyTarget().run(graph, [x], "loihi", timesteps=steps)
    assert np.abs(emu.outputs[0] - ref.outputs[0]).max() <= 0.05  # probabilities
    for name, layer in ref.stats["layers"].items():
        assert emu.stats["spikes_per_layer"][name] == pytest.approx(
            layer["spikes_per_image"], rel=0.05), name


def test_one_run_reads_what_each_shorter_run_reads(trained):
    """`lengths` reads several run lengths from one simulation (distill-spiking's
    `shortest`): the same values, carry included, as running each length alone."""
    net = trained[0]
    x = _images(2, 4)
    delay = max(op.attrs.delay for op in net.graph.ops_of(Readout))
    lengths = [delay + 1, delay + 7, 40]
    with torch.no_grad():
        every, _ = net(x, 40, lengths)
        for i, length in enumerate(lengths):
            alone, _ = net(x, length)
            for name, value in alone.items():
                assert every[name].shape == (len(lengths), *value.shape)
                torch.testing.assert_close(every[name][i], value, rtol=1e-6, atol=1e-6)


def test_scan_gradient_matches_autograd_of_the_step_by_step_form():
    """The fused scan's BPTT equals autograd through the same dynamics written per step
    (no carry: currents below 4096 units)."""
    rng = np.random.default_rng(0)
    q = torch.tensor(rng.normal(0, 300, (12, 2, 5)).astype(np.float32), requires_grad=True)
    bias = torch.tensor(rng.normal(0, 50, (5,)).astype(np.float32), requires_grad=True)
    upstream = torch.tensor(rng.normal(size=(12, 2, 5)).astype(np.float32))
    vth, vmin = 640.0, -255.0
    (_IFScan.apply(q, bias, vth, vmin) * upstream).sum().backward()
    fused = q.grad.clone(), bias.grad.clone()
    q.grad = bias.grad = None

    class Step(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v > vth).float()

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g / (vth * (1 + SURROGATE_BETA * (v - vth).abs() / vth) ** 2)

    v, out = torch.zeros(2, 5), []
    for t in range(12):
        v = torch.clamp(v + q[t] + bias, vmin, 2**23 - 1)
        s = Step.apply(v)
        v = v * (1 - s.detach())
        out.append(s)
    (torch.stack(out) * upstream).sum().backward()
    torch.testing.assert_close(fused[0], q.grad)
    torch.testing.assert_close(fused[1], bias.grad)


def _declared(**change) -> dict:
    base = TrainedSpiking("if", "zero", 0.0, -1.0, 0.001, 32, 8, 1.0, 13,
                          {"/a/Relu": TrainedLayer(1.0, 0.1)}).to_json()
    return {**base, **change}


@pytest.mark.parametrize("change, message", [
    ({"neuron": "lif"}, "neuron 'lif'"),
    ({"tau_s": 0.003}, "tau_s 0.003"),
    ({"v_min": 0.5}, "v_min 0.5"),
    ({"version": 9}, "version 9"),
    ({"layers": {"/a/Relu": {"v_threshold": -1.0, "mean_rate": 0.1}}}, "v_threshold"),
    ({"timesteps": None}, "missing or unknown field"),
])
def test_bad_declarations_are_refused_by_name(change, message):
    data = _declared(**change)
    if change.get("timesteps", 0) is None:
        del data["timesteps"]
    with pytest.raises(TrainedSpikingError, match=message.replace("(", r"\(")):
        TrainedSpiking.from_json(data)


def test_compile_refuses_a_model_whose_declaration_is_broken_or_foreign(trained, tmp_path,
                                                                        capsys):
    _, model, _, _ = trained
    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    broken = tmp_path / "broken.onnx"
    onnx.helper.set_model_props(proto, {**props, METADATA_KEY: "{not json"})
    onnx.save(proto, str(broken))
    assert main(["compile", str(broken), "-o", str(tmp_path / "b"), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert str(broken) in err and METADATA_KEY in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
    foreign = tmp_path / "foreign.onnx"
    data = json.loads(props[METADATA_KEY])
    data["layers"] = {"/elsewhere/Relu": {"v_threshold": 1.0, "mean_rate": 0.1}}
    onnx.helper.set_model_props(proto, {**props, METADATA_KEY: json.dumps(data)})
    onnx.save(proto, str(foreign))
    assert main(["compile", str(foreign), "-o", str(tmp_path / "f"), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "/elsewhere/Relu" in err and "re-export" in err and "Traceback" not in err
    assert not (tmp_path / "f").exists()
