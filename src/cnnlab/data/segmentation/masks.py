"""Mask folders: images and masks of class ids paired by file stem (2D).

    DIR/images/a.jpg   DIR/masks/a.png         one dataset, split here
    DIR/train/images/...  DIR/train/masks/...  the dataset's own splits (train, val or valid, test)
    DIR/classes.txt                            optional: line i names class i ("name" or "name R G B")

A mask is a single-channel PNG whose values are class ids, or a palette ("P") PNG whose indices are
class ids (VOC style); 255 marks pixels that count for nothing. RGB masks are read only when
classes.txt gives every class that appears its colour. Without classes.txt the classes are
"background", "1", ... up to the largest id seen. BMP, TIFF and GIF masks are read too; JPEG masks
are refused, because lossy compression invents ids along every edge.

Skipped and counted (reason): an image without a mask ("no mask"), a mask without an image ("no
image"), two files with one stem ("duplicate name"), a mask of another size than its image ("size
mismatch"), an id outside the declared classes ("unknown class"), an RGB colour classes.txt does not
declare ("unknown colour"), a colour mask without declared colours ("multi-channel mask"), a float
mask ("bad mask"), a JPEG mask ("lossy mask"), and any file that fails to decode (the image
reasons: "truncated", "corrupt", ...). Every mask is decoded once here; images are only probed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.data.dense_splits import ALL
from cnnlab.data.images import FORMATS, BadImageError, is_image_name, load_image, probe_image
from cnnlab.data.segmentation.records import IGNORE_INDEX, MaskRecord, SegmentationSource
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLIT_ALIASES
from cnnlab.errors import DataError

CLASSES_FILE = "classes.txt"
_ID_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")
_COLOUR_MODES = ("RGB", "RGBA", "RGBX")
_LOSSY = (".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Classes:
    """What classes.txt declares: names (None without the file) and RGB colour -> class id."""

    names: list[str] | None
    colours: dict[int, int]  # colour packed as R << 16 | G << 8 | B


class MaskFolderReader:
    """Loads an image with ``load_image`` and its mask as class ids (``ItemReader`` for 2D folders)."""

    spatial_dims = 2

    def __init__(self, colours: Mapping[int, int] | None = None) -> None:
        self.colours = dict(colours or {})

    def load_image(self, record: MaskRecord, channels: int, max_pixels: int) -> torch.Tensor:
        return load_image(record.image, channels, max_pixels=max_pixels)

    def load_mask(self, record: MaskRecord) -> np.ndarray:
        return read_mask_file(record.mask, self.colours)


def read_mask_folders(root: Path, skipped: SkipReport, *, max_pixels: int) -> SegmentationSource:
    """Read a mask-folder dataset (see the module docstring); every mask is checked.

    Raises:
        DataError: no images/ folder, or a malformed classes.txt.
    """
    root = Path(os.path.abspath(root))
    tops = split_tops(root)
    if not tops:
        raise DataError(f"{root}: no images/ folder; expected images/ and masks/, or train/images and train/masks")
    classes = read_classes(root)
    splits: dict[str, list[MaskRecord]] = {}
    for split, top in tops.items():
        records = splits.setdefault(split, [])
        for image, mask in pair_by_stem(top / "images", top / "masks", _picture_stem, _picture_stem, skipped):
            try:
                records.append(_record(image, mask, top, classes, max_pixels))
            except BadImageError as exc:
                skipped.add(exc.file, exc.reason, exc.detail)
    return SegmentationSource(splits, finish_classes(splits, classes.names), MaskFolderReader(classes.colours))


def split_tops(root: Path) -> dict[str, Path]:
    """Split -> folder holding images/ (train/, val/, test/ under ``root``), or ``{ALL: root}``; {} for neither.

    Raises:
        DataError: two folders name the same split (val/ and valid/).
    """
    found: dict[str, Path] = {}
    for entry in _entries(root):
        split = SPLIT_ALIASES.get(entry.name.lower())
        if split is None or not (entry / "images").is_dir():
            continue
        if split in found:
            raise DataError(f"{root} has both {found[split].name}/ and {entry.name}/ as the {split} split; keep one")
        found[split] = entry
    if not found and (root / "images").is_dir():
        found[ALL] = root
    return found


def pair_by_stem(
    images: Path,
    masks: Path,
    image_stem: Callable[[str], str | None],
    mask_stem: Callable[[str], str | None],
    skipped: SkipReport,
) -> list[tuple[Path, Path | None]]:
    """Each image of ``images`` with the file of ``masks`` of the same stem (None when there is none).

    A stem returns None for files that are not candidates (ignored). Masks without an image are
    counted as "no image", a second file with a stem already taken as "duplicate name".
    """
    found_images = _by_stem(images, image_stem, skipped)
    found_masks = _by_stem(masks, mask_stem, skipped)
    for stem, mask in found_masks.items():
        if stem not in found_images:
            skipped.add(mask, "no image", f"no image named {stem}.* in {images}")
    return [(image, found_masks.get(stem)) for stem, image in found_images.items()]


def read_classes(root: Path) -> Classes:
    """Parse ``root/classes.txt``: line i is "name" or "name R G B"; trailing blank lines are ignored.

    Raises:
        DataError: blank line inside the list, a bad colour, a colour given twice, or over 255 classes.
    """
    file = root / CLASSES_FILE
    if not file.is_file():
        return Classes(None, {})
    try:
        lines = file.read_text(encoding="utf-8-sig").rstrip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    names: list[str] = []
    colours: dict[int, int] = {}
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            raise DataError(f"{file} line {number} is empty; line i names class i, so every line needs a name")
        if len(words) >= 4 and all(w.lstrip("-").isdigit() for w in words[-3:]):
            rgb = [int(w) for w in words[-3:]]
            if not all(0 <= v <= 255 for v in rgb):
                raise DataError(f"{file} line {number}: colour {rgb} must be three values 0..255 (R G B)")
            code = rgb[0] << 16 | rgb[1] << 8 | rgb[2]
            if code in colours:
                raise DataError(f"{file} line {number}: colour {rgb} is already class {colours[code]}; one per class")
            colours[code] = len(names)
            words = words[:-3]
        names.append(" ".join(words))
    if not names or len(names) > IGNORE_INDEX:
        raise DataError(f"{file} names {len(names)} classes; give 1 to {IGNORE_INDEX} (id 255 marks ignored pixels)")
    return Classes(names, colours)


def read_mask_file(path: str | os.PathLike[str], colours: Mapping[int, int]) -> np.ndarray:
    """A mask file as class ids ``[H, W]`` (see the module docstring for the modes read).

    Raises:
        BadImageError: the file does not decode or is not a mask of class ids.
    """
    path = Path(path)
    if path.suffix.lower() in _LOSSY:
        raise BadImageError(path, "lossy mask", "JPEG changes class ids along every edge; save masks as PNG")
    try:
        with Image.open(path, formats=FORMATS) as im:
            im.load()
            mode, array = im.mode, (np.asarray(im.convert("RGB")) if im.mode in _COLOUR_MODES else np.asarray(im))
    except FileNotFoundError:
        raise BadImageError(path, "missing file", "no such file") from None
    except Exception as exc:  # Pillow signals damage with many types; probe_image names them
        reason = "truncated" if "truncat" in str(exc).lower() else "corrupt"
        raise BadImageError(path, reason, f"{type(exc).__name__}: {exc}"[:200]) from None
    if mode in _ID_MODES:
        return array.astype(np.uint8) if array.dtype == np.bool_ else array
    if mode in _COLOUR_MODES and colours:
        return _colour_ids(array, colours, path)
    if mode == "F":
        raise BadImageError(path, "bad mask", "float pixels; save class ids as an 8-bit single-channel PNG")
    how = "add 'name R G B' lines to classes.txt for RGB masks, or save" if mode in _COLOUR_MODES else "save"
    raise BadImageError(path, "multi-channel mask", f"mode {mode}; {how} masks as single-channel PNGs of class ids")


def summarise_mask(
    ids: np.ndarray, file: str | os.PathLike[str], declared: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Class ids present and pixels per id (up to the largest present) of a mask, ids checked.

    Raises:
        BadImageError: "unknown class": an id at or above ``declared`` (or above 254), or negative.
    """
    limit = declared if declared is not None else IGNORE_INDEX
    kept = ids[ids != IGNORE_INDEX]
    bad = kept[(kept < 0) | (kept >= limit)]
    if bad.size:
        value = bad.reshape(-1)[0].item()
        count = int((kept == value).sum())
        said = f"classes.txt declares {declared} (0..{declared - 1})" if declared else "ids must be 0..254"
        raise BadImageError(
            file, "unknown class", f"class id {value:g} in {count} pixels; {said}, and 255 marks ignored pixels"
        )
    counts = np.bincount(kept.reshape(-1).astype(np.intp, copy=False))
    return np.flatnonzero(counts), counts.astype(np.int64)


