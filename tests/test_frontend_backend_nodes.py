"""ONNX's own backend node tests, through import_onnx and the numpy analog run.

Every case of the ops snncc lowers must either match the expected output (with the
backend suite's own tolerance) or be listed in REFUSED with the reason; a listed case must
then be refused by the importer with an SnnccError (never a wrong result or a crash).
Models below opset 11 must be refused with the version_converter advice, and are then
upgraded that way and checked like the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from models.backend_cases import frozen_model, node_cases
from onnx import version_converter

from snncc.diagnostics import SnnccError
from snncc.frontend.onnx import OnnxImportError, import_onnx
from snncc.ir.interp.analog import run_analog

# (pattern matched against the case name, why snncc refuses it)
REFUSED: list[tuple[str, str]] = [
    (r"_u?int\d+", "integer tensors: the analog IR computes in float32"),
    (r"^test_(averagepool|convtranspose)_(1d|3d)", "1-D and 3-D ops: snncc is 2-D (NCHW) only"),
    (r"^test_averagepool_2d_dilations$", "dilated pooling"),
    (r"training", "training-mode BatchNormalization / Dropout (batch statistics, randomness)"),
    (r"^test_dropout_default_mask", "the Dropout mask output is used"),
    (r"^test_identity_(sequence|opt)$", "sequence / optional inputs: snncc compiles tensors"),
    (r"^test_constant$", "no input: the model computes a constant"),
    (r"^test_matmul_(3d|4d|bcast|1d_3d|4d_1d|1d_1d)$",
     "batched or 1-D matrix products (snncc needs a 2-D constant right operand)"),
    (r"^test_(add|sub)_bcast$", "broadcasting between two computed tensors"),
    (r"^test_reshape_allowzero_reordered$", "an empty input tensor (a zero dimension)"),
    (r"^test_resize_.*cubic", "cubic interpolation"),
    (r"^test_resize_upsample_scales_linear_half_pixel_symmetric$",
     "non-integer upsampling factor (2.94)"),
    (r"^test_resize_tf_crop_and_resize", "crop-and-resize"),
    (r"^test_resize_downsample", "downsampling"),
    (r"^test_resize_upsample_sizes_nearest(|_axes_2_3|_axes_3_2|_not_larger)$",
     "non-integer upsampling factors (2 → 7)"),
    (r"^test_resize_upsample_sizes_nearest_(floor_align_corners|round_prefer_ceil_asymmetric"
     r"|ceil_half_pixel)$", "coordinate modes whose nearest pixels are not plain repeats"),
]


def refusal_reason(name: str) -> str | None:
    for pattern, reason in REFUSED:
        if re.search(pattern, name):
            return reason
    return None


CASES = sorted(node_cases())


def test_the_suite_is_there():
    ops = {node_cases()[name].model.graph.node[0].op_type for name in CASES}
    assert len(CASES) > 150
    assert {"Conv", "ConvTranspose", "Resize", "BatchNormalization", "Softmax"} <= ops


def test_every_pattern_matches_a_case():
    unused = [p for p, _ in REFUSED if not any(re.search(p, name) for name in CASES)]
    assert not unused, f"REFUSED entries that match no case (remove them): {unused}"


@pytest.mark.parametrize("name", CASES)
def test_node_case(name: str, tmp_path: Path):
    case = node_cases()[name]
    model, feeds = frozen_model(case)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    opset = model.opset_import[0].version
    if opset < 11:
        with pytest.raises(OnnxImportError, match="version_converter"):
            import_onnx(path)
        onnx.save(version_converter.convert_version(model, 11), str(path))
    reason = refusal_reason(name)
    if reason is not None:
        with pytest.raises(SnnccError):
            import_onnx(path)
        pytest.skip(f"refused as expected: {reason}")
    graph = import_onnx(path)
    outputs = run_analog(graph, feeds)
    assert len(outputs) == len(case.outputs)
    for got, want in zip(outputs, case.outputs, strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-3, atol=1e-7)
