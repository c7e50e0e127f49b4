"""distill-spiking: the converted network trained through its loihi-mode dynamics towards the
ANN it came from."""

from __future__ import annotations

import numpy as np
import pytest
from models.unets import UNetSpec, export_unet
from spiking_models import FRONT, analog_unet, convert, images

from snncc.cli.main import main
from snncc.diagnostics import SnnccError
from snncc.evaluate.compiled import load_compiled
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import IF, Readout, Sigmoid, Softmax
from snncc.passes.distill_spiking import teacher_outputs
from snncc.pipeline import parse_pipeline, with_options
from snncc.sim.arrival import arrival_steps
from snncc.sim.spiking import run_spiking
from snncc.targets.loihi import LoihiTarget
from snncc.targets.numpy import NumpyTarget

CONVERT = f"{FRONT},convert-activations{{reset=zero tau-s=0 v-min=-1}},scale-rates"
DISTILL = "distill-spiking{timesteps=24 steps=40 batch-size=4 lr=0.003}"
SIZE = 16


def _output_error(graph, ann, x: np.ndarray, steps: int) -> float:
    out = run_spiking(graph, [x], "loihi", timesteps=steps).outputs[0]
    return float(np.abs(out - ann).mean())


@pytest.mark.parametrize("read_from, shortest", [("slowest", 0), ("first", 0), ("slowest", 16)])
def test_distilled_network_is_closer_to_the_ann_on_unseen_images(read_from, shortest):
    """Also when its readout starts at the first spikes' arrival (the skip path), before
    the deep path's spikes arrive, and when trained for every run length from 16 to 24
    (closer at both ends)."""
    calibration, unseen = images(16, size=SIZE, seed=5), images(8, size=SIZE, seed=9)
    ann = run_analog(analog_unet(size=SIZE), [unseen])[0]
    converted, distilled = analog_unet(size=SIZE), analog_unet(size=SIZE)
    convert(converted, f"{CONVERT},quantize-weights", calibration=calibration)
    distill = DISTILL.replace("}", f" read-from={read_from} shortest={shortest}}}")
    ctx = convert(distilled, f"{CONVERT},{distill},quantize-weights", calibration=calibration)
    for steps in {shortest or 24, 24}:
        before = _output_error(converted, ann, unseen, steps)
        after = _output_error(distilled, ann, unseen, steps)
        assert after < 0.7 * before, (steps, before, after)
    slowest, first = (max(arrival_steps(distilled, first=f)[id(v)]
                          for op in distilled.ops_of(Readout) for v in op.inputs)
                      for f in (False, True))
    (readout,) = distilled.ops_of(Readout)
    assert first < slowest and readout.attrs.delay == (first if read_from == "first" else slowest)
    report = ctx.report["distill-spiking"]
    assert report["readout_delay"] == readout.attrs.delay
    assert report["timesteps"] == 24 and report["steps"] == 40 and report["images"] == 16
    assert list(report["loss"].values()) == ["binary cross entropy"]
    assert report["loss_last"] < report["loss_first"] and report["seconds"] > 0
    assert distilled.attrs.timesteps == 24
    assert report["shortest"] == shortest
    assert distilled.attrs.trained.startswith(
        f"distill-spiking: 40 steps at T = {f'{shortest}–24' if shortest else 24}")
    rates = [op.attrs.mean_rate for op in distilled.ops_of(IF)]
    assert all(0 < r <= 1 for r in rates)


def test_teacher_is_the_ann_before_its_head():
    graph, calibration = analog_unet(size=SIZE), images(4, size=SIZE, seed=5)
    ann = run_analog(analog_unet(size=SIZE), [calibration])[0]
    convert(graph, CONVERT, calibration=calibration)
    (readout,) = graph.ops_of(Readout)
    teacher = teacher_outputs(graph, calibration, batch_size=2)[readout.result.name]
    np.testing.assert_allclose(1 / (1 + np.exp(-teacher)), ann, atol=1e-5)


@pytest.mark.parametrize("head, loss", [("softmax", "cross entropy"),
                                        ("raw", "mean squared error")])
def test_the_loss_follows_the_head(head, loss):
    graph = analog_unet(size=SIZE)
    (sigmoid,) = graph.ops_of(Sigmoid)
    logits = sigmoid.inputs[0]
    graph.erase(sigmoid)
    graph.outputs = ([graph.add(Softmax, [logits], Softmax.Attrs(axis=1), name="prob")]
                     if head == "softmax" else [logits])
    ctx = convert(graph, f"{CONVERT},distill-spiking{{timesteps=20 steps=1}}",
                  calibration=images(4, size=SIZE, seed=5))
    assert list(ctx.report["distill-spiking"]["loss"].values()) == [loss]


def test_without_calibration_images_nothing_changes():
    graph = analog_unet()
    convert(graph, CONVERT, calibration=images(8, seed=5))
    before = {n: graph.weights[n].copy() for n in graph.weights}
    ctx = convert(graph, "distill-spiking")
    assert ctx.report["distill-spiking"] == {"skipped": "no calibration images (--calibration)"}
    for name, w in before.items():
        np.testing.assert_array_equal(graph.weights[name], w)


