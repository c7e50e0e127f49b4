"""convert-activations: populations, multi-input projections for concat and add, the
readout and its delay, the input encoder, synaptic filters, golden IR, option errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from spiking_models import analog_unet, convert, images

from snncc.diagnostics import SnnccError
from snncc.ir import parse_graph, print_graph
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import IF, LIF, Concat, Conv2d, ConvTranspose2d, Readout, Relu, SpikeInput
from snncc.pipeline import parse_pipeline
from snncc.sim.rates import rate_model

GOLDEN = Path(__file__).parent / "golden" / "convert-activations"
CASES = {"unet": "convert-activations", "unet_zero": "convert-activations{reset=zero}",
         "unet_lif": "convert-activations{neuron=lif input=current tau-s=0.002}"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str):
    """The fuse-linear output of `analog_unet` → the case's pipeline (test_golden.py runs
    the same files through its RUN line)."""
    graph = analog_unet()
    convert(graph, "fuse-linear")
    run = f"// RUN: {CASES[name]}\n"
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / f"{name}.snnir").write_text(run + print_graph(graph,
                                                                weights_file=f"{name}.npz"))
        graph.weights.save(GOLDEN / f"{name}.npz")
    assert run + print_graph(graph, weights_file=f"{name}.npz") == (
        GOLDEN / f"{name}.snnir").read_text()
    convert(graph, CASES[name])
    got = print_graph(graph, weights_file=f"{name}.expected.npz")
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        (GOLDEN / f"{name}.expected.snnir").write_text(got)
        graph.weights.save(GOLDEN / f"{name}.expected.npz")
    assert got == (GOLDEN / f"{name}.expected.snnir").read_text()


def test_structure_concat_add_readout_and_input():
    graph = analog_unet()
    ctx = convert(graph, "fuse-linear,convert-activations")
    assert not list(graph.ops_of(Relu)) and not list(graph.ops_of(Concat))
    pops = {op.result.name: op for op in graph.ops if isinstance(op, IF)}
    assert list(pops) == ["enc_relu", "mid_relu", "res_relu", "up_relu", "dec_relu"]
    # the residual add: two projections (from mid and from the input-side pool) into one
    res_sources = [v.owner.inputs[0].name for v in pops["res_relu"].inputs]
    assert sorted(res_sources) == ["enc_relu", "mid_relu"]
    # the concat: the decoder conv split along its input channels, one part per source
    dec = [v.owner for v in pops["dec_relu"].inputs]
    assert [type(op) for op in dec] == [Conv2d, Conv2d]
    assert [op.inputs[0].name for op in dec] == ["up_relu", "enc_relu"]
    assert [graph.weights[op.attrs.weight].shape[1] for op in dec] == [4, 4]
    assert isinstance(pops["up_relu"].inputs[0].owner, ConvTranspose2d)
    (inp,) = graph.ops_of(SpikeInput)
    assert graph.ops[0] is inp
    (readout,) = graph.ops_of(Readout)
    assert readout.attrs.delay == 6  # six spiking hops: input, enc, mid, res, up, dec
    assert graph.outputs[0].owner.name == "act.sigmoid"
    assert ctx.report["convert-activations"]["populations"] == 5
    assert ctx.report["convert-activations"]["readout_delays"] == {readout.result.name: 6}


def test_conversion_keeps_the_ann_function():
    """Before scale-rates the graph's rate model (ann=True) is the ANN itself."""
    graph = analog_unet()
    x = images(6)
    want = run_analog(graph, [x])[0]
    convert(graph, "fuse-linear,convert-activations{reset=zero neuron=lif}")
    np.testing.assert_allclose(run_analog(rate_model(graph, ann=True).graph, [x])[0], want,
                               atol=1e-5)


def test_filters_default_by_reset_and_delay_the_readout():
    subtract, zero = analog_unet(), analog_unet()
    convert(subtract, "fuse-linear,convert-activations")
    convert(zero, "fuse-linear,convert-activations{reset=zero}")
    assert {op.attrs.tau_s for op in subtract.ops_of(IF)} == {0.0}
    assert {op.attrs.tau_s for op in zero.ops_of(IF)} == {0.003}
    assert next(zero.ops_of(Readout)).attrs.delay == 6 + 5 * 3  # each filter lags 3 steps
    explicit = analog_unet()
    convert(explicit, "fuse-linear,convert-activations{reset=zero tau-s=0}")
    assert next(explicit.ops_of(Readout)).attrs.delay == 6


def test_membrane_floor_replaces_the_filter_and_its_lag():
    graph = analog_unet()
    convert(graph, "fuse-linear,convert-activations{reset=zero tau-s=0 v-min=-2 threshold=0.5}")
    assert {(op.attrs.tau_s, op.attrs.v_min) for op in graph.ops_of(IF)} == {(0.0, -1.0)}
    assert next(graph.ops_of(Readout)).attrs.delay == 6  # hops only
    later = analog_unet()
    convert(later, "fuse-linear,convert-activations{reset=zero tau-s=0 readout-settle=4}")
    assert next(later.ops_of(Readout)).attrs.delay == 6 + 4
    text = print_graph(graph)
    again = parse_graph(text, "t.snnir", weights_loader=lambda f, s: graph.weights)
    assert "v_min = -1.0" in text and print_graph(again) == text


def test_options_set_the_neurons():
    graph = analog_unet()
    convert(graph, "fuse-linear,convert-activations{neuron=lif tau=0.05 threshold=2 "
                   "refractory=1 v-initial=0.25 input=current}")
    lifs = list(graph.ops_of(LIF))
    assert len(lifs) == 5 and not list(graph.ops_of(SpikeInput))
    a = lifs[0].attrs
    assert (a.tau, a.v_threshold, a.refractory, a.v_initial) == (0.05, 2.0, 1, 0.5)


@pytest.mark.parametrize("option, message", [
    ("threshold=0", "convert-activations: threshold must be > 0, got 0"),
    ("refractory=-1", "convert-activations: refractory must be ≥ 0 steps, got -1"),
    ("v-initial=1", "v-initial is a fraction of the threshold in [0, 1), got 1"),
    ("tau-s=-0.001", "convert-activations: tau-s must be ≥ 0 seconds, got -0.001"),
    ("tau=0", "convert-activations: tau must be > 0 seconds, got 0"),
    ("v-min=0.5", "convert-activations: v-min is a fraction of the threshold ≤ 0, got 0.5"),
    ("readout-settle=-1", "convert-activations: readout-settle must be ≥ 0 steps, got -1"),
])
def test_bad_options(option, message):
    with pytest.raises(SnnccError) as err:
        parse_pipeline(f"convert-activations{{{option}}}")
    assert message in str(err.value) and err.value.exit_code == 1


def test_unfused_graph_is_refused_with_the_node():
    graph = analog_unet()
    with pytest.raises(SnnccError, match=r"'convert-activations' .* requires the IR property "
                                         r"'linear-fused'.*add 'fuse-linear' before it"):
        convert(graph, "convert-activations")
    graph.with_properties("linear-fused")  # a false claim, as in a hand-edited dump
    with pytest.raises(SnnccError, match=r"convert-activations: .*'/mid/Conv'.* reads the "
                                         r"result of another linear op; run fuse-linear"):
        convert(graph, "convert-activations")
