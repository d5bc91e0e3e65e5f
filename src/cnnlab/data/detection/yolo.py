"""YOLO (Ultralytics) detection datasets: a ``data.yaml`` and one ``.txt`` label file per image.

    data.yaml       names: [cat, dog] (or {0: cat, 1: dog}); path: optional root;
                    train / val / test: image folders, lists of folders, .txt lists of images, relative
                    to ``path`` (itself relative to the YAML's folder) or the YAML's folder
    images/train/a.jpg  ->  labels/train/a.txt     (the last "images" folder becomes "labels")
    a.txt           one line per box: ``class cx cy w h``, normalised to 0..1 by the image size

As in Ultralytics: an image without a label file is kept with no boxes (and counted as
"missing label file"); a line of 7 or more values (odd count) is a polygon, whose bounding box is
used; a ``train: ../x`` that does not exist is also tried as ``x`` (Roboflow's exports). Lines with a
wrong column count or values that are not numbers are skipped and counted as "bad line", the
detail naming the file and line. A YAML file that cannot be parsed, or without names, is a
``DataError``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.detection.records import BoxRecord, DetectionSource
from cnnlab.data.detection.validate import clean_boxes, probe_or_skip
from cnnlab.data.images import is_image_name
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLIT_ALIASES
from cnnlab.errors import DataError

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")


def find_yolo_yaml(root: Path) -> Path | None:
    """The dataset YAML of a folder: one of ``YAML_NAMES``, else its only YAML that has ``names``."""
    for name in YAML_NAMES:
        if (root / name).is_file():
            return root / name
    try:
        candidates = sorted(p for p in root.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    except OSError:
        return None
    with_names = [p for p in candidates if _looks_like_dataset(p)]
    return with_names[0] if len(with_names) == 1 else None


def read_yolo(path: Path, skipped: SkipReport, *, max_pixels: int) -> DetectionSource:
    """Read a YOLO dataset from its YAML file or the folder holding it (see the module docstring).

    Raises:
        DataError: no YAML, a YAML that cannot be parsed, no names, or a split folder that does not exist.
    """
    path = Path(os.path.abspath(path))
    yaml_file = path if path.is_file() else find_yolo_yaml(path)
    if yaml_file is None:
        raise DataError(f"{path}: no data.yaml; a YOLO dataset needs one with names: and train: / val: image folders")
    config = load_yaml(yaml_file)
    names, ids = _names(config, yaml_file)
    root = yaml_file.parent
    if isinstance(config.get("path"), str) and config["path"]:
        given = root / config["path"]
        root = given if given.is_dir() else root  # a path from another machine: fall back to the YAML's folder
    splits: dict[str, list[BoxRecord]] = {}
    for key, value in config.items():
        split = SPLIT_ALIASES.get(str(key).lower())
        if split is None or value in (None, "", []):
            continue
        if split in splits:
            raise DataError(f"{yaml_file}: the {split} split is given twice ({key}); keep one")
        images = _images(value, root, yaml_file, key)
        splits[split] = [
            r for r in (_record(i, yaml_file.parent, names, ids, skipped, max_pixels) for i in images) if r is not None
        ]
    if not splits:
        raise DataError(f"{yaml_file}: no train, val or test entry; add train: images/train (a folder of images)")
    return DetectionSource(splits=splits, class_names=names)


def load_yaml(file: Path) -> dict[str, Any]:
    """The YAML's top-level mapping."""
    import yaml

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise DataError(f"{file}: not valid YAML ({problem}{where}); fix the file") from None
    if not isinstance(config, dict):
        raise DataError(f"{file}: expected a mapping with names: and train: / val: entries")
    return config


