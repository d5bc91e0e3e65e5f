"""COCO detection JSON: ``images``, ``annotations`` (``bbox`` = [x, y, width, height]) and ``categories``.

Layouts accepted (split names: train, val or valid or validation, test; a numeric tag such as
``train2017`` is allowed):

    DIR/annotations/instances_train2017.json  + DIR/train2017/ (or DIR/train/, DIR/images/train2017/, ...)
    DIR/annotations/train.json                + DIR/train/ (or DIR/images/train/)
    DIR/train/_annotations.coco.json          images beside the JSON (Roboflow's export)
    DIR/annotations.json or FILE.json         one file, no splits; images in images/ beside it, or beside it
                                              (in DIR itself only annotations.json, instances*.json and
                                              *coco*.json count: other JSON files there are ignored)

Other JSON files of a COCO annotations folder (captions_*, person_keypoints_*) are ignored.
Category ids become contiguous class indices in sorted-id order; names are kept. Images without
annotations are kept as negatives. Skipped and counted: crowd annotations ("crowd box"),
annotations of an image id or category id the file does not declare ("unknown image",
"unknown category"), malformed entries ("bad annotation", "bad image entry"), images that fail the
probe (with its reason). When a file's width/height disagree with the image, the image wins
("size mismatch"). A file that is not valid JSON, or whose top-level fields have the wrong type, is
a ``DataError``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.dense_splits import ALL
from cnnlab.data.detection.records import BoxRecord, DetectionSource
from cnnlab.data.detection.validate import clean_boxes, probe_or_skip
from cnnlab.data.images import ImageInfo
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLIT_ALIASES, SPLITS
from cnnlab.errors import DataError

_UNSPLIT_NAME = re.compile(r"^(annotations|instances.*)\.json$|coco", re.IGNORECASE)
_SPLIT_STEM = re.compile(r"^(?:instances_)?(train|val|valid|validation|test)(\d*)$", re.IGNORECASE)


def find_coco_files(root: Path) -> dict[str, tuple[Path, list[Path]]]:
    """The annotation file and candidate image folders of each split of a COCO dataset folder.

    Returns an empty dict when ``root`` holds no COCO layout. The key is a split name, or ``ALL``.

    Raises:
        DataError: two files claim the same split, or several unnamed JSON files leave it ambiguous.
    """
    found: dict[str, tuple[Path, list[Path]]] = {}

    def claim(split: str, file: Path, roots: list[Path]) -> None:
        if split in found:
            raise DataError(f"{root}: both {found[split][0]} and {file} are the COCO {split} split; keep one")
        found[split] = (file, roots)

    unnamed: list[Path] = []
    for folder in (root / "annotations", root):
        for file in _json_files(folder):
            match = _SPLIT_STEM.match(file.stem)
            if match is None:
                if folder != root or _UNSPLIT_NAME.search(file.name):  # other JSON beside images: not ours
                    unnamed.append(file)
                continue
            split, tag = SPLIT_ALIASES[match.group(1).lower()], match.group(1) + match.group(2)
            roots = [root / tag, root / split, root / "images" / tag, root / "images" / split, root / "images", root]
            claim(split, file, roots)
    for entry in _subfolders(root):
        split = SPLIT_ALIASES.get(entry.name.lower())
        files = _json_files(entry)
        if split is not None and len(files) == 1:
            claim(split, files[0], [entry, entry / "images"])
    if found:
        return found
    if len(unnamed) == 1:
        file = unnamed[0]
        return {ALL: (file, [file.parent / "images", file.parent, root / "images", root])}
    if len(unnamed) > 1:
        names = ", ".join(str(f) for f in unnamed[:5])
        raise DataError(
            f"{root}: several JSON files ({names}) and none named after a split; name them instances_train.json, "
            "instances_val.json, instances_test.json, or give the one JSON file to use"
        )
    return {}


def read_coco(path: Path, skipped: SkipReport, *, max_pixels: int) -> DetectionSource:
    """Read a COCO dataset folder or a single COCO JSON file (see the module docstring).

    Raises:
        DataError: no COCO annotation file found, invalid JSON, or malformed top-level fields.
    """
    loaded, categories = load_coco_files(path)
    index = {cat_id: i for i, cat_id in enumerate(sorted(categories))}
    splits = {
        split: _records(file, roots, data, index, skipped, max_pixels) for split, (file, roots, data) in loaded.items()
    }
    return DetectionSource(splits=splits, class_names=[categories[c] for c in sorted(categories)])


def load_coco_files(path: Path) -> tuple[dict[str, tuple[Path, list[Path], dict[str, Any]]], dict[int, str]]:
    """The COCO files of a dataset folder (or the one file given), in split order, each with the folders
    its images may be in and its parsed content; and the categories they declare together.

    Raises:
        DataError: no COCO annotation file found, invalid JSON, malformed top-level fields, or files
            that give one category id two names.
    """
    path = Path(os.path.abspath(path))
    if path.is_file():
        layout = {ALL: (path, [path.parent / "images", path.parent])}
    else:
        layout = find_coco_files(path)
        if not layout:
            raise DataError(
                f"{path}: no COCO annotation file; expected annotations/instances_train.json (and _val, _test) "
                "with images in train/ val/ test/, or a single .json file"
            )
    order = sorted(layout, key=lambda s: SPLITS.index(s) if s in SPLITS else len(SPLITS))
    loaded = {split: (layout[split][0], layout[split][1], load_json(layout[split][0])) for split in order}
    return loaded, _merge_categories([(file, data) for file, _, data in loaded.values()])


def probed_images(
    file: Path, roots: list[Path], images: dict[int, dict[str, Any]], skipped: SkipReport, max_pixels: int
) -> Iterator[tuple[int, Path, ImageInfo]]:
    """Each image entry whose file is found and decodable: (id, path, probe). The others are skipped
    and counted; a width/height in the file that disagrees with the image is noted, the image wins."""
    for image_id, image in images.items():
        where = f"{file.name} image id {image_id}"
        path = _locate(image["file_name"], roots)
        info = probe_or_skip(path, where, skipped, max_pixels=max_pixels)
        if info is None:
            continue
        height, width = info.size
        said = (image.get("width"), image.get("height"))
        if said != (None, None) and said != (width, height):
            detail = f"the file says {said[0]}x{said[1]} (W x H), the image is {width}x{height}; using the image"
            skipped.add(path, "size mismatch", f"{where}: {detail}")
        yield image_id, path, info


def load_json(file: Path) -> dict[str, Any]:
    """A COCO file's top-level object, with the types of its three lists checked."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{file}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); fix or re-export the file"
        ) from None
    if not isinstance(data, dict):
        raise DataError(f"{file}: expected a JSON object with images, annotations and categories, not {_kind(data)}")
    for key in ("images", "categories", "annotations"):
        if key not in data and key != "annotations":
            raise DataError(f"{file}: no '{key}' field; is this a COCO detection file?")
        if not isinstance(data.get(key, []), list):
            raise DataError(f"{file}: field '{key}' must be a list, not {_kind(data[key])}")
    return data


