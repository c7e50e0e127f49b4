"""Images, labels and calibration sets: loading, and cutting them to the model's input.

Accepted layouts:

- a directory with `image/N.png` and (for evaluation) `label/N.png`, N = 0, 1, ... as in
  the ISBI 2012 set (8-bit gray; labels 255 = foreground, i.e. cell interior);
- a directory of images (`*.png`, `*.tif`, ...) without labels (calibration only);
- an `.npy` array of images, N×C×H×W, N×H×W or H×W, values as the model expects.

Pixels are scaled to [0, 1]. Images larger than the model input are covered by overlapping
tiles (`Tiling`: overlap-tile with mirrored borders, each tile contributing its centre);
`random_crops` draws seeded crops instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snncc.diagnostics import SnnccError, UsageError
from snncc.ir.types import TensorType

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class LabelledImages:
    """Gray images in [0, 1] (N×H×W float32), foreground masks (N×H×W bool), their names."""

    images: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]


def _numeric_key(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def read_gray(path: Path) -> np.ndarray:
    """An image as gray values in [0, 1]: 8-bit scaled by 255, 16-bit gray by 65535."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16"):
                return np.asarray(im, dtype=np.float32) / 65535.0
            if im.mode in ("I", "F"):
                raise SnnccError(f"{path}: a 32-bit ({im.mode}) image; snncc reads 8- and "
                                 "16-bit images: save it as one, or as an .npy array")
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise SnnccError(f"{path}: not a readable image: {err}") from None


def _image_files(directory: Path) -> list[Path]:
    return sorted((p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                  key=_numeric_key)


MAX_INDICES = 100_000


def parse_indices(text: str) -> tuple[int, ...]:
    """`20-24` or `1,3,5-7` → image indices (for `--indices`)."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"--indices '{text}': expected numbers and ranges like 20-24 or 1,3")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise SnnccError(f"--indices '{text}': range {part} runs backwards")
        if len(out) + hi - lo + 1 > MAX_INDICES:
            raise SnnccError(f"--indices '{text}' selects more than {MAX_INDICES:,} images; "
                             "name the images the data directory holds")
        out.extend(range(lo, hi + 1))
    if not out:
        raise UsageError(f"--indices '{text}' selects no images")
    return tuple(out)


def check_values(array: np.ndarray, source: str) -> np.ndarray:
    """`array` as float32, refusing non-numeric arrays and NaN or infinite values."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SnnccError(f"{source}: holds {array.dtype} values, not numbers; save the images "
                         "as a numeric array")
    values = np.asarray(array, dtype=np.float32)
    bad = int(values.size - np.isfinite(values).sum())
    if bad:
        raise SnnccError(f"{source}: {bad} of {values.size} values are NaN or infinite "
                         "(or overflow float32); give finite pixel values")
    return values


def load_labelled(directory: Path, indices: Sequence[int] | None = None) -> LabelledImages:
    """`directory/image/*.png` with `directory/label/*.png` of the same names."""
    image_dir, label_dir = directory / "image", directory / "label"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise SnnccError(f"{directory}: expected subdirectories image/ and label/ holding "
                         "N.png files (labels: 255 = foreground)")
    files = _image_files(image_dir)
    if indices is not None:
        by_stem = {p.stem: p for p in files}
        missing = [i for i in indices if str(i) not in by_stem]
        if missing:
            raise SnnccError(f"{image_dir}: no image {missing[0]}.png (indices asked for: "
                             f"{', '.join(map(str, indices))})")
        files = [by_stem[str(i)] for i in indices]
    if not files:
        raise SnnccError(f"{image_dir}: no images found")
    images, labels = [], []
    for path in files:
        label_path = label_dir / path.name
        if not label_path.is_file():
            raise SnnccError(f"{label_path}: label missing for image {path}")
        image, label = read_gray(path), read_gray(label_path)
        if image.shape != label.shape:
            raise SnnccError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but "
                             f"its image is {image.shape[1]}x{image.shape[0]}")
        images.append(image)
        labels.append(label > 0.5)
    if len({im.shape for im in images}) != 1:
        raise SnnccError(f"{image_dir}: images differ in size; use images of one size")
    return LabelledImages(np.stack(images), np.stack(labels), tuple(p.stem for p in files))


