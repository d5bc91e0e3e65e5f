"""A procedural detection dataset: coloured shapes on textured backgrounds, with exact boxes.

Each image holds 1 to ``max_objects`` shapes of the classes ``CLASSES``, each 8% to 40% of the image
side (the size of its drawing square; squares, triangles and stars are randomly rotated inside it),
in a random colour chosen to stand out from the background under it. Backgrounds are a gradient
between two random colours, half of them with sinusoidal stripes, and every pixel gets Gaussian
noise, so a detector has to look at shape, not just at "anything that is not grey".

Boxes are exact: shapes are drawn without anti-aliasing into an owner map (which object each pixel
shows), and a box is the tight box of the pixels its object shows in the final image
(``mask_box``: pixel i covers [i, i + 1)). Objects may overlap, but a new object is rejected when its
box overlaps an earlier one with IoU above 0.5 or would hide more than 40% of an earlier object's
pixels, so every object stays findable.

Deterministic: image i of part p (0 train, 1 val, 2 test) depends only on (seed, p, i), so changing
``n_train`` does not change the val images.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cnnlab.data.detection.records import BoxRecord
from cnnlab.data.detection.writers import write_dataset
from cnnlab.errors import ConfigError

CLASSES = ("circle", "square", "triangle", "star")
SIZE_RANGE = (0.08, 0.40)  # drawing square side, as a fraction of the image side
MAX_IOU = 0.5
MIN_VISIBLE = 0.6  # share of an object's drawn pixels that must stay visible
_TRIES = 20  # placements tried per object before giving up on it
_PLAIN_GREY = 128

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]  # image uint8 [H, W, 3], boxes float32 [N, 4], labels int64 [N]


def make_shapes(
    out_dir: str | os.PathLike[str],
    *,
    n_train: int = 800,
    n_val: int = 100,
    n_test: int = 100,
    size: int = 160,
    fmt: str = "coco",
    seed: int = 0,
    max_objects: int = 6,
) -> Path:
    """Write a shapes dataset to the new folder ``out_dir`` in ``fmt`` ("coco", "yolo" or "voc").

    A split with 0 images is left out (``open_detection`` then carves it from train). Returns ``out_dir``.

    Raises:
        ConfigError: a count is negative, there are no images, ``size`` is under 32 or ``max_objects`` under 1.
        DataError: ``out_dir`` exists and is not empty.
    """
    counts = {"train": n_train, "val": n_val, "test": n_test}
    _check(counts, size, max_objects)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the target so that write_dataset can hard-link the PNGs instead of copying them.
    with tempfile.TemporaryDirectory(prefix=".shapes-", dir=out.parent) as staging:
        splits: dict[str, list[BoxRecord]] = {}
        for part, (split, n) in enumerate(counts.items()):
            if n == 0:
                continue
            records = []
            for i, (image, boxes, labels) in enumerate(_generate(n, size, seed, part, max_objects, plain=False)):
                path = Path(staging, f"{split}_{i:05d}.png")
                Image.fromarray(image).save(path, compress_level=1)  # level 1: 3x faster, files 10% larger
                records.append(BoxRecord(str(path), size, size, boxes, labels))
            splits[split] = records
        return write_dataset(splits, CLASSES, out, fmt)


def shapes_records(
    n: int, size: int = 160, seed: int = 0, *, max_objects: int = 6, plain: bool = False, part: int = 0
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """``n`` images in memory: uint8 ``[n, size, size, 3]`` and (boxes float32 [N, 4] xyxy, labels int64 [N]) each.

    Args:
        n: number of images.
        size: image side in pixels.
        seed: the same seed gives the same images.
        max_objects: objects per image are drawn from 1 .. max_objects (fewer when they do not fit).
        plain: a flat grey background and no noise: every non-grey pixel belongs to an object.
        part: independent streams of one seed; ``make_shapes`` uses 0, 1, 2 for train, val, test.
    """
    _check({"n": n}, size, max_objects)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    targets = []
    for i, (image, boxes, labels) in enumerate(_generate(n, size, seed, part, max_objects, plain)):
        images[i] = image
        targets.append((boxes, labels))
    return images, targets


def mask_box(mask: np.ndarray) -> np.ndarray:
    """The tight box ``[x1, y1, x2, y2]`` (float32, x2 and y2 exclusive) of the True pixels of ``[H, W]``.

    Raises:
        ValueError: the mask is empty.
    """
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if len(cols) == 0:
        raise ValueError("an empty mask has no box")
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def _check(counts: dict[str, int], size: int, max_objects: int) -> None:
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {n!r}")
    if sum(counts.values()) == 0 and "n" not in counts:
        raise ConfigError("n_train + n_val + n_test is 0; ask for at least one image")
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ConfigError(f"size must be an integer of at least 32 (pixels), got {size!r}")
    if isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 1:
        raise ConfigError(f"max_objects must be a positive integer, got {max_objects!r}")


def _generate(n: int, size: int, seed: int, part: int, max_objects: int, plain: bool) -> Iterator[Sample]:
    for i in range(n):
        yield _render(np.random.default_rng([seed, part, i]), size, max_objects, plain)


def _render(rng: np.random.Generator, size: int, max_objects: int, plain: bool) -> Sample:
    image, boxes, labels, _ = render_scene(rng, size, max_objects, plain)
    return image, boxes, labels


def render_scene(
    rng: np.random.Generator,
    size: int,
    max_objects: int,
    plain: bool,
    size_range: tuple[float, float] = SIZE_RANGE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image, its boxes and labels, and its owner map: int16 ``[size, size]``, the object each
    pixel shows (an index into boxes and labels) or -1 for background. Segmentation masks come from it."""
    background = _background(rng, size, plain)
    owner = np.full((size, size), -1, dtype=np.int16)  # which object each pixel shows
    drawn: list[tuple[int, np.ndarray, np.ndarray]] = []  # class, drawn box, colour
    areas: list[int] = []  # pixels drawn per object
    visible: list[int] = []  # pixels still shown per object
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _ in range(_TRIES):
            cls = int(rng.integers(len(CLASSES)))
            side = max(int(round(rng.uniform(*size_range) * size)), 6)
            x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            mask = _shape_mask(cls, side, rng)
            box = mask_box(mask) + np.array([x0, y0, x0, y0], dtype=np.float32)
            if any(_iou(box, other) > MAX_IOU for _, other, _ in drawn):
                continue
            region = owner[y0 : y0 + side, x0 : x0 + side]
            under = region[mask]
            hidden = np.bincount(under[under >= 0], minlength=len(drawn))
            if any(visible[j] - hidden[j] < MIN_VISIBLE * areas[j] for j in range(len(drawn))):
                continue
            covered = [drawn[j][2] for j in np.flatnonzero(hidden)]
            colour = _colour(rng, background[y0 : y0 + side, x0 : x0 + side][mask], covered)
            region[mask] = len(drawn)
            visible = [v - int(h) for v, h in zip(visible, hidden, strict=True)] + [int(mask.sum())]
            areas.append(int(mask.sum()))
            drawn.append((cls, box, colour))
            break
    image = background
    for k, (_, _, colour) in enumerate(drawn):
        image[owner == k] = colour
    if not plain:
        image += rng.normal(0.0, 10.0, image.shape).astype(np.float32)
    boxes = np.array([mask_box(owner == k) for k in range(len(drawn))], dtype=np.float32).reshape(-1, 4)
    labels = np.array([cls for cls, _, _ in drawn], dtype=np.int64)
    return np.clip(image, 0, 255).round().astype(np.uint8), boxes, labels, owner