def finish_classes(splits: Mapping[str, list[MaskRecord]], names: list[str] | None) -> list[str]:
    """The class names (declared, or "background", "1", ... up to the largest id), and each record's
    pixel counts padded to that many classes."""
    records = [r for found in splits.values() for r in found]
    if names is None:
        largest = max((int(r.labels[-1]) for r in records if len(r.labels)), default=0)
        names = ["background", *(str(i) for i in range(1, largest + 1))]
    for record in records:
        if record.pixels is not None:
            record.pixels = np.pad(record.pixels, (0, max(len(names) - len(record.pixels), 0)))
    return list(names)


def _record(image: Path, mask: Path | None, top: Path, classes: Classes, max_pixels: int) -> MaskRecord:
    """The record of one pair, its mask decoded and checked; BadImageError says why it is unusable."""
    if mask is None:
        raise BadImageError(image, "no mask", f"no mask named {image.stem}.png in {top / 'masks'}")
    info = probe_image(image, max_pixels=max_pixels)
    probe_image(mask, max_pixels=max_pixels)  # refuses a decompression bomb before it is decoded
    ids = read_mask_file(mask, classes.colours)
    if ids.shape != info.size:
        size = f"mask {ids.shape[1]}x{ids.shape[0]}, image {info.size[1]}x{info.size[0]} (W x H)"
        raise BadImageError(mask, "size mismatch", f"{size}; masks must match their image pixel for pixel")
    labels, counts = summarise_mask(ids, mask, len(classes.names) if classes.names is not None else None)
    return MaskRecord(str(image), str(mask), info.size, labels, grey=info.grey, pixels=counts)