def test_a_filtered_conversion_is_refused_with_the_fix():
    graph = analog_unet()
    with pytest.raises(SnnccError) as err:
        convert(graph, f"{FRONT},convert-activations{{reset=zero}},scale-rates,distill-spiking",
                calibration=images(4, seed=5))
    assert "distill-spiking: spiking training:" in str(err.value)
    assert "convert-activations{reset=zero tau-s=0}" in str(err.value)


@pytest.mark.parametrize("options, option", [("timesteps=3", "timesteps"),
                                             ("timesteps=40 shortest=3", "shortest")])
def test_every_run_must_pass_the_readout_delay(options, option):
    graph = analog_unet()
    with pytest.raises(SnnccError, match=rf"{option}=3 ends before the readout starts \(step "
                       rf"\d+\); give {option} > \d+"):
        convert(graph, f"{CONVERT},distill-spiking{{{options}}}", calibration=images(4, seed=5))


@pytest.mark.parametrize("option, message", [
    ("timesteps=1", "distill-spiking: timesteps must be ≥ 2, got 1"),
    ("steps=0", "distill-spiking: steps must be ≥ 1, got 0"),
    ("batch-size=0", "distill-spiking: batch-size must be ≥ 1, got 0"),
    ("lr=0", "distill-spiking: lr must be > 0, got 0"),
    ("timesteps=50 shortest=64",
     "distill-spiking: shortest must be 0 (off) or at most timesteps=50, got 64"),
])
def test_bad_options(option, message):
    with pytest.raises(SnnccError) as err:
        parse_pipeline(f"distill-spiking{{{option}}}")
    assert message in str(err.value) and err.value.exit_code == 1


SOFTMAX_UNET = UNetSpec("bn-resize-strided-residual-softmax", opset=13, size=16, up="resize",
                        down="strided", residual=True, head="softmax", classes=2, width=3)


@pytest.mark.parametrize("runs, shortest", [("24", 0), ("20-24", 20)])
def test_compile_distill_runs_the_targets_distill_pipeline(tmp_path, monkeypatch, runs,
                                                           shortest):
    """`snncc compile --distill 24` (or `20-24`) on a PyTorch export with a softmax head: the
    Loihi target's distill pipeline runs (shortened to 3 steps here) for runs of 24 steps (or
    of 20 to 24), with its findings in report.json and the IR, and the emulator runs the
    result as numpy's loihi mode does."""
    short = with_options(LoihiTarget.distill_pipeline, "distill-spiking", steps=3)
    monkeypatch.setattr(LoihiTarget, "distill_pipeline", short)
    model = export_unet(SOFTMAX_UNET, tmp_path / "unet.onnx")
    np.save(tmp_path / "cal.npy", images(16, size=16, seed=5))
    out = tmp_path / "out.snncc"
    assert main(["compile", str(model), "--target", "loihi", "--distill", runs, "--calibration",
                 str(tmp_path / "cal.npy"), "-o", str(out), "--no-progress"]) == 0
    graph, report = load_compiled(out)
    found = report["pass_reports"]["distill-spiking"]
    assert (found["steps"], found["timesteps"], found["shortest"]) == (3, 24, shortest)
    assert list(found["loss"].values()) == ["cross entropy"] and found["images"] == 16
    assert graph.attrs.trained.startswith(
        f"distill-spiking: 3 steps at T = {'20–24' if shortest else 24}")
    assert all(op.attrs.tau_s == 0 and op.attrs.v_min < 0 for op in graph.ops_of(IF))
    # the emulator agrees with numpy loihi mode as on trained networks (5 %, 0.05)
    x = images(2, size=16, seed=9)
    emu = LoihiTarget().run(graph, [x], "emulator", timesteps=30)
    ref = NumpyTarget().run(graph, [x], "loihi", timesteps=30)
    assert np.abs(emu.outputs[0] - ref.outputs[0]).max() <= 0.05
    for name, layer in ref.stats["layers"].items():
        assert emu.stats["spikes_per_layer"][name] == pytest.approx(
            layer["spikes_per_image"], rel=0.05), name


@pytest.mark.parametrize("extra, code, message", [
    ([], 2, "--distill trains on calibration images: give them with --calibration"),
    (["--calibration", "CAL", "-p", "canonicalize"], 2,
     "--distill chooses the pipeline; give it or -p, not both"),
    (["1", "--calibration", "CAL"], 1, "--distill T must be ≥ 2, got 1"),
    (["1-64", "--calibration", "CAL"], 1, "--distill S-T: S must be ≥ 2, got 1"),
    (["64-50", "--calibration", "CAL"], 1, "--distill S-T: T (S = 64) must be ≥ 64, got 50"),
    (["64-", "--calibration", "CAL"], 2,
     "argument --distill: '64-' is not T or S-T (whole numbers of timesteps, e.g. 64 or 64-100)"),
])
def test_compile_distill_misuse_is_refused_before_any_output(tmp_path, capsys, extra, code,
                                                             message):
    model = export_unet(SOFTMAX_UNET, tmp_path / "unet.onnx")
    np.save(tmp_path / "cal.npy", images(4, size=16, seed=5))
    extra = [str(tmp_path / "cal.npy") if a == "CAL" else a for a in extra]
    out = tmp_path / "out.snncc"
    assert main(["compile", str(model), "-o", str(out), "--distill", *extra]) == code
    assert message in capsys.readouterr().err and not out.exists()