def _merge_categories(files: list[tuple[Path, dict[str, Any]]]) -> dict[int, str]:
    """Category id -> name over every file; the same id must have the same name everywhere."""
    categories: dict[int, str] = {}
    origin: dict[int, Path] = {}
    for file, data in files:
        for k, cat in enumerate(data["categories"]):
            cat_id = cat.get("id") if isinstance(cat, dict) else None
            name = cat.get("name") if isinstance(cat, dict) else None
            if not _is_int(cat_id) or not isinstance(name, str):
                raise DataError(f"{file}: categories[{k}] needs an integer 'id' and a string 'name', got {cat!r}")
            if categories.get(cat_id, name) != name:
                raise DataError(
                    f"{file}: category id {cat_id} is {name!r} but {categories[cat_id]!r} in {origin[cat_id]}; "
                    "the files of one dataset must agree on their categories"
                )
            categories[cat_id], origin[cat_id] = name, file
    return categories


def _records(
    file: Path,
    roots: list[Path],
    data: dict[str, Any],
    index: dict[int, int],
    skipped: SkipReport,
    max_pixels: int,
) -> list[BoxRecord]:
    images = _images(file, data, skipped)
    boxes = _annotations(file, data, set(images), index, skipped)
    records = []
    for image_id, path, info in probed_images(file, roots, images, skipped, max_pixels):
        height, width = info.size
        found = boxes.get(image_id, [])
        xyxy = np.array([b for b, _, _ in found], dtype=np.float64).reshape(-1, 4)
        labels = np.array([c for _, c, _ in found], dtype=np.int64)
        xyxy, labels = clean_boxes(xyxy, labels, width, height, len(index), [w for *_, w in found], skipped, file=file)
        records.append(BoxRecord(str(path), width, height, xyxy, labels, grey=info.grey))
    return records


