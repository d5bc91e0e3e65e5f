"""Procedural segmentation sets with exact masks: 2D shapes on textured backgrounds, 3D shapes in noisy volumes.

2D (classes background, circle, square, triangle, star): the detection generator's scenes
(``detection.shapes.render_scene``), whose owner map says which object every pixel shows; the mask
is that map with each object replaced by its class id, so it is exact to the pixel. Shapes are 15%
to 45% of the side here (detection: 8% to 40%) and at most 4 per image: a shape of 10 px at 128 px
is a blob whose class no network can tell, and it would cap the mIoU a benchmark can reach.

3D (classes background, ellipsoid, box, cylinder): 2 to 4 randomly rotated solids per volume of
``size``^3 voxels with spacing (2, 1, 1) mm (z, y, x): anisotropic like most CT and MR, so a model
must respect spacing. Solids are tested at voxel centres in mm, so masks are exact. The background
varies smoothly (a gradient plus a slow wave); each class has its own mean intensity, jittered per
object, and Gaussian noise (sigma 0.1) makes neighbouring classes overlap voxel by voxel: intensity
narrows the class down, shape decides it.

Deterministic: item i of part p (0 train, 1 val, 2 test) depends only on (seed, p, i), and files
are written byte for byte the same (PNG; .npz with fixed zip timestamps; NIfTI through nibabel's
deterministic gzip).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.data.detection.shapes import render_scene
from cnnlab.data.segmentation.records import IGNORE_INDEX
from cnnlab.errors import ConfigError, DataError

CLASSES_2D = ("background", "circle", "square", "triangle", "star")
CLASSES_3D = ("background", "ellipsoid", "box", "cylinder")
SIZE_RANGE_2D = (0.15, 0.45)
MAX_OBJECTS_2D = 4
SPACING_3D = (2.0, 1.0, 1.0)  # mm, (z, y, x)
MEANS_3D = (0.45, 0.65, 0.85)  # intensity of each foreground class; background lies in 0.05 .. 0.35
NOISE_3D = 0.1
MIN_VISIBLE = 0.6  # share of a solid's voxels that must stay visible under later ones
_DEFAULTS = {2: ((800, 100, 100), 128), 3: ((96, 16, 16), 48)}
_FORMATS = {2: ("png",), 3: ("npz", "nifti")}


def make_segment_shapes(
    out_dir: str | os.PathLike[str],
    *,
    dims: int = 2,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    size: int | None = None,
    seed: int = 0,
    fmt: str | None = None,
) -> Path:
    """Write a shapes set to the new folder ``out_dir``, in train/ val/ test/ folders and with classes.txt.

    Args:
        out_dir: must not exist, or be empty.
        dims: 2 (images/*.png + masks/*.png, palette PNGs) or 3 (volumes).
        n_train: items of train (default 800 for 2D, 96 for 3D); a split of 0 is left out.
        n_val: items of val (default 100 / 16).
        n_test: items of test (default 100 / 16).
        size: image side in pixels (default 128) or volume side in voxels (default 48).
        seed: the same seed writes the same bytes.
        fmt: 3D only: "npz" (default; images/*.npz with image, label and spacing) or "nifti"
            (images/*.nii.gz + labels/*.nii.gz, needs nibabel).

    Raises:
        ConfigError: a bad count, size, ``dims`` or ``fmt``.
        DataError: ``out_dir`` exists and is not empty.
    """
    if dims not in _DEFAULTS:
        raise ConfigError(f"dims must be 2 (images) or 3 (volumes), got {dims!r}")
    (d_train, d_val, d_test), d_size = _DEFAULTS[dims]
    counts = {"train": d_train if n_train is None else n_train, "val": d_val if n_val is None else n_val}
    counts["test"] = d_test if n_test is None else n_test
    size = d_size if size is None else size
    fmt = fmt or _FORMATS[dims][0]
    _check(counts, size, dims, fmt)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not empty; give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".segment-shapes-", dir=out.parent))
    try:
        for part, (split, n) in enumerate(counts.items()):
            for i in range(n):
                _write_item(staging / split, f"{i:05d}", dims, size, seed, part, i, fmt)
        names = CLASSES_2D if dims == 2 else CLASSES_3D
        (staging / "classes.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def shapes_sample(
    index: int, *, dims: int = 2, size: int | None = None, seed: int = 0, part: int = 0
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Item ``index`` of part ``part`` in memory: (image, mask, spacing).

    2D: image uint8 ``[size, size, 3]``, mask uint8 ``[size, size]``; 3D: image float32 ``[size] * 3``,
    mask uint8 of the same shape; spacing (y, x) or (z, y, x) in mm.
    """
    size = _DEFAULTS[dims][1] if size is None else size
    rng = np.random.default_rng([seed, part, index])
    if dims == 2:
        image, _, labels, owner = render_scene(rng, size, MAX_OBJECTS_2D, plain=False, size_range=SIZE_RANGE_2D)
        classes = np.concatenate([[0], labels + 1]).astype(np.uint8)
        return image, classes[owner.astype(np.int64) + 1], (1.0, 1.0)
    image, mask = _volume(rng, size)
    return image, mask, SPACING_3D


def _write_item(folder: Path, stem: str, dims: int, size: int, seed: int, part: int, index: int, fmt: str) -> None:
    image, mask, spacing = shapes_sample(index, dims=dims, size=size, seed=seed, part=part)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    if dims == 2:
        (folder / "masks").mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / "images" / f"{stem}.png", compress_level=1)
        palette_png(mask).save(folder / "masks" / f"{stem}.png", optimize=False)
    elif fmt == "npz":
        arrays = {"image": image, "label": mask, "spacing": np.asarray(spacing, dtype=np.float64)}
        _write_npz(folder / "images" / f"{stem}.npz", arrays)
    else:
        from cnnlab.data.segmentation.volumes import nibabel

        nib = nibabel()
        (folder / "labels").mkdir(exist_ok=True)
        affine = np.diag([*spacing[::-1], 1.0])  # NIfTI axes are (x, y, z): our (z, y, x) reversed
        for array, sub in ((image, "images"), (mask, "labels")):
            nib.save(
                nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine), folder / sub / f"{stem}.nii.gz"
            )


def palette_png(mask: np.ndarray) -> Image.Image:
    """A "P" mode image whose indices are the class ids of ``mask``, coloured for people to look at."""
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(_palette())
    return image


@lru_cache(maxsize=1)
def _palette() -> list[int]:
    """VOC's colour map: the bits of k spread over the high bits of R, G and B; 255 cream."""
    k = np.arange(256)
    colours = np.zeros((256, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= ((k >> (3 * bit + channel)) & 1) << (7 - bit)
    colours[IGNORE_INDEX] = (224, 224, 192)
    return colours.reshape(-1).tolist()


def _volume(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 image and uint8 label ``[size, size, size]`` (see the module docstring)."""
    spacing = np.asarray(SPACING_3D, dtype=np.float32)
    extent = spacing * size
    grid = (np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1) + 0.5) * spacing  # [D, H, W, 3] mm
    label = np.zeros((size,) * 3, dtype=np.uint8)
    owner = np.full((size,) * 3, -1, dtype=np.int16)
    areas: list[int] = []
    means: list[float] = []
    for _ in range(int(rng.integers(3, 6))):
        for _ in range(20):
            cls = int(rng.integers(1, len(CLASSES_3D)))
            inside = _solid(rng, cls, grid, extent, size)
            hidden = np.bincount(owner[inside & (owner >= 0)], minlength=len(areas))
            visible = np.bincount(owner[owner >= 0], minlength=len(areas))
            if inside.sum() < 30 or any(visible[j] - hidden[j] < MIN_VISIBLE * areas[j] for j in range(len(areas))):
                continue
            owner[inside], label[inside] = len(areas), cls
            areas.append(int(inside.sum()))
            means.append(MEANS_3D[cls - 1] + rng.uniform(-0.05, 0.05))
            break
    direction = rng.normal(size=3)
    t = (grid / extent - 0.5) @ (direction / np.linalg.norm(direction))  # about -0.9 .. 0.9
    wave = np.sin(2 * math.pi * rng.uniform(0.5, 1.5) * (grid[..., 1] / extent[1]) + rng.uniform(0, 2 * math.pi))
    image = 0.2 + 0.1 * t + 0.04 * wave
    for k, mean in enumerate(means):
        image[owner == k] = mean
    image = image + rng.normal(0.0, NOISE_3D, image.shape)
    return image.astype(np.float32), label


def _solid(rng: np.random.Generator, cls: int, grid: np.ndarray, extent: np.ndarray, size: int) -> np.ndarray:
    """bool ``[D, H, W]``: voxel centres inside one randomly rotated solid of class ``cls``."""
    scale = float(extent[1:].mean())  # the in-plane field of view, mm
    name = CLASSES_3D[cls]
    if name == "ellipsoid":
        axes = rng.uniform(0.16, 0.32, 3) * scale
        bound = axes.max()
    elif name == "box":
        axes = rng.uniform(0.11, 0.24, 3) * scale
        bound = float(np.linalg.norm(axes))
    else:  # cylinder: radius, radius, half-height
        radius, half = rng.uniform(0.10, 0.20) * scale, rng.uniform(0.20, 0.40) * scale
        axes, bound = np.array([radius, radius, half]), math.hypot(radius, half)
    low = np.minimum(0.7 * bound, extent / 2)
    centre = rng.uniform(low, extent - low)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a random orthogonal frame
    local = (grid - centre) @ rotation
    if name == "ellipsoid":
        return ((local / axes) ** 2).sum(axis=-1) <= 1.0
    if name == "box":
        return (np.abs(local) <= axes).all(axis=-1)
    return (((local[..., :2] / axes[:2]) ** 2).sum(axis=-1) <= 1.0) & (np.abs(local[..., 2]) <= axes[2])


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with a fixed timestamp per member, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=1)


def _check(counts: dict[str, int], size: int, dims: int, fmt: str) -> None:
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"n_{name} must be a non-negative integer, got {n!r}")
    if sum(counts.values()) == 0:
        raise ConfigError("n_train + n_val + n_test is 0; ask for at least one item")
    smallest = 32 if dims == 2 else 16
    if isinstance(size, bool) or not isinstance(size, int) or size < smallest:
        raise ConfigError(f"size must be an integer of at least {smallest} for {dims}D, got {size!r}")
    if fmt not in _FORMATS[dims]:
        raise ConfigError(f"fmt for {dims}D shapes must be one of {', '.join(_FORMATS[dims])}, not {fmt!r}")