def tile_origins(size: int, tile: int) -> list[int]:
    """Start offsets of tiles of length `tile` covering `size` (the last one flush with the
    end, so tiles may overlap there)."""
    if tile > size:
        raise ValueError(f"tile {tile} is larger than the image ({size})")
    starts = list(range(0, size - tile + 1, tile))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def default_margin(tile: tuple[int, int]) -> int:
    """A quarter of the tile: 16 pixels for the shipped EM U-Net's 64×64 input, where seams
    vanish (measured: docs/cli.md, "Seams")."""
    return min(tile) // 4


@dataclass(frozen=True)
class Tiling:
    """Overlap-tile (Ronneberger et al. 2015): how an H×W image is covered by model-sized
    tiles and their outputs put back together.

    The image is mirrored by `margin` pixels at its borders. Tiles step by their centre,
    the tile less `margin` on each side, so that the centres cover the image (the last row
    and column of tiles flush with its end); each tile contributes only its centre, whose
    pixels saw at least `margin` pixels of context on every side. Where centres overlap
    (at the last row and column) their outputs are averaged. `margin` 0 is plain tiling.
    `origins` are the tiles' top-left corners in the mirrored image.
    """

    size: tuple[int, int]
    tile: tuple[int, int]
    margin: int
    origins: tuple[tuple[int, int], ...]

    @classmethod
    def plan(cls, size: tuple[int, int], tile: tuple[int, int], margin: int | None = None
             ) -> Tiling:
        """The tiles that cover an image of `size` (H, W) with `tile`-sized inputs (margin
        None: `default_margin`)."""
        margin = default_margin(tile) if margin is None else margin
        if margin < 0 or 2 * margin >= min(tile):
            raise SnnccError(f"--margin {margin}: must be ≥ 0 and leave a tile centre, i.e. "
                             f"below {(min(tile) + 1) // 2} for {tile[1]}x{tile[0]} tiles")
        if size[0] < tile[0] - 2 * margin or size[1] < tile[1] - 2 * margin:
            raise SnnccError(f"an image of {size[1]}x{size[0]} is smaller than a tile centre "
                             f"({tile[1] - 2 * margin}x{tile[0] - 2 * margin}); use a smaller "
                             "--margin")
        rows = tile_origins(size[0], tile[0] - 2 * margin)
        cols = tile_origins(size[1], tile[1] - 2 * margin)
        return cls(size, tile, margin, tuple((r, c) for r in rows for c in cols))

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The tiles (n×h×w) of one H×W image, mirrored at its borders."""
        m = self.margin
        padded = np.pad(image, m, mode="reflect") if m else image
        h, w = self.tile
        return np.stack([padded[r:r + h, c:c + w] for r, c in self.origins])

    def stitch(self, pieces: np.ndarray) -> np.ndarray:
        """Per-pixel outputs of the tiles (n×...×h×w) → the image's (...×H×W): each tile's
        centre at its place, overlapping centres averaged."""
        m = self.margin
        h, w = self.tile[0] - 2 * m, self.tile[1] - 2 * m
        total = np.zeros((*pieces.shape[1:-2], *self.size), np.float64)
        count = np.zeros(self.size, np.float64)
        for piece, (r, c) in zip(pieces, self.origins, strict=True):
            total[..., r:r + h, c:c + w] += piece[..., m:m + h, m:m + w]
            count[r:r + h, c:c + w] += 1
        return (total / count).astype(np.float32)


def random_crops(images: np.ndarray, labels: np.ndarray, count: int, height: int, width: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` seeded random crops per image: (N·count, height, width) images and labels."""
    rng = np.random.default_rng(seed)
    _, rows, cols = images.shape
    if height > rows or width > cols:
        raise SnnccError(f"crops of {width}x{height} do not fit images of {cols}x{rows}")
    xs, ys = [], []
    for image, label in zip(images, labels, strict=True):
        for _ in range(count):
            r = int(rng.integers(rows - height + 1))
            c = int(rng.integers(cols - width + 1))
            xs.append(image[r:r + height, c:c + width])
            ys.append(label[r:r + height, c:c + width])
    return np.stack(xs), np.stack(ys)


