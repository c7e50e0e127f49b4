"""Do stitched tiles show seams? Segment an image twice — with overlap-tile, and with the
same tiling shifted by half a tile centre — and compare the two where the first tiling's
centres meet (a band around its tile boundaries) with everywhere else.

Without seams a pixel near a tile boundary is decided as reliably as any other, so the two
segmentations disagree there no more than in the interior. A U-Net's border pixels lack
context, so plain tiling (margin 0) shows up as a band of disagreement every tile.
Pixels within one tile of the image border are left out of both counts: there the two
tilings see differently mirrored context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snncc.data.images import Tiling
from snncc.evaluate.metrics import Head

Predict = Callable[[np.ndarray], np.ndarray]  # N×C×h×w inputs → N×C'×h×w outputs


@dataclass(frozen=True)
class SeamCheck:
    """Share of pixels (0..1) on which the tiling and the shifted tiling disagree, in the
    band of `band` pixels either side of the tiling's centre boundaries and elsewhere."""

    margin: int
    band: int
    border: float
    interior: float

    @property
    def excess_points(self) -> float:
        """How much more the band disagrees than the interior, in percentage points."""
        return 100.0 * (self.border - self.interior)


def segment(predict: Predict, image: np.ndarray, tile: tuple[int, int], margin: int,
            channels: int = 1) -> np.ndarray:
    """The stitched output (C×H×W) of one H×W gray image, overlap-tiled."""
    tiling = Tiling.plan(image.shape, tile, margin)
    pieces = tiling.cut(image)[:, None].astype(np.float32)
    return tiling.stitch(predict(np.repeat(pieces, channels, axis=1)))


def _band_mask(tiling: Tiling, band: int) -> np.ndarray:
    """Pixels within `band` of a boundary between two tile centres."""
    mask = np.zeros(tiling.size, bool)
    for axis in (0, 1):
        for start in sorted({o[axis] for o in tiling.origins} - {0}):
            index = [slice(None), slice(None)]
            index[axis] = slice(max(start - band, 0), start + band)
            mask[tuple(index)] = True
    return mask


def seam_check(predict: Predict, image: np.ndarray, tile: tuple[int, int], margin: int,
               head: Head, band: int = 2, channels: int = 1) -> SeamCheck:
    """Disagreement near tile boundaries versus elsewhere between the overlap-tiled
    segmentation of `image` and one whose tiles are shifted by half a centre."""
    shift = (min(tile) - 2 * margin) // 2
    first = head.mask(segment(predict, image, tile, margin, channels))
    shifted_image = np.pad(image, ((shift, 0), (shift, 0)), mode="reflect")
    shifted = head.mask(segment(predict, shifted_image, tile, margin, channels))[shift:, shift:]
    keep = np.zeros(image.shape, bool)
    edge = max(tile)
    keep[edge:-edge, edge:-edge] = True
    near = _band_mask(Tiling.plan(image.shape, tile, margin), band)
    differ = first != shifted
    return SeamCheck(margin, band, float(differ[keep & near].mean()),
                     float(differ[keep & ~near].mean()))