def _shape_mask(cls: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """A ``[side, side]`` bool mask of one shape, drawn aliased so that it is exactly what is painted."""
    canvas = Image.new("1", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    centre = (side - 1) / 2
    turn = rng.uniform(0, 2 * math.pi)
    name = CLASSES[cls]
    if name == "circle":
        draw.ellipse([0, 0, side - 1, side - 1], fill=1)
    elif name == "square":
        draw.polygon(_polygon(centre, [centre], 4, turn), fill=1)
    elif name == "triangle":
        draw.polygon(_polygon(centre, [centre], 3, turn), fill=1)
    else:  # a five-pointed star, inner radius 45% of the outer
        draw.polygon(_polygon(centre, [centre, 0.45 * centre], 5, turn), fill=1)
    mask = np.array(canvas, dtype=bool)
    if not mask.any():  # cannot happen at side >= 6, but an empty object would break mask_box
        mask[side // 2, side // 2] = True
    return mask


def _polygon(centre: float, radii: list[float], points: int, turn: float) -> list[tuple[float, float]]:
    """Vertices around (centre, centre), alternating between ``radii`` (one radius: a regular polygon)."""
    count = points * len(radii)
    vertices = []
    for k in range(count):
        radius, angle = radii[k % len(radii)], turn + 2 * math.pi * k / count
        vertices.append((centre + radius * math.cos(angle), centre + radius * math.sin(angle)))
    return vertices


def _colour(rng: np.random.Generator, under: np.ndarray, covered: list[np.ndarray]) -> np.ndarray:
    """A random colour at least 150 (summed over channels) from the mean background it covers, and at
    least 100 from the objects it overlaps, so that no edge of an object disappears."""
    mean = under.reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.integers(0, 256, 3).astype(np.float32)
        if np.abs(colour - mean).sum() >= 150 and all(np.abs(colour - c).sum() >= 100 for c in covered):
            return colour
    return np.where(mean > 127, 0.0, 255.0).astype(np.float32)


def _background(rng: np.random.Generator, size: int, plain: bool) -> np.ndarray:
    """Float32 ``[size, size, 3]``: flat grey when ``plain``, else a gradient, half the time with stripes."""
    if plain:
        return np.full((size, size, 3), float(_PLAIN_GREY), dtype=np.float32)
    xx, yy = _grid(size)
    angle = rng.uniform(0, 2 * math.pi)
    t = math.cos(angle) * xx + math.sin(angle) * yy
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    start, end = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    image = start + (end - start) * t[..., None]
    if rng.random() < 0.5:
        turn, frequency = rng.uniform(0, math.pi), rng.uniform(3, 12)
        wave = np.sin(2 * math.pi * frequency * (math.cos(turn) * xx + math.sin(turn) * yy) + rng.uniform(0, 6.3))
        image = image + wave[..., None] * rng.uniform(-40, 40, 3)
    return image.astype(np.float32)


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return xx, yy


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = float(w * h)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union