def _as_batch(array: np.ndarray, expected: TensorType, source: str) -> np.ndarray:
    """N×C×H×W float32 from an array of images; tiles images larger than the input."""
    _, channels, height, width = expected.shape
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 3:
        array = array[:, None] if channels == 1 or array.shape[0] != channels else array[None]
    if array.ndim != 4 or array.shape[1] != channels:
        raise SnnccError(f"{source}: calibration data of shape {list(array.shape)} does not "
                         f"fit the model input {expected}: expected N×{channels}×H×W images "
                         f"with H ≥ {height} and W ≥ {width}")
    if array.shape[2] < height or array.shape[3] < width:
        raise SnnccError(f"{source}: calibration images are {array.shape[3]}x{array.shape[2]}, "
                         f"smaller than the model input {width}x{height}")
    if array.shape[2:] == (height, width):
        return array
    rows = tile_origins(array.shape[2], height)
    cols = tile_origins(array.shape[3], width)
    return np.stack([a[:, r:r + height, c:c + width]
                     for a in array for r in rows for c in cols])


def load_calibration(path: Path, expected: TensorType) -> np.ndarray:
    """Calibration images for data-based passes as an N×C×H×W batch of the model input.

    `path` is an `.npy` array, a directory with `image/`, or a directory of images; images
    larger than the model input are tiled.
    """
    if path.suffix == ".npy":
        if not path.is_file():
            raise SnnccError(f"{path}: calibration file not found")
        try:
            array = check_values(np.load(path, allow_pickle=False), str(path))
        except (OSError, ValueError, EOFError) as err:
            raise SnnccError(f"{path}: not a readable .npy array: {err}") from None
    elif path.is_dir():
        directory = _calibration_dir(path)
        files = _image_files(directory)
        if not files:
            raise SnnccError(f"{directory}: no calibration images (expected *.png files or an "
                             "image/ subdirectory)")
        images = [read_gray(p) for p in files]
        if len({im.shape for im in images}) != 1:
            raise SnnccError(f"{directory}: calibration images differ in size")
        array = np.stack(images)
    else:
        raise SnnccError(f"{path}: calibration data must be an .npy file or a directory of "
                         "images")
    if array.size == 0:
        raise SnnccError(f"{path}: the calibration set is empty")
    return _as_batch(array, expected, str(path))


def _calibration_dir(path: Path) -> Path:
    return path / "image" if (path / "image").is_dir() else path


def describe_calibration(path: Path, batch: np.ndarray) -> dict[str, object]:
    """What `load_calibration(path)` used, for report.json: the source, how many images
    and model inputs, and the image files (resolved paths) when it read a directory."""
    facts: dict[str, object] = {"source": str(path.resolve()), "model_inputs": len(batch)}
    if path.is_dir():
        files = _image_files(_calibration_dir(path))
        facts.update(images=len(files), files=[str(p.resolve()) for p in files])
    return facts


def calibration_overlap(calibration: dict[str, object] | None, data: Path,
                        names: Sequence[str]) -> list[str]:
    """Names of the evaluated images (`data/image/<name>.*`) that were also calibration
    images, as report.json's `calibration` records them."""
    used = set(calibration.get("files", [])) if calibration else set()
    image_dir = data / "image"
    return [n for n in names
            if any(str(p.resolve()) in used for p in image_dir.glob(f"{n}.*"))]


def check_calibration(images: np.ndarray | None, expected: TensorType, who: str) -> np.ndarray:
    """Validate a calibration batch given in memory (PassContext.calibration)."""
    if images is None:
        raise SnnccError(f"{who}: no calibration data")
    array = np.asarray(images, dtype=np.float32)
    if array.size == 0 or (array.ndim >= 1 and array.shape[0] == 0):
        raise SnnccError(f"{who}: the calibration set is empty; give at least one image")
    if array.ndim != 4 or array.shape[1:] != expected.shape[1:]:
        raise SnnccError(f"{who}: calibration data of shape {list(array.shape)} does not fit "
                         f"the model input {expected}; expected N×"
                         f"{'×'.join(map(str, expected.shape[1:]))} (load images with "
                         "snncc.data.images.load_calibration to tile larger ones)")
    return array