def _colour_ids(rgb: np.ndarray, colours: Mapping[int, int], path: Path) -> np.ndarray:
    packed = rgb[..., 0].astype(np.int64) << 16 | rgb[..., 1].astype(np.int64) << 8 | rgb[..., 2]
    values, inverse = np.unique(packed.reshape(-1), return_inverse=True)
    table = np.array([colours.get(int(v), -1) for v in values], dtype=np.int64)
    unknown = np.flatnonzero(table < 0)
    if len(unknown):
        code = int(values[unknown[0]])
        count = int((inverse == unknown[0]).sum())
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        detail = f"colour ({code >> 16}, {code >> 8 & 255}, {code & 255}) in {count} pixels{more}"
        raise BadImageError(path, "unknown colour", f"{detail} is not declared in {CLASSES_FILE}; add a line for it")
    return table[inverse].reshape(packed.shape).astype(np.uint8)


def _picture_stem(name: str) -> str | None:
    return Path(name).stem if is_image_name(name) else None


def _by_stem(folder: Path, stem_of: Callable[[str], str | None], skipped: SkipReport) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in _entries(folder, files=True):
        stem = stem_of(entry.name)
        if stem is None:
            continue
        if stem in found:
            skipped.add(entry, "duplicate name", f"{found[stem].name} has the same stem; it is used, this one is not")
        else:
            found[stem] = entry
    return found


def _entries(folder: Path, files: bool = False) -> list[Path]:
    """Visible sub-folders (or files) of ``folder``, sorted; none when it cannot be listed."""
    try:
        return sorted(
            p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_file() if files else p.is_dir())
        )
    except OSError:
        return []
