"""Overlap-tile: tiles cover an image and stitch back exactly, and a slice segmented by the
shipped EM U-Net shows no seams (docs/cli.md, "Seams"): near tile boundaries the
segmentation disagrees with a shifted tiling's within 1 point of how much it does elsewhere.
The ANN (onnxruntime) segments: the compiled SNN computes the same function of each tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snncc.data.images import Tiling, load_labelled
from snncc.diagnostics import SnnccError
from snncc.evaluate import Head, OnnxModel
from snncc.evaluate.seams import seam_check

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "em_unet"


@pytest.mark.parametrize(("size", "margin"), [((64, 64), 0), ((64, 64), 6), ((50, 70), 5),
                                              ((16, 16), 7)])
def test_tiles_cover_and_stitch_back(size, margin):
    image = np.random.default_rng(0).random(size).astype(np.float32)
    tiling = Tiling.plan(size, (16, 16), margin)
    pieces = tiling.cut(image)
    assert pieces.shape == (len(tiling.origins), 16, 16)
    np.testing.assert_allclose(tiling.stitch(pieces), image)
    stacked = np.stack([pieces, 2 * pieces], axis=1)  # channels stitch alike
    np.testing.assert_allclose(tiling.stitch(stacked), np.stack([image, 2 * image]))


def test_first_tile_is_the_mirrored_corner():
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    tiling = Tiling.plan(image.shape, (8, 8), 2)
    assert tiling.origins[0] == (0, 0) and tiling.margin == 2
    np.testing.assert_array_equal(tiling.cut(image)[0][:2, 2], [image[2, 0], image[1, 0]])


def test_default_margin_is_a_quarter_of_the_tile():
    assert Tiling.plan((512, 512), (64, 64)).margin == 16
    assert len(Tiling.plan((512, 512), (64, 64)).origins) == 16 * 16


def test_margin_without_a_centre_is_refused():
    with pytest.raises(SnnccError, match="--margin 8: must be ≥ 0 and leave a tile centre"):
        Tiling.plan((64, 64), (16, 16), 8)


@pytest.fixture(scope="module")
def shipped():
    model = EXAMPLE / "unet.onnx"
    if not model.is_file():
        pytest.skip("examples/em_unet/unet.onnx is not there")
    return OnnxModel(model), load_labelled(EXAMPLE / "data", (20,)).images[0]


def test_no_seams_with_the_default_margin(shipped):
    ann, slice_20 = shipped
    check = seam_check(ann, slice_20, (64, 64), 16, Head("sigmoid"))
    assert check.excess_points <= 1.0, check


def test_plain_tiling_shows_seams(shipped):
    """The check sees the seams of non-overlapping tiles (so the test above can fail)."""
    ann, slice_20 = shipped
    check = seam_check(ann, slice_20, (64, 64), 0, Head("sigmoid"))
    assert check.excess_points > 2.0, check
