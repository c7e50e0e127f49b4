"""The time-batched engine against the step-by-step reference: identical spike counts per
population, overflow counts and outputs in `loihi` mode (and in `ideal` mode where every
sum is exact), equal within float rounding otherwise; both synapse paths, on small random
networks and on the shipped U-Net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spiking_models import analog_unet, convert, images

from snncc.frontend.onnx import import_onnx
from snncc.ir import Graph, TensorType
from snncc.ir.interp import kernels
from snncc.ir.ops import IF, LIF, Conv2d, ConvTranspose2d, Dense, Flatten, Readout, SpikeInput
from snncc.sim import synapses
from snncc.sim.spiking import plan_run, readout_delay, run_spiking
from snncc.sim.synapses import SYNAPSES, to_channels_first, to_channels_last

ROOT = Path(__file__).resolve().parents[1]


def _both(graph: Graph, x: np.ndarray, mode: str, steps: int, frames=()):
    ref = run_spiking(graph, [x], mode, timesteps=steps, batch_size=3, frames=frames,
                      engine="reference")
    fast = run_spiking(graph, [x], mode, timesteps=steps, batch_size=3, frames=frames)
    return ref, fast


def _assert_identical(ref, fast) -> None:
    assert fast.stats["layers"] == ref.stats["layers"]
    assert fast.stats.get("overflows") == ref.stats.get("overflows")
    for a, b in zip(ref.outputs, fast.outputs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(fast.frames) == sorted(ref.frames)
    for t in ref.frames:
        np.testing.assert_array_equal(ref.frames[t][0], fast.frames[t][0])
        assert fast.frame_stats[t]["layers"] == ref.frame_stats[t]["layers"]


CONVERSIONS = [
    "neuron=if reset=subtract",
    "neuron=if reset=zero tau-s=0",
    "neuron=if reset=zero",  # 3 ms synaptic filter
    "neuron=lif reset=zero refractory=2",
    "neuron=lif reset=subtract tau-s=0.002 v-initial=0.3",
    "neuron=if input=current",  # the first synapse op reads the image: computed once
    "neuron=if reset=zero tau-s=0 v-min=-1",  # Loihi's negative membrane floor (vmin)
]


@pytest.mark.parametrize("options, path", [
    *((options, None) for options in CONVERSIONS),
    *((CONVERSIONS[k], path) for k in (0, 3) for path in ("dense", "events"))])
def test_loihi_mode_is_bit_exact_on_the_example_unet(options, path, monkeypatch):
    """Conv, avg pool (fused into a strided conv), residual add and concat (two projections
    into one population), transposed conv; forced to either synapse path or by density."""
    if path is not None:
        for name in ("EVENT_DENSITY", "BYTE_EVENT_DENSITY"):
            monkeypatch.setattr(synapses, name, 2.0 if path == "events" else 0.0)
    graph = analog_unet(seed=3)
    convert(graph, f"fuse-linear,convert-activations{{{options}}},scale-rates,quantize-weights",
            calibration=images(8, seed=5))
    delay = readout_delay(graph)
    ref, fast = _both(graph, images(4), "loihi", delay + 30, frames=[delay + 7, delay + 30])
    _assert_identical(ref, fast)
    assert sum(e["spikes"] for e in fast.stats["layers"].values()) > 0
    if path is not None:
        assert set(fast.stats["synapse_paths"]) <= {path, "none"}


@pytest.mark.parametrize("options", CONVERSIONS[:3])
def test_ideal_mode_agrees_within_float_rounding(options):
    graph = analog_unet(seed=4)
    convert(graph, f"fuse-linear,convert-activations{{{options}}},scale-rates,quantize-weights",
            calibration=images(8, seed=5))
    ref, fast = _both(graph, images(5), "ideal", 60)
    np.testing.assert_allclose(fast.outputs[0], ref.outputs[0], atol=1e-3)
    for name, entry in ref.stats["layers"].items():
        assert fast.stats["layers"][name]["spikes"] == pytest.approx(entry["spikes"], rel=1e-3)


def _dyadic(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Weights k/16: every sum of them is exact in float32, in any order."""
    return (rng.integers(-12, 16, shape) / 16).astype(np.float32)