def _images(file: Path, data: dict[str, Any], skipped: SkipReport) -> dict[int, dict[str, Any]]:
    """The well-formed entries of ``images`` by id, in file order."""
    images: dict[int, dict[str, Any]] = {}
    for k, image in enumerate(data["images"]):
        image_id = image.get("id") if isinstance(image, dict) else None
        name = image.get("file_name") if isinstance(image, dict) else None
        if not _is_int(image_id) or not isinstance(name, str) or not name:
            detail = f"images[{k}] needs an integer 'id' and a 'file_name', got {image!r}"
            skipped.add(file, "bad image entry", detail[:300])
        elif image_id in images:
            detail = f"images[{k}]: id {image_id} is already {images[image_id]['file_name']}"
            skipped.add(file, "duplicate image id", detail)
        else:
            images[image_id] = image
    return images


def _annotations(
    file: Path, data: dict[str, Any], image_ids: set[int], index: dict[int, int], skipped: SkipReport
) -> dict[int, list[tuple[list[float], int, str]]]:
    """Per image id: (xyxy box, class index, where) of each usable annotation; the rest go to ``skipped``."""
    boxes: dict[int, list[tuple[list[float], int, str]]] = {}
    declared = ", ".join(str(c) for c in sorted(index)[:10]) + (", ..." if len(index) > 10 else "")
    for k, ann in enumerate(data.get("annotations", [])):
        ann_id = ann.get("id", "?") if isinstance(ann, dict) else "?"
        where = f"{file.name} annotation id {ann_id} (annotations[{k}])"
        if not isinstance(ann, dict):
            skipped.add(file, "bad annotation", f"{where}: not an object")
        elif _int_or_none(ann.get("image_id")) not in image_ids:
            detail = f"image_id {ann.get('image_id')!r} is not among the file's images"
            skipped.add(file, "unknown image", f"{where}: {detail}")
        elif ann.get("iscrowd"):
            skipped.add(file, "crowd box", f"{where}: iscrowd=1 (a region of many objects)")
        elif _int_or_none(ann.get("category_id")) not in index:
            detail = f"category_id {ann.get('category_id')!r} is not declared (declared: {declared})"
            skipped.add(file, "unknown category", f"{where}: {detail}")
        elif not _is_bbox(ann.get("bbox")):
            detail = f"bbox must be [x, y, width, height], got {ann.get('bbox')!r}"
            skipped.add(file, "bad annotation", f"{where}: {detail}"[:300])
        else:
            x, y, w, h = (float(v) for v in ann["bbox"])
            boxes.setdefault(ann["image_id"], []).append(([x, y, x + w, y + h], index[ann["category_id"]], where))
    return boxes


def _locate(name: str, roots: list[Path]) -> Path:
    """The first root holding ``name``; the first root when none does (the probe then says "missing file")."""
    for root in roots:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return roots[0] / name


def _json_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json" and not p.name.startswith("."))
    except OSError:
        return []


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: Any) -> int | None:
    return value if _is_int(value) else None


def _is_bbox(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _kind(value: Any) -> str:
    """'a list', 'an object', ...: a JSON value's kind, with its article."""
    kinds = {list: "a list", str: "a string", dict: "an object", int: "a number", float: "a number", bool: "a boolean"}
    return kinds.get(type(value), "null" if value is None else type(value).__name__)
