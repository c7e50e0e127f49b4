"""ISBI 2012 EM slices: loading, seeded random-crop sampling, fixed crop grids.

Slices 0-19 train, 20-24 validate. The rate statistics exported with a model (which set the
converted SNN's firing-rate scales) are measured on :func:`calibration_crops` of the
training slices only, since every SNN accuracy is scored on the validation slices.

The network works on 64x64 crops: the converted SNN must run in nengo-loihi's emulator
(slow: cost grows with neuron count and timesteps) and must tile into Loihi cores, and at
4 nm/px a 64 px crop (256 nm) still spans several cell profiles and their membranes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN_SLICES = tuple(range(20))
VAL_SLICES = tuple(range(20, 25))
CROP = 64


def load_slices(indices: tuple[int, ...], root: Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Images in [0, 1] and labels in {0, 1} (1 = cell interior), float32, (n, H, W)."""
    images = [np.asarray(Image.open(root / "image" / f"{i}.png").convert("L")) for i in indices]
    labels = [np.asarray(Image.open(root / "label" / f"{i}.png").convert("L")) for i in indices]
    image = np.stack(images).astype(np.float32) / 255.0
    label = (np.stack(labels) > 127).astype(np.float32)
    return image, label


@dataclass
class CropSampler:
    """Seeded random crops with optional dihedral augmentation (flips and 90-degree turns).

    EM sections have no preferred orientation, so all 8 symmetries of the square are valid
    training samples. :meth:`sample` returns arrays of shape (batch, 1, crop, crop).
    """

    images: np.ndarray
    labels: np.ndarray
    crop: int = CROP
    augment: bool = True
    seed: int = 0
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.images.shape != self.labels.shape or self.images.ndim != 3:
            raise ValueError("images and labels must have the same (n, H, W) shape")
        if self.crop > min(self.images.shape[1:]):
            raise ValueError(f"crop {self.crop} larger than the slices")
        self.rng = np.random.default_rng(self.seed)

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        n, height, width = self.images.shape
        xs = np.empty((batch, 1, self.crop, self.crop), dtype=np.float32)
        ys = np.empty_like(xs)
        for b in range(batch):
            i = self.rng.integers(n)
            r = self.rng.integers(height - self.crop + 1)
            c = self.rng.integers(width - self.crop + 1)
            window = np.s_[i, r : r + self.crop, c : c + self.crop]
            x, y = self.images[window], self.labels[window]
            if self.augment:
                k = int(self.rng.integers(4))
                x, y = np.rot90(x, k), np.rot90(y, k)
                if self.rng.integers(2):
                    x, y = x[:, ::-1], y[:, ::-1]
            xs[b, 0], ys[b, 0] = x, y
        return xs, ys


def grid_crops(
    images: np.ndarray, labels: np.ndarray, crop: int = CROP
) -> tuple[np.ndarray, np.ndarray]:
    """All non-overlapping crop x crop tiles of every slice, row-major; (N, 1, crop, crop)."""
    n, height, width = images.shape
    rows, cols = height // crop, width // crop

    def tile(a: np.ndarray) -> np.ndarray:
        a = a[:, : rows * crop, : cols * crop].reshape(n, rows, crop, cols, crop)
        return np.ascontiguousarray(a.transpose(0, 1, 3, 2, 4).reshape(-1, 1, crop, crop))

    return tile(images), tile(labels)


def calibration_crops(root: Path = DATA_DIR) -> np.ndarray:
    """The crops a model's exported rate statistics are measured on: every non-overlapping
    crop of the training slices 0-19 (20 x 64 = 1280 of 64x64, row-major, no augmentation;
    a fixed set, no randomness), never the validation slices the SNN is scored on."""
    return grid_crops(*load_slices(TRAIN_SLICES, root))[0]