def label_path(image: str | os.PathLike[str]) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, the suffix ``.txt``."""
    text = os.fspath(image)
    marker, replacement = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if marker in text:
        head, tail = text.rsplit(marker, 1)
        text = head + replacement + tail
    return Path(text).with_suffix(".txt")


def _names(config: dict[str, Any], file: Path) -> tuple[list[str], dict[int, int]]:
    """Class names, and the class index of each id the label files may use."""
    names = config.get("names")
    count = config.get("nc")
    if names is None and isinstance(count, int) and count > 0:
        names = [f"class_{i}" for i in range(count)]  # as Ultralytics names them
    if isinstance(names, dict):
        try:
            keyed = sorted((int(k), str(v)) for k, v in names.items())
        except (TypeError, ValueError):
            raise DataError(f"{file}: names must map integer ids to names, e.g. {{0: cat, 1: dog}}") from None
        result = [v for _, v in keyed], {k: i for i, (k, _) in enumerate(keyed)}
    elif isinstance(names, list) and names:
        result = [str(n) for n in names], {i: i for i in range(len(names))}
    else:
        raise DataError(f"{file}: no class names; add names: [cat, dog, ...] (or {{0: cat, 1: dog}})")
    if isinstance(count, int) and count != len(result[0]):
        raise DataError(f"{file}: nc is {count} but names lists {len(result[0])} classes; make them agree")
    return result


def _images(value: Any, root: Path, yaml_file: Path, key: str) -> list[Path]:
    """The image files a split entry names: folders (searched recursively), .txt lists, or single images."""
    entries = value if isinstance(value, list) else [value]
    found: list[Path] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise DataError(f"{yaml_file}: {key} must be a path or a list of paths, got {entry!r}")
        target = root / entry
        if not target.exists() and entry.startswith("../"):
            target = root / entry[3:]
        if target.is_dir():
            found.extend(_walk(target))
        elif target.is_file() and target.suffix.lower() == ".txt":
            found.extend(_listed(target, root))
        elif target.is_file():
            found.append(target)
        else:
            raise DataError(f"{yaml_file}: {key}: {entry} does not exist (looked for {target}); fix the path")
    return found


def _walk(folder: Path) -> list[Path]:
    found = []
    for here, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(here, n) for n in sorted(names) if is_image_name(n))
    return found


def _listed(listing: Path, root: Path) -> list[Path]:
    """Images named in a .txt list, one per line: "./x" relative to the list's folder, else to ``root``."""
    try:
        lines = listing.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {listing}: {getattr(exc, 'strerror', None) or exc}") from None
    paths = []
    for line in (x.strip() for x in lines):
        if line:
            paths.append(listing.parent / line[2:] if line.startswith("./") else root / line)
    return paths


def _record(
    image: Path, base: Path, names: list[str], ids: dict[int, int], skipped: SkipReport, max_pixels: int
) -> BoxRecord | None:
    """The image's record, or None when the image is bad; ``base`` shortens file names in skip details."""
    labels_file = label_path(image)
    info = probe_or_skip(image, "", skipped, max_pixels=max_pixels)
    if info is None:
        return None
    height, width = info.size
    try:
        lines = labels_file.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        skipped.add(labels_file, "missing label file", f"no labels for {image.name}; kept as an image with no boxes")
        lines = []
    except (OSError, UnicodeDecodeError) as exc:
        detail = f"{getattr(exc, 'strerror', None) or exc}; {image.name} kept with no boxes"
        skipped.add(labels_file, "unreadable label file", detail)
        lines = []
    boxes, labels, places = _parse(lines, labels_file, _shown(labels_file, base), (width, height), names, ids, skipped)
    boxes, labels = clean_boxes(boxes, labels, width, height, len(names), places, skipped, file=labels_file)
    return BoxRecord(str(image), width, height, boxes, labels, grey=info.grey)


def _parse(
    lines: list[str],
    file: Path,
    shown: str,
    size: tuple[int, int],
    names: list[str],
    ids: dict[int, int],
    skipped: SkipReport,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Absolute xyxy boxes, class indices and "file line N" of each well-formed line."""
    width, height = size
    boxes, labels, places = [], [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{shown} line {number}"
        if len(parts) != 5 and (len(parts) < 7 or len(parts) % 2 == 0):
            detail = f"{where}: {len(parts)} values, expected 5 (class cx cy w h) or a polygon (class x1 y1 x2 y2 ...)"
            skipped.add(file, "bad line", detail)
            continue
        try:
            values = [float(p) for p in parts]
        except ValueError:
            skipped.add(file, "bad line", f"{where}: not numbers: {line.strip()[:80]!r}")
            continue
        if not values[0].is_integer():
            skipped.add(file, "bad line", f"{where}: the class id {parts[0]!r} is not an integer")
            continue
        class_id = int(values[0])
        if class_id not in ids:
            detail = f"unknown class id {class_id} (the data declares {len(names)}: {_id_range(ids)})"
            skipped.add(file, "bad box", f"{where}: {detail}")
            continue
        if len(values) == 5:
            cx, cy, w, h = values[1:]
            box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        else:
            xs, ys = values[1::2], values[2::2]
            box = [min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height]
        boxes.append(box)
        labels.append(ids[class_id])
        places.append(where)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(labels, dtype=np.int64), places


def _shown(file: Path, base: Path) -> str:
    """``file`` relative to ``base`` when inside it ("labels/train/a.txt"), else in full."""
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return str(file)


def _id_range(ids: dict[int, int]) -> str:
    keys = sorted(ids)
    if keys == list(range(len(keys))):
        return f"ids 0..{len(keys) - 1}"
    return "ids " + ", ".join(str(k) for k in keys[:10]) + (", ..." if len(keys) > 10 else "")


def _looks_like_dataset(file: Path) -> bool:
    try:
        return "names" in load_yaml(file)
    except DataError:
        return False
