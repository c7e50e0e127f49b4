"""calibrate-spiking: biases corrected from the rates the loihi-mode network really fires."""

from __future__ import annotations

import numpy as np
import pytest
from spiking_models import LOIHI, analog_unet, convert, images

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.formats import BIAS_MAN_MAX
from snncc.ir.ops import IF, Readout
from snncc.pipeline import parse_pipeline

CALIBRATED = f"{LOIHI},calibrate-spiking{{timesteps=40 iterations=3 images=8}}"


def test_measured_rates_move_to_the_rate_model_and_biases_stay_in_loihi_format():
    graph = analog_unet(size=16)
    ctx = convert(graph, CALIBRATED, calibration=images(8, size=16, seed=5))
    assert all(op.attrs.rate_gain > 1 for op in graph.ops_of(IF))  # recorded by scale-rates
    report = ctx.report["calibrate-spiking"]
    errors = report["mean_abs_rate_error"]  # measured before each round's correction
    assert len(errors) == 3 and errors[-1] < 0.5 * errors[0]
    assert report["timesteps"] == 40 and report["images"] == 8 and report["seconds"] > 0
    for op in [*graph.ops_of(IF), *graph.ops_of(Readout)]:
        b = graph.weights[op.attrs.bias].astype(np.float64) * op.attrs.v_scale
        exp = np.ceil(np.log2(np.maximum(np.abs(np.rint(b)) / BIAS_MAN_MAX, 1.0)))
        np.testing.assert_allclose(b, np.rint(b / 2**exp) * 2**exp, atol=1e-3)


def test_without_calibration_images_nothing_changes():
    graph, reference = analog_unet(), analog_unet()
    convert(reference, LOIHI, calibration=images(8, seed=5))
    convert(graph, LOIHI, calibration=images(8, seed=5))
    ctx = convert(graph, "calibrate-spiking")
    assert ctx.report["calibrate-spiking"] == {"skipped": "no calibration images (--calibration)"}
    for op, ref in zip(graph.ops_of(IF), reference.ops_of(IF), strict=True):
        np.testing.assert_array_equal(graph.weights[op.attrs.bias],
                                      reference.weights[ref.attrs.bias])


@pytest.mark.parametrize("option, message", [
    ("timesteps=1", "calibrate-spiking: timesteps must be ≥ 2, got 1"),
    ("iterations=0", "calibrate-spiking: iterations must be ≥ 1, got 0"),
    ("images=0", "calibrate-spiking: images must be ≥ 1, got 0"),
])
def test_bad_options(option, message):
    with pytest.raises(SnnccError) as err:
        parse_pipeline(f"calibrate-spiking{{{option}}}")
    assert message in str(err.value) and err.value.exit_code == 1
