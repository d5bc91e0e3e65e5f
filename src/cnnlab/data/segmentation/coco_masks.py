"""COCO polygons and RLE as semantic masks: one class id per pixel, painted from the annotations.

The files are found as for detection (``detection.coco``: a .json file, or a folder with
annotations/instances_train.json and the like). Each annotation's "segmentation" is a list of polygons
``[[x1, y1, x2, y2, ...], ...]``, an uncompressed RLE ``{"counts": [...], "size": [h, w]}`` or a
compressed one (``counts`` a string). The semantic mask of an image:

    0                   background (every pixel no annotation covers)
    k + 1               category k, categories in sorted id order; names ["background", *category names]
    255 (IGNORE_INDEX)  crowd regions (iscrowd=1): many objects, no single class, so no loss there

Annotations are painted in file order, each over those before it (a later person covers the earlier
bicycle where they overlap). Masks are rendered when an item is loaded (pycocotools); at open time
annotations are checked for shape, and RLEs decoded once to prove them sound. Pixel counts per class
come from the annotations' "area" fields where every annotation of an image has one (overlaps
counted twice), else from rendering the mask once when they are asked for.

Skipped and counted (reason): annotations of an undeclared image or category ("unknown image",
"unknown category"), without a usable segmentation or with an RLE of another size than its image
("bad annotation"), malformed image entries ("bad image entry", "duplicate image id"), and images
that fail the probe. A file width/height that disagrees with the image is noted ("size mismatch");
the image wins. Polygons of fewer than 3 points are dropped from their annotation silently.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.detection.coco import _images, _is_int, load_coco_files, probed_images
from cnnlab.data.images import BadImageError, load_image
from cnnlab.data.segmentation.records import IGNORE_INDEX, MaskRecord, SegmentationSource
from cnnlab.data.skips import SkipReport
from cnnlab.errors import DataError

Region = tuple[int, Any]  # (class id or IGNORE_INDEX, segmentation)
_SEGMENTATION = re.compile(rb'"segmentation"\s*:\s*(\[\s*\[|\{)')  # a polygon list or an RLE, not []
_SCAN_CHUNK = 1 << 20


class CocoMaskReader:
    """Loads an image with ``load_image`` and paints its mask from the record's regions (``ItemReader``)."""

    spatial_dims = 2

    def load_image(self, record: MaskRecord, channels: int, max_pixels: int) -> torch.Tensor:
        return load_image(record.image, channels, max_pixels=max_pixels)

    def load_mask(self, record: MaskRecord) -> np.ndarray:
        try:
            return render_mask(record.regions, *record.size)
        except ValueError as exc:  # pycocotools refuses a damaged RLE
            raise BadImageError(record.mask, "bad annotation", f"{record.image}: {exc}") from None


def read_coco_masks(path: Path, skipped: SkipReport, *, max_pixels: int) -> SegmentationSource:
    """Read a COCO dataset's segmentations (see the module docstring).

    Raises:
        DataError: no COCO file, invalid JSON, malformed top-level fields, or over 254 categories.
    """
    loaded, categories = load_coco_files(path)
    if len(categories) >= IGNORE_INDEX:
        raise DataError(f"{path}: {len(categories)} categories; a mask holds at most 254 (255 marks ignored pixels)")
    index = {cat_id: k + 1 for k, cat_id in enumerate(sorted(categories))}
    splits = {
        split: _records(file, roots, data, index, skipped, max_pixels) for split, (file, roots, data) in loaded.items()
    }
    return SegmentationSource(splits, ["background", *(categories[c] for c in sorted(categories))], CocoMaskReader())


