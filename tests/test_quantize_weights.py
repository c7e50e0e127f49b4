"""quantize-weights: Loihi's mantissa/exponent grids, the error recorded in the IR and the
report, fewer bits, synaptic filters, golden IR, and bad options through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from snncc.passes.quantize_weights_loihi import (
    BIAS_MAN_MAX,
    VTH_EXP,
    choose_format,
    current_decay,
)
from spiking_models import analog_unet, convert, images

from snncc.cli.main import main
from snncc.diagnostics import SnnccError
from snncc.ir import print_graph, save_ir
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


def test_golden():
    graph = normalized()
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / "unet.snnir").write_text(RUN_LINE + print_graph(graph, weights_file="unet.npz"))
        graph.weights.save(GOLDEN / "unet.npz")
    assert RUN_LINE + print_graph(graph, weights_file="unet.npz") == (
        GOLDEN / "unet.snnir").read_text()
    convert(graph, "quantize-weights{bits=6}")
    got = print_graph(graph, weights_file="unet.expected.npz")
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        (GOLDEN / "unet.expected.snnir").write_text(got)
        graph.weights.save(GOLDEN / "unet.expected.npz")
    assert got == (GOLDEN / "unet.expected.snnir").read_text()


def test_block_without_weights_is_refused_with_its_node():
    graph = normalized()
    pop = next(graph.ops_of(IF))
    for v in pop.inputs:
        w = graph.weights[v.owner.attrs.weight]
        v.owner.replace_attrs(weight=graph.weights.add(v.owner.attrs.weight.name, w * 0))
    with pytest.raises(SnnccError, match=r"quantize-weights: .*'/enc/Relu'.* does not fit "
                                         r"Loihi's formats: it has no non-zero weights"):
        convert(graph, "quantize-weights")


@pytest.mark.parametrize("bits", ["0", "9"])
def test_cli_bits_outside_1_to_8(tmp_path, capsys, bits):
    path = tmp_path / "g.snnir"
    save_ir(normalized(), path)
    code = main(["opt", str(path), "-p", f"quantize-weights{{bits={bits}}}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"quantize-weights: bits must be in 1..8 (Loihi stores at most 8-bit weight " \
           f"mantissas), got {bits}" in err
    assert "Traceback" not in err