def _dense_network(neuron: type, reset: str, tau_s: float, refractory: int) -> Graph:
    """input → conv → population → flatten → dense → population → dense → readout."""
    rng = np.random.default_rng(7)
    g = Graph("dense")
    x = g.add_input("x", TensorType((1, 2, 6, 6)))
    s = g.add(SpikeInput, [x], SpikeInput.Attrs(v_threshold=0.5), name="inp")
    c = g.add(Conv2d, [s], Conv2d.Attrs(g.weights.add("c.w", _dyadic(rng, 3, 2, 3, 3)),
                                        pads=(1, 1, 1, 1)), name="c")
    extra = {"tau": 0.01} if neuron is LIF else {}
    a = g.add(neuron, [c], neuron.Attrs(reset=reset, tau_s=tau_s, refractory=refractory,
                                        bias=g.weights.add("a.b", _dyadic(rng, 3)), **extra),
              name="a")
    f = g.add(Flatten, [a], Flatten.Attrs(axis=1), name="f")
    d = g.add(Dense, [f], Dense.Attrs(g.weights.add("d.w", _dyadic(rng, 10, 108))), name="d")
    b = g.add(neuron, [d], neuron.Attrs(reset=reset, tau_s=tau_s, refractory=refractory,
                                        **extra), name="b")
    r = g.add(Dense, [b], Dense.Attrs(g.weights.add("r.w", _dyadic(rng, 4, 10))), name="r")
    g.outputs = [g.add(Readout, [r], Readout.Attrs(delay=2), name="out"), b]
    g.with_properties("spiking")
    return g


@pytest.mark.parametrize("neuron, reset, tau_s, refractory", [
    (IF, "subtract", 0.0, 0), (IF, "zero", 0.003, 0), (LIF, "zero", 0.0, 1),
    (LIF, "subtract", 0.002, 2)])
@pytest.mark.parametrize("mode", ["ideal", "loihi"])
def test_dense_networks_are_bit_exact(neuron, reset, tau_s, refractory, mode):
    """Flatten views and dense synapses; with exact sums even `ideal` mode is identical
    (`loihi` mode quantizes the graph on the fly), as is a population output's rate."""
    x = np.random.default_rng(2).random((4, 2, 6, 6)).astype(np.float32)
    ref, fast = _both(_dense_network(neuron, reset, tau_s, refractory), x, mode, 40,
                      frames=[10, 40])
    _assert_identical(ref, fast)
    assert fast.stats["layers"]["b"]["spikes"] > 0


def test_one_step_chunks_are_ordinary_chunks():
    """Frames at consecutive steps make chunks of one step. The float scan once took a
    one-step input for the input population's constant image and did not consume it,
    leaving it in the shared input buffer for the next population (`ideal` mode only)."""
    x = np.random.default_rng(2).random((4, 2, 6, 6)).astype(np.float32)
    for mode in ("ideal", "loihi"):
        ref, fast = _both(_dense_network(IF, "subtract", 0.0, 0), x, mode, 30,
                          frames=[10, 11, 12, 30])
        _assert_identical(ref, fast)


SYNAPSE_OPS = [
    (Conv2d, (3, 4, 3, 3), Conv2d.Attrs, {"pads": (1, 0, 2, 1), "strides": (2, 1)}),
    (Conv2d, (4, 2, 3, 2), Conv2d.Attrs, {"dilations": (2, 1), "groups": 2}),
    (Conv2d, (2, 4, 4, 4), Conv2d.Attrs, {"strides": (2, 2), "pads": (2, 2, 2, 2)}),
    (ConvTranspose2d, (4, 3, 2, 2), ConvTranspose2d.Attrs, {"strides": (2, 2)}),
    (ConvTranspose2d, (4, 2, 3, 3), ConvTranspose2d.Attrs,
     {"strides": (2, 1), "pads": (1, 0, 0, 1), "output_padding": (1, 0), "groups": 2}),
    # 8 | input channels per group: the events path scatters bytes of 8 spikes
    (Conv2d, (12, 16, 3, 3), Conv2d.Attrs, {"pads": (1, 1, 1, 1)}),
    (Conv2d, (4, 8, 5, 5), Conv2d.Attrs, {"strides": (2, 2), "pads": (2, 2, 2, 2),
                                          "groups": 2}),
    (Conv2d, (1, 8, 1, 1), Conv2d.Attrs, {}),
    (Conv2d, (8, 8, 3, 5), Conv2d.Attrs, {"pads": (1, 2, 0, 1)}),  # runs clipped both sides
    (Conv2d, (8, 8, 3, 3), Conv2d.Attrs, {"dilations": (1, 2), "pads": (1, 2, 1, 2)}),
    (ConvTranspose2d, (16, 8, 2, 2), ConvTranspose2d.Attrs, {"strides": (2, 2)}),
]


