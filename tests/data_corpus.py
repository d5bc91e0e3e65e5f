"""Image files good, odd and broken, written with PIL at test time (no binaries in the repository).

Each builder writes one file and returns its path; ``BAD_FILES`` lists the broken ones with the skip
reason each must get, so tests can fill whole folders with them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random pixels: they do not compress, so a cut file loses real image data."""
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def smooth(height: int, width: int) -> np.ndarray:
    """Colour gradients: what JPEG keeps well, so a decoded JPEG can be compared with its source."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 128)], -1).astype(
        np.uint8
    )


def rgb_jpeg(path: Path, size: tuple[int, int] = (24, 32)) -> Path:
    """A smooth image; ``size`` is (H, W) here and everywhere in this module."""
    Image.fromarray(smooth(*size)).save(path, "JPEG", quality=95)
    return path


def rgb_png(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    Image.fromarray(noise(*size, seed=seed)).save(path, "PNG")
    return path


def grey_png(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    Image.fromarray(noise(*size, channels=1, seed=seed), "L").save(path, "PNG")
    return path


def cmyk_jpeg(path: Path, size: tuple[int, int] = (16, 16)) -> Path:
    """Pure red in CMYK: no cyan or black, full magenta and yellow."""
    Image.new("CMYK", (size[1], size[0]), (0, 255, 255, 0)).save(path, "JPEG", quality=95)
    return path


def rgba_png(path: Path, size: tuple[int, int] = (8, 8)) -> Path:
    """Left half fully transparent black, right half opaque blue, pixel (0, W-1) half-transparent red."""
    array = np.zeros((*size, 4), dtype=np.uint8)
    array[:, size[1] // 2 :] = (*BLUE, 255)
    array[0, -1] = (*RED, 128)
    Image.fromarray(array, "RGBA").save(path, "PNG")
    return path


def palette_png(path: Path, transparent: bool, size: tuple[int, int] = (8, 8)) -> Path:
    """Index 0 (black) on the left half, index 1 (green) on the right; index 0 transparent if asked."""
    im = Image.new("P", (size[1], size[0]), 0)
    im.putpalette([0, 0, 0, *GREEN] + [0] * (256 - 2) * 3)
    im.paste(1, (size[1] // 2, 0, size[1], size[0]))
    if transparent:
        im.save(path, "PNG", transparency=0)
    else:
        im.save(path, "PNG")
    return path


def grey16_png(path: Path) -> Path:
    """One row: 0, 32768, 65535 (a 16-bit PNG, mode I;16)."""
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(path, "PNG")
    return path


def grey32_tiff(path: Path) -> Path:
    """One row 0, 32768, 65535 stored as 32-bit integers (mode I), holding 16-bit data."""
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32)).save(path, "TIFF")
    return path


def bilevel_png(path: Path, size: tuple[int, int] = (8, 8)) -> Path:
    """A 1-bit image, white on its top row only."""
    im = Image.new("1", (size[1], size[0]), 0)
    im.paste(1, (0, 0, size[1], 1))
    im.save(path, "PNG")
    return path


def rotated_jpeg(path: Path, size: tuple[int, int] = (20, 40), orientation: int = 6) -> Path:
    """Stored ``size`` (H, W) with a red top-left block, EXIF saying how to turn it upright."""
    array = np.zeros((*size, 3), dtype=np.uint8)
    array[:5, :5] = RED
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_as_image(path: Path) -> Path:
    path.write_text("this is not a picture\n")
    return path


def truncated_jpeg(path: Path) -> Path:
    Image.fromarray(noise(64, 64)).save(path, "JPEG", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_png(path: Path) -> Path:
    rgb_png(path, size=(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bomb_png(path: Path, size: tuple[int, int] = (20000, 20000)) -> Path:
    """A 1-bit PNG declaring ``size`` pixels, with only a sliver of pixel data: a few hundred bytes.

    Its image data cannot be decoded (it stops after a few rows), so a loader that reaches the
    decoder reports it as truncated; only the size check from the header says "too large".
    """
    height, width = size
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    pixels = zlib.compress(row * 4)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


# (file name, reason it must be skipped with, builder)
BAD_FILES: list[tuple[str, str, Callable[[Path], Path]]] = [
    ("empty.jpg", "empty file", empty_file),
    ("text.jpg", "not an image", text_as_image),
    ("cut.jpg", "truncated", truncated_jpeg),
    ("cut.png", "truncated", truncated_png),
    ("bomb.png", "too large", bomb_png),
]