def render_mask(regions: tuple[Region, ...] | list[Region], height: int, width: int) -> np.ndarray:
    """uint8 ``[height, width]``: 0 where no region lies, else the value of the last region covering the pixel.

    Raises:
        ValueError: an RLE that pycocotools cannot decode.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    for value, segmentation in regions:
        mask[_rasterise(segmentation, height, width)] = value
    return mask


def has_segmentation(file: Path) -> bool:
    """The file holds a non-empty "segmentation" (polygons or RLE) somewhere (never raises).

    A scan of the bytes, not a parse: ``open_dataset`` asks this of every COCO file before reading it
    for detection, and parsing a 450 MB file twice costs seconds; a COCO file with masks says so in
    its first annotation, so the scan usually stops within the first megabyte.
    """
    tail = b""
    try:
        with open(file, "rb") as stream:
            while chunk := stream.read(_SCAN_CHUNK):
                if _SEGMENTATION.search(tail + chunk):
                    return True
                tail = chunk[-64:]
    except OSError:
        return False
    return False


def _records(
    file: Path,
    roots: list[Path],
    data: dict[str, Any],
    index: dict[int, int],
    skipped: SkipReport,
    max_pixels: int,
) -> list[MaskRecord]:
    images = _images(file, data, skipped)
    regions = _regions(file, data, set(images), index, skipped)
    records = []
    for image_id, path, info in probed_images(file, roots, images, skipped, max_pixels):
        height, width = info.size
        kept: list[Region] = []
        areas: list[Any] = []
        for value, segmentation, place, area in regions.get(image_id, []):
            problem = _rle_problem(segmentation, height, width) if isinstance(segmentation, dict) else None
            if problem:
                skipped.add(file, "bad annotation", f"{place}: {problem}")
                continue
            kept.append((value, segmentation))
            areas.append(area)
        labels = [0, *(value for value, _ in kept if value != IGNORE_INDEX)]
        pixels = _pixels_from_areas(kept, areas, height * width, len(index) + 1)
        record = MaskRecord(str(path), str(file), info.size, labels, grey=info.grey, pixels=pixels, regions=tuple(kept))
        records.append(record)
    return records


def _regions(
    file: Path, data: dict[str, Any], image_ids: set[int], index: dict[int, int], skipped: SkipReport
) -> dict[int, list[tuple[int, Any, str, Any]]]:
    """Per image id, (class id or IGNORE_INDEX, segmentation, where, "area") of each usable annotation,
    in file order."""
    found: dict[int, list[tuple[int, Any, str, Any]]] = {}
    for k, ann in enumerate(data.get("annotations", [])):
        where = f"{file.name} annotation id {ann.get('id', '?') if isinstance(ann, dict) else '?'} (annotations[{k}])"
        if not isinstance(ann, dict):
            skipped.add(file, "bad annotation", f"{where}: not an object")
            continue
        image_id, crowd = ann.get("image_id"), bool(ann.get("iscrowd"))
        segmentation, problem = _segmentation(ann.get("segmentation"))
        if not _is_int(image_id) or image_id not in image_ids:
            skipped.add(file, "unknown image", f"{where}: image_id {image_id!r} is not among the file's images")
        elif not crowd and not (_is_int(ann.get("category_id")) and ann["category_id"] in index):
            detail = f"category_id {ann.get('category_id')!r} is not declared in 'categories'"
            skipped.add(file, "unknown category", f"{where}: {detail}")
        elif problem:
            skipped.add(file, "bad annotation", f"{where}: {problem}"[:300])
        else:
            value = IGNORE_INDEX if crowd else index[ann["category_id"]]
            found.setdefault(image_id, []).append((value, segmentation, where, ann.get("area")))
    return found


def _pixels_from_areas(regions: list[Region], areas: list[Any], total: int, num_classes: int) -> np.ndarray | None:
    """Pixels per class from the annotations' "area" fields, or None when one lacks it (then the
    mask is rendered when counted). Overlaps count once per annotation: close enough for class
    shares and loss weights, and it spares rendering every mask of a COCO-sized set (minutes)."""
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) and a >= 0 for a in areas):
        return None
    pixels = np.zeros(num_classes, dtype=np.int64)
    for (value, _), area in zip(regions, areas, strict=True):
        if value != IGNORE_INDEX:
            pixels[value] += round(area)
    pixels[0] = max(total - round(sum(areas)), 0)
    return pixels


def _segmentation(value: Any) -> tuple[Any, str | None]:
    """The segmentation in a form pycocotools takes, or None and why it is unusable."""
    if isinstance(value, list):
        polygons = [[float(v) for v in p] for p in value if _is_polygon(p)]
        if not polygons:
            return None, f"no polygon of at least 3 points in 'segmentation' ({str(value)[:80]})"
        return polygons, None
    if isinstance(value, dict):
        counts, size = value.get("counts"), value.get("size")
        sized = isinstance(size, list) and len(size) == 2 and all(_is_int(s) and s >= 0 for s in size)
        counted = isinstance(counts, str) or (isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts))
        if sized and counted:
            return {"counts": counts, "size": list(size)}, None
        return None, "an RLE needs 'counts' (a list of run lengths or a string) and 'size' [height, width]"
    return None, "no 'segmentation' (polygons or RLE); is this a detection-only file?"


def _is_polygon(points: Any) -> bool:
    return (
        isinstance(points, list)
        and len(points) >= 6
        and len(points) % 2 == 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in points)
    )


def _rle_problem(rle: dict[str, Any], height: int, width: int) -> str | None:
    if rle["size"] != [height, width]:
        return f"RLE size {rle['size']} (h, w) but the image is {height}x{width}"
    try:
        _rasterise(rle, height, width)
    except ValueError as exc:
        return f"RLE does not decode ({exc})"
    return None


def _rasterise(segmentation: Any, height: int, width: int) -> np.ndarray:
    """bool ``[height, width]`` of one annotation's pixels."""
    from pycocotools import mask as coco_mask  # C extension: loaded when the first mask is painted

    if isinstance(segmentation, list):
        rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        if sum(segmentation["counts"]) != height * width:
            raise ValueError(f"run lengths sum to {sum(segmentation['counts'])}, not {height} x {width}")
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii", "replace")}
    with warnings.catch_warnings():  # pycocotools' decode predates NumPy 2's copy keyword and says so each call
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)