@pytest.mark.parametrize("cls, shape, attrs, kw", SYNAPSE_OPS)
@pytest.mark.parametrize("density", [0.05, 0.5])
def test_both_synapse_paths_equal_the_reference_kernel(cls, shape, attrs, kw, density):
    """Channels-last events and dense paths give the analog kernels' sums exactly (integer
    weights), whatever the density."""
    rng = np.random.default_rng(11)
    g = Graph("syn")
    c = shape[1] * kw.get("groups", 1) if cls is Conv2d else shape[0]
    x = g.add_input("x", TensorType((1, c, 7, 6)))
    weight = rng.integers(-127, 128, shape).astype(np.float32)
    op = g.add(cls, [x], attrs(g.weights.add("w", weight), **kw), name="s").owner
    spikes = (rng.random((9, c, 7, 6)) < density).astype(np.uint8)
    fn = kernels.conv2d if cls is Conv2d else kernels.conv_transpose2d
    extra = ("output_padding",) if cls is ConvTranspose2d else ()
    want = fn(spikes, weight, None, op.attrs.strides, op.attrs.pads, op.attrs.dilations,
              *(getattr(op.attrs, e) for e in extra), op.attrs.groups)
    syn = SYNAPSES[cls](op, weight)
    for path in ("dense", "events"):
        out = np.zeros((9, *syn.out_shape()), np.float32)
        assert syn.run(np.ascontiguousarray(to_channels_last(spikes)), out, path) == path
        np.testing.assert_array_equal(to_channels_first(out), want)


@pytest.mark.parametrize("cls, shape, attrs, kw", SYNAPSE_OPS)
def test_scatter_and_gather_add_the_same_floats_in_the_same_order(cls, shape, attrs, kw,
                                                                   monkeypatch):
    """The events path's two kernels on float weights and a nonzero start: bit-identical
    sums, signs of zero included (the gather adds silent units' −0.0 rows), at any
    density; and the analog kernel's sums within rounding."""
    rng = np.random.default_rng(13)
    g = Graph("syn")
    c = shape[1] * kw.get("groups", 1) if cls is Conv2d else shape[0]
    x = g.add_input("x", TensorType((1, c, 7, 6)))
    weight = rng.standard_normal(shape).astype(np.float32)
    op = g.add(cls, [x], attrs(g.weights.add("w", weight), **kw), name="s").owner
    fn = kernels.conv2d if cls is Conv2d else kernels.conv_transpose2d
    extra = ("output_padding",) if cls is ConvTranspose2d else ()
    syn = SYNAPSES[cls](op, weight)
    for density in (0.0, 0.05, 0.5, 1.0):
        spikes = (rng.random((5, c, 7, 6)) < density).astype(np.uint8)
        frames = np.ascontiguousarray(to_channels_last(spikes))
        start = np.zeros((5, *syn.out_shape()), np.float32)
        start[..., ::2] = -0.0
        start[:, 1] = rng.standard_normal(start.shape[2:])
        outs = []
        for share in (2.0, 0.0):  # every unit scatters, every unit gathers
            monkeypatch.setattr(synapses, "GATHER_ACTIVITY", dict.fromkeys(
                synapses.GATHER_ACTIVITY, share))
            out = start.copy()
            syn.events(frames, out)
            outs.append(out)
        np.testing.assert_array_equal(outs[0], outs[1])
        np.testing.assert_array_equal(np.signbit(outs[0]), np.signbit(outs[1]))
        want = fn(spikes, weight, None, op.attrs.strides, op.attrs.pads, op.attrs.dilations,
                  *(getattr(op.attrs, e) for e in extra), op.attrs.groups)
        np.testing.assert_allclose(to_channels_first(outs[0] - start), want, atol=1e-5)


