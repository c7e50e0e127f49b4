"""The numpy target's spiking modes: convergence to the analog run, the neuron dynamics
(ideal and nengo-loihi's integer ones, synaptic filters), recorded rates, frames, and
`snncc run`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from spiking_models import IDEAL, LOIHI, analog_unet, convert, images

from snncc.cli.main import main
from snncc.diagnostics import SnnccError
from snncc.hw.loihi.formats import current_decay, decay_magnitude, membrane_floor
from snncc.ir import Graph, TensorType, save_ir
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import IF, Conv2d, Readout, SpikeInput
from snncc.sim.dynamics import FloatNeurons, LoihiNeurons
from snncc.sim.spiking import run_spiking


def _error(graph: Graph, want: np.ndarray, x: np.ndarray, mode: str, steps: int) -> float:
    return float(np.abs(run_spiking(graph, [x], mode=mode, timesteps=steps).outputs[0]
                        - want).mean())


@pytest.mark.parametrize("pipeline, mode, short, bound", [
    (IDEAL, "ideal", 10, 0.03),
    (LOIHI, "loihi", 30, 0.05),
    (LOIHI, "ideal", 30, 0.05),
])
def test_spiking_output_converges_to_the_analog_output(pipeline, mode, short, bound):
    """Mean |p_snn − p_ann| over 16 images (sigmoid outputs): falls as T grows, and is small
    at T = 300. The readout delay (hops plus filter lag) bounds the shortest run."""
    graph = analog_unet()
    x = images(16)
    want = run_analog(graph, [x])[0]
    convert(graph, pipeline, calibration=images(16, seed=5))
    errors = [_error(graph, want, x, mode, t) for t in (short, 100, 300)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < bound
    assert errors[0] > 2 * errors[2]


def test_run_records_rates_and_spike_counts():
    graph = analog_unet()
    convert(graph, IDEAL, calibration=images(8, seed=5))
    x = images(4)
    stats = run_spiking(graph, [x], mode="ideal", timesteps=50).stats
    layers = stats["layers"]
    pops = [op for op in graph.ops if isinstance(op, (IF, SpikeInput))]
    assert list(layers) == [op.result.name for op in pops]
    for op in pops:
        entry = layers[op.result.name]
        neurons = int(np.prod(op.result.type.shape[1:]))
        assert entry["neurons"] == neurons
        assert entry["rate_hz"] == pytest.approx(entry["spikes"] / (4 * neurons * 50 * 1e-3))
    assert layers["enc_relu"]["onnx_node"] == "/enc/Relu"
    assert all(layers[name]["spikes"] > 0 for name in layers)
    assert stats["spikes_per_image"] == sum(
        e["spikes"] for n, e in layers.items() if n != "x_spikes") / 4
    assert stats["images"] == 4 and stats["timesteps"] == 50


def _single_population(tau_s: float, reset: str = "subtract") -> Graph:
    """One input pixel driving one IF population through a 1×1 conv of weight 0.5."""
    g = Graph("one")
    x = g.add_input("x", TensorType((1, 1, 1, 1)))
    s = g.add(SpikeInput, [x], SpikeInput.Attrs(), name="inp")
    c = g.add(Conv2d, [s], Conv2d.Attrs(g.weights.add("w", np.full((1, 1, 1, 1), 0.5,
                                                                   np.float32))), name="c")
    g.add(IF, [c], IF.Attrs(reset=reset, tau_s=tau_s), name="pop")
    g.outputs = [g.ops[-1].result]
    g.with_properties("spiking")
    return g


def test_ideal_dynamics_soft_reset_counts_exactly():
    """Input spikes at rate x, each worth 0.5 of the threshold: the population spikes
    floor(0.5 · spikes in) times (soft reset keeps the remainder)."""
    x = np.array([0.3, 0.55, 1.0], np.float32).reshape(3, 1, 1, 1)
    out = run_spiking(_single_population(0.0), [x], "ideal", timesteps=100).outputs[0]
    np.testing.assert_allclose(out.ravel() * 100, np.floor(0.5 * np.floor(x.ravel() * 100)))


def test_synaptic_filter_smooths_the_current():
    """A filtered population driven by input spikes every other step sees a current that
    settles at the mean, not alternating 0 / 0.5."""
    neurons = FloatNeurons(np.zeros(1), 100.0, False, filter_d=1 - np.exp(-1 / 3))
    v = []
    for t in range(60):
        neurons.step(np.array([0.5 if t % 2 else 0.0]))
        v.append(neurons.v[0])
    current = np.diff(v)[-10:]
    assert np.all(np.abs(current - 0.25) < 0.1)


def test_loihi_current_decay_matches_nengo_loihi():
    pytest.importorskip("nengo_loihi")
    from nengo_loihi.builder.discretize import decay_magnitude as reference

    for tau in (0.002, 0.003, 0.01):
        decay, infactor = current_decay(1e-3, tau)
        assert decay == round((1 - np.exp(-1e-3 / tau)) * 4095 - 1)
        assert infactor == pytest.approx(1 / reference(decay, x0=2**21, offset=1))
        assert decay_magnitude(decay) == pytest.approx(reference(decay, x0=2**21, offset=1))
    assert current_decay(1e-3, 0.0) == (4094, 1.0)


def test_loihi_neuron_resets_to_zero_and_clips_at_zero():
    neurons = LoihiNeurons(np.zeros(2, np.int64), vth=100, bias=np.array([0, 0]), keep_v=4096)
    spikes = [neurons.step(np.array([60, -500])) for _ in range(4)]
    assert [bool(s[0]) for s in spikes] == [False, True, False, True]  # 60, 120 > 100 → 0
    assert neurons.v[1] == 0  # never below zero
    neurons = LoihiNeurons(np.zeros(1, np.int64), vth=100, bias=0, keep_v=4096)
    assert not neurons.step(np.array([100]))[0]  # spikes only above the threshold


def test_loihi_membrane_floor_keeps_inhibition_as_nengo_loihi_discretizes_it():
    neurons = LoihiNeurons(np.zeros(2, np.int64), vth=100, bias=np.array([0, 0]), keep_v=4096,
                           vmin=membrane_floor(-200.0))
    assert neurons.vmin == -255  # −(2^k − 1), k = round(log2(201))
    neurons.step(np.array([-150, -500]))
    assert list(neurons.v) == [-150, -255]
    assert not neurons.step(np.array([200, 0]))[0]  # −150 + 200 = 50: the inhibition stays
    assert membrane_floor(0.0) == 0 and membrane_floor(-1e12) == -(2**23) + 1


def test_counts_from_a_step_are_the_spikes_after_it():
    graph = analog_unet()
    convert(graph, LOIHI, calibration=images(8, seed=5))
    names = [op.result.name for op in graph.ops if isinstance(op, IF)]
    whole = run_spiking(graph, [images(3)], "loihi", timesteps=40,
                        count_from={n: 0 for n in names})
    late = run_spiking(graph, [images(3)], "loihi", timesteps=40,
                       count_from={names[0]: 30}, batch_size=2)
    for n in names:
        assert whole.stats["counts"][n].sum() == whole.stats["layers"][n]["spikes"]
    first = next(op for op in graph.ops if isinstance(op, IF))
    assert late.stats["counts"][names[0]].shape == (3, *first.result.type.shape[1:])
    assert 0 < late.stats["counts"][names[0]].sum() < whole.stats["counts"][names[0]].sum()


def test_loihi_mode_quantizes_an_unquantized_graph_on_the_fly():
    graph = analog_unet()
    convert(graph, "fuse-linear,convert-activations{reset=zero},scale-rates",
            calibration=images(8, seed=5))
    result = run_spiking(graph, [images(2)], "loihi", timesteps=40)
    assert result.stats["quantized_on_the_fly"] is True
    assert result.stats["overflows"] == 0
    assert all(op.attrs.v_scale is None for op in graph.ops if isinstance(op, IF))


def test_frames_show_the_output_converging():
    graph = analog_unet()
    convert(graph, IDEAL, calibration=images(8, seed=5))
    x = images(3)
    want = run_analog(analog_unet(), [x])[0]
    delay = next(graph.ops_of(Readout)).attrs.delay
    steps = [delay + 5, 60, 200]
    result = run_spiking(graph, [x], "ideal", timesteps=200, frames=steps, batch_size=2)
    assert sorted(result.frames) == steps
    np.testing.assert_array_equal(result.frames[200][0], result.outputs[0])
    errors = [np.abs(result.frames[t][0] - want).mean() for t in steps]
    assert errors[0] > errors[1] > errors[2]
    with pytest.raises(SnnccError, match=rf"frame at step {delay} lies outside the run"):
        run_spiking(graph, [x], "ideal", timesteps=50, frames=[delay])


def test_simulator_refuses_bad_runs():
    graph = analog_unet()
    convert(graph, IDEAL, calibration=images(4, seed=5))
    with pytest.raises(SnnccError, match="spiking mode 'fast' is unknown"):
        run_spiking(graph, [images(1)], "fast")
    with pytest.raises(SnnccError, match=r"input of shape \[1, 1, 4, 4\] does not fit"):
        run_spiking(graph, [np.zeros((1, 1, 4, 4), np.float32)])
    with pytest.raises(SnnccError, match="do not reach past the readout delay"):
        run_spiking(graph, [images(1)], timesteps=2)
    with pytest.raises(SnnccError, match="has no spiking populations; run convert-activations"):
        run_spiking(analog_unet(), [images(1)])


@pytest.fixture
def compiled(tmp_path):
    graph = analog_unet(size=8)
    convert(graph, LOIHI, calibration=images(8, seed=5))
    out = tmp_path / "net"
    out.mkdir()
    save_ir(graph, out / "model.snnir")
    (out / "report.json").write_text(json.dumps({"target": "numpy"}))
    image = tmp_path / "in.png"
    Image.fromarray((images(1)[0, 0] * 255).astype(np.uint8)).save(image)
    return out, image


def test_cli_run_writes_png_npy_frames_and_report(compiled, tmp_path, capsys):
    out, image = compiled
    png, npy, strip = tmp_path / "seg.png", tmp_path / "seg.npy", tmp_path / "frames.png"
    assert main(["run", str(out), "--input", str(image), "--timesteps", "80", "--mode",
                 "loihi", "-o", str(png), "--frames", str(strip), "--frame-count", "4",
                 "--report", str(tmp_path / "run.json"), "--no-progress"]) == 0
    assert Image.open(png).size == (8, 8)
    assert Image.open(strip).size[0] > 4 * 8  # a figure: labelled panels, colour bar
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["mode"] == "loihi" and report["layers"]["enc_relu"]["spikes"] > 0
    assert "frames after" in capsys.readouterr().err
    assert main(["run", str(out), "--input", str(image), "--timesteps", "80", "-o", str(npy),
                 "--frames", str(tmp_path / "f.npy"), "--frame-count", "3",
                 "--no-progress"]) == 0  # a spiking graph runs in ideal mode by default
    frames = np.load(tmp_path / "f.npy")
    assert frames.shape == (3, 1, 1, 8, 8)
    np.testing.assert_array_equal(frames[-1], np.load(npy))


def test_cli_run_of_a_loihi_network_defaults_to_numpy_loihi_mode(compiled, tmp_path):
    """The emulator is slow: it runs only when asked for; a slice's report counts it as one
    image cut into tiles."""
    from snncc.cli.run_cmd import choose_target

    out, _ = compiled
    (out / "report.json").write_text(json.dumps({"target": "loihi"}))
    big = tmp_path / "big.png"
    Image.fromarray((np.random.default_rng(2).random((12, 12)) * 255).astype(np.uint8)).save(big)
    assert main(["run", str(out), "--input", str(big), "--timesteps", "60", "-o",
                 str(tmp_path / "s.npy"), "--report", str(tmp_path / "r.json"),
                 "--no-progress"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["target"] == "numpy" and report["mode"] == "loihi"
    assert report["input"] == {"file": str(big), "images": 1, "image_size": [12, 12],
                               "model_inputs": 9, "tiles": 9, "tile": [8, 8], "margin": 2}
    assert [(t.name, m) for t, m in (choose_target("loihi", None, "emulator"),
                                     choose_target("loihi", "loihi", None),
                                     choose_target("loihi", None, "ideal"),
                                     choose_target("numpy", None, "spiking"))] == [
        ("loihi", "emulator"), ("loihi", None), ("numpy", "ideal"), ("numpy", "ideal")]


def test_cli_run_bad_frames(compiled, tmp_path, capsys):
    out, image = compiled
    code = main(["run", str(out), "--input", str(image), "--mode", "analog", "--frames",
                 str(tmp_path / "f.png"), "--no-progress"])
    assert code == 2
    assert "--frames needs a spiking mode" in capsys.readouterr().err
    code = main(["run", str(out), "--input", str(image), "--mode", "loihi", "--frames",
                 str(tmp_path / "f.png"), "--frame-count", "0", "--no-progress"])
    assert code == 1  # out of range: exit 1, like every option's (docs/cli.md)
    assert "--frame-count must be ≥ 1, got 0" in capsys.readouterr().err


def _run_alone(out: Path, tile: np.ndarray, path: Path) -> np.ndarray:
    np.save(path, (tile / 255.0).astype(np.float32))
    result = path.with_name(f"{path.stem}-out.npy")
    assert main(["run", str(out), "--input", str(path), "--timesteps", "60", "--mode",
                 "ideal", "-o", str(result), "--no-progress"]) == 0
    return np.load(result)[0, 0]


@pytest.mark.parametrize("margin", [0, None])
def test_cli_run_tiles_an_image_larger_than_the_input(compiled, tmp_path, margin):
    """A 12×20 gray image through an 8×8 model, stitched back. Margin 0: plain tiles, each
    tile's pixels equal a run on that tile alone where tiles do not overlap. Default
    margin (2 = a quarter of the tile): overlap-tile, the first tile is the image's corner
    mirrored by 2 pixels, and only its 4×4 centre is kept."""
    out, _ = compiled
    big = (np.random.default_rng(9).random((12, 20)) * 255).astype(np.uint8)
    image = tmp_path / "big.png"
    Image.fromarray(big).save(image)
    npy = tmp_path / "big.npy"
    flags = [] if margin is None else ["--margin", str(margin)]
    assert main(["run", str(out), "--input", str(image), "--timesteps", "60", "--mode",
                 "ideal", "-o", str(npy), "--no-progress", *flags]) == 0
    whole = np.load(npy)
    assert whole.shape == (1, 1, 12, 20)
    if margin == 0:
        alone = _run_alone(out, big[:8, :8], tmp_path / "corner.npy")
        np.testing.assert_allclose(whole[0, 0, :4, :8], alone[:4, :8], atol=1e-6)
    else:
        mirrored = np.pad(big, 2, mode="reflect")[:8, :8]
        alone = _run_alone(out, mirrored, tmp_path / "mirrored.npy")
        np.testing.assert_allclose(whole[0, 0, :4, :4], alone[2:6, 2:6], atol=1e-6)


@pytest.mark.parametrize("mode", ["ideal", "loihi"])
def test_frames_equal_shorter_runs(mode):
    """A frame after t steps (outputs and spike counts, batched in chunks) is what a run of
    exactly t steps gives, so one run can score a whole sweep of timestep counts."""
    graph = analog_unet()
    convert(graph, LOIHI, calibration=images(8, seed=5))
    x = images(6)
    long = run_spiking(graph, [x], mode, timesteps=90, frames=[40, 90], batch_size=4)
    short = run_spiking(graph, [x], mode, timesteps=40, batch_size=4)
    np.testing.assert_array_equal(long.frames[40][0], short.outputs[0])
    np.testing.assert_array_equal(long.frames[90][0], long.outputs[0])
    assert long.frame_stats[40]["layers"] == short.stats["layers"]
    assert long.frame_stats[90]["layers"] == long.stats["layers"]
    assert long.frame_stats[40]["mean_rate_hz"] == pytest.approx(short.stats["mean_rate_hz"])
