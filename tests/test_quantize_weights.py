"""quantize-weights: Loihi's mantissa/exponent grids, the error recorded in the IR and the
report, fewer bits, synaptic filters, golden IR, and bad options through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from spiking_models import analog_unet, convert, images

from snncc.hw.loihi.formats import (
    BIAS_MAN_MAX,
    VTH_EXP,
    choose_format,
    current_decay,
)
from snncc.ir import load_ir, print_graph
from snncc.ir.ops import IF, Readout

GOLDEN = Path(__file__).parent / "golden" / "quantize-weights"
RUN_LINE = "// RUN: quantize-weights{bits=6}\n"


def normalized(reset: str = "subtract"):
    graph = analog_unet()
    convert(graph, f"fuse-linear,convert-activations{{reset={reset}}},scale-rates",
            calibration=images(8, seed=5))
    return graph


def _populations(graph):
    return [op for op in graph.ops if isinstance(op, (IF, Readout))]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_weights_biases_thresholds_are_chip_integers(reset):
    graph = normalized(reset)
    convert(graph, "quantize-weights")
    for pop in _populations(graph):
        a = pop.attrs
        _, u_infactor = current_decay(graph.attrs.dt, getattr(a, "tau_s", 0.0))
        for v, exp in zip(pop.inputs, a.weight_exps, strict=True):
            w = graph.weights[v.owner.attrs.weight].astype(np.float64) * a.v_scale * u_infactor
            np.testing.assert_allclose(w, np.rint(w), atol=1e-3)  # integers on the chip
            mantissa = w / 2.0 ** (6 + exp)
            assert np.abs(mantissa).max() <= 255 + 1e-6
            np.testing.assert_allclose(mantissa / 2, np.rint(mantissa / 2), atol=1e-3)  # even
        if a.bias is not None:
            b = graph.weights[a.bias].astype(np.float64) * a.v_scale
            np.testing.assert_allclose(b, np.rint(b), atol=1e-3)
            assert np.abs(b).max() <= BIAS_MAN_MAX * 2**7
        if isinstance(pop, IF):
            vth = a.v_threshold * a.v_scale / 2**VTH_EXP
            assert vth == pytest.approx(round(vth), abs=1e-6)


def test_error_is_recorded_in_the_ir_and_the_report():
    graph = normalized()
    before = {op.result.name: [graph.weights[v.owner.attrs.weight].copy() for v in op.inputs]
              for op in _populations(graph)}
    ctx = convert(graph, "quantize-weights{bits=4}")
    layers = ctx.report["quantize-weights"]["layers"]
    assert ctx.report["quantize-weights"]["bits"] == 4
    assert set(layers) == {op.result.name for op in _populations(graph)}
    for pop in _populations(graph):
        old = np.concatenate([w.ravel() for w in before[pop.result.name]])
        new = np.concatenate([graph.weights[v.owner.attrs.weight].ravel() for v in pop.inputs])
        rel = np.sqrt(((new - old) ** 2).sum() / (old**2).sum())
        assert pop.attrs.weight_error == pytest.approx(rel, rel=1e-4)
        assert layers[pop.result.name]["weight_rel_rms_error"] == pop.attrs.weight_error
        assert 0 < rel < 0.2
    assert "weight_error = " in print_graph(graph)


def test_fewer_bits_give_larger_errors():
    errors = []
    for bits in (8, 6, 4, 2):
        graph = normalized()
        convert(graph, f"quantize-weights{{bits={bits}}}")
        errors.append(np.mean([op.attrs.weight_error for op in _populations(graph)]))
    assert errors == sorted(errors) and errors[0] < 0.01 and errors[-1] > 0.2
    graph = normalized()
    convert(graph, "quantize-weights{bits=1}")
    for pop in _populations(graph):  # one bit: every weight is 0 or ± one step
        for v in pop.inputs:
            assert len(np.unique(np.abs(graph.weights[v.owner.attrs.weight]))) <= 2


def test_filtered_population_has_larger_voltage_units():
    """nengo-loihi scales a filtered population's voltages by 1 / u_infactor: the same
    weights give a larger v_scale than without the filter."""
    fmt = choose_format([0.5], 1.0, 0.1, 8)
    _, u_infactor = current_decay(1e-3, 0.003)
    filtered = choose_format([0.5], 1.0, 0.1, 8, u_infactor)
    assert filtered.v_scale == pytest.approx(fmt.v_scale / u_infactor)


def test_golden_input_is_what_scale_rates_makes():
    """The golden input (run by test_golden.py) is scale-rates' output: the same IR text but
    for the weights' hash, and weights equal to float rounding (BLAS kernels differ between
    machines, so the bits may not)."""
    graph = normalized()
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        (GOLDEN / "unet.snnir").write_text(RUN_LINE + print_graph(graph, weights_file="unet.npz"))
        graph.weights.save(GOLDEN / "unet.npz")
    golden = load_ir(GOLDEN / "unet.snnir")

    def without_hash(text: str) -> list[str]:
        return [line for line in text.splitlines() if "sha256" not in line]

    assert without_hash(print_graph(graph, weights_file="unet.npz")) == without_hash(
        print_graph(golden, weights_file="unet.npz"))
    assert sorted(graph.weights) == sorted(golden.weights)
    for name in graph.weights:
        np.testing.assert_allclose(graph.weights[name], golden.weights[name], rtol=1e-4,
                                   atol=1e-6)