def test_dense_synapse_paths_agree():
    rng = np.random.default_rng(5)
    g = Graph("fc")
    x = g.add_input("x", TensorType((1, 30)))
    weight = rng.integers(-127, 128, (7, 30)).astype(np.float32)
    op = g.add(Dense, [x], Dense.Attrs(g.weights.add("w", weight)), name="d").owner
    spikes = (rng.random((12, 30)) < 0.2).astype(np.uint8)
    syn = SYNAPSES[Dense](op, weight)
    outs = []
    for path in ("dense", "events"):
        out = np.zeros((12, 7), np.float32)
        syn.run(spikes, out, path)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], kernels.dense(spikes, weight))
    np.testing.assert_array_equal(outs[1], outs[0])


def test_engine_bounds_its_chunks(monkeypatch):
    """A tiny memory budget splits the run into one-step chunks and one image per pass;
    the results do not change."""
    from snncc.sim import engine

    graph = analog_unet(seed=3)
    convert(graph, "fuse-linear,convert-activations{reset=zero},scale-rates,quantize-weights",
            calibration=images(8, seed=5))
    x = images(3)
    steps = readout_delay(graph) + 5
    want = run_spiking(graph, [x], "loihi", timesteps=steps)
    plan = plan_run(graph, "loihi")
    monkeypatch.setattr(engine, "MEMORY_BUDGET", engine.step_bytes(plan))
    assert engine.images_per_pass(plan) == 1
    got = run_spiking(graph, [x], "loihi", timesteps=steps)
    _assert_identical(want, got)


def test_shipped_unet_loihi_mode_is_bit_exact():
    """The example EM U-Net as `snncc compile --stats` converts it for Loihi."""
    from snncc.pipeline import PassContext, PassManager, parse_pipeline

    model = ROOT / "examples" / "em_unet" / "unet.onnx"
    graph = import_onnx(model)
    ctx = PassContext(stats_file=model.with_suffix(".stats.json"), progress=False)
    PassManager(parse_pipeline("canonicalize,fold-batchnorm,fuse-linear,"
                               "convert-activations{reset=zero},scale-rates,quantize-weights")
                ).run(graph, ctx)
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0.5, 0.2, (1, 1, 64, 64)), 0, 1).astype(np.float32)
    delay = readout_delay(graph)
    ref, fast = _both(graph, x, "loihi", delay + 6, frames=[delay + 2])
    _assert_identical(ref, fast)


def test_counts_from_a_step_are_bit_exact():
    """calibrate-spiking's per-neuron counts over a window: the same in both engines, for a
    window from the start, one that opens mid-run (a chunk boundary), and one past the end."""
    graph = analog_unet(seed=3)
    convert(graph, "fuse-linear,convert-activations{reset=zero},scale-rates,quantize-weights",
            calibration=images(8, seed=5))
    names = [op.result.name for op in graph.ops if isinstance(op, IF)]
    count_from = {names[0]: 0, names[1]: 25, names[2]: 99}
    runs = [run_spiking(graph, [images(4)], "loihi", timesteps=40, batch_size=3,
                        count_from=count_from, engine=engine)
            for engine in ("reference", "fast")]
    assert runs[1].stats["engine"] == "fast"
    for name in count_from:
        np.testing.assert_array_equal(runs[0].stats["counts"][name],
                                      runs[1].stats["counts"][name])
    assert runs[1].stats["counts"][names[1]].sum() > 0
    assert not runs[1].stats["counts"][names[2]].any()


def test_float32_bias_adds_give_the_references_float64_sums():
    """The engine adds a float population's bias in float32 where every value is a float32
    (`_float_bias`); the reference adds it in float64 and rounds. Equal: rounding a sum of
    two float32s through float64 first is innocuous (53 ≥ 2·24 + 2 bits), subnormals,
    ties and overflow included."""
    from snncc.sim.engine import _float_bias

    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**32, (2, 1 << 20), dtype=np.uint64).astype(np.uint32)
    a, b = bits.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        b[: 1 << 16] = -a[: 1 << 16] * np.float32(1 + 2**-23)  # cancellations, near-ties
        b[1 << 16: 1 << 18] = a[1 << 16: 1 << 18] * rng.uniform(-2, 2, 3 << 16).astype(
            np.float32)  # close exponents
        finite = np.isfinite(a) & np.isfinite(b)
        a, b = a[finite], b[finite]
        np.testing.assert_array_equal((a.astype(np.float64) + b).astype(np.float32), a + b)
    assert _float_bias(b.astype(np.float64)).dtype == np.float32
    assert _float_bias(np.array([0.1, 0.5])).dtype == np.float64
