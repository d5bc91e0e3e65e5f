"""Pascal VOC detection datasets: one XML file per image.

    DIR/Annotations/ID.xml          <filename>, <size>, and <object><name>, <difficult>, <bndbox>
    DIR/JPEGImages/                 the images (any supported format, named by <filename>)
    DIR/ImageSets/Main/train.txt    optional: the IDs of each split (val.txt, test.txt; trainval.txt
                                    serves as train when neither train.txt nor val.txt exists)
    DIR/labels.txt or classes.txt   optional: class names, one per line, in index order

Without a labels file the classes are the sorted names found in the XML files. VOC corners are
1-based and inclusive (the top-left pixel is xmin = ymin = 1), so a box becomes
``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` in cnnlab's 0-based, end-exclusive pixels.
Skipped and counted: XML that cannot be parsed ("bad xml", the image is left out), objects marked
difficult ("difficult box"), objects without a usable name or box or of a class the labels file does
not list ("bad box"), IDs in a split list without an XML file ("missing file"), and XML files no
split list names ("unlisted"). When <size> disagrees with the image, the image wins ("size mismatch").
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data.dense_splits import ALL
from cnnlab.data.detection.records import BoxRecord, DetectionSource
from cnnlab.data.detection.validate import clean_boxes, probe_or_skip
from cnnlab.data.images import IMAGE_EXTENSIONS
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLITS
from cnnlab.errors import DataError

LABEL_FILES = ("labels.txt", "classes.txt")


@dataclass
class _Parsed:
    """What one XML file says, before class names are known."""

    xml: Path
    filename: str | None
    size: tuple[int, int] | None  # (W, H)
    objects: list[tuple[str, list[float], str]] = field(default_factory=list)  # name, xyxy, where


def is_voc(root: Path) -> bool:
    """``root`` has an Annotations folder with at least one XML file."""
    folder = root / "Annotations"
    return folder.is_dir() and any(p.suffix.lower() == ".xml" for p in folder.iterdir())


def read_voc(path: Path, skipped: SkipReport, *, max_pixels: int) -> DetectionSource:
    """Read a VOC dataset folder (see the module docstring).

    Raises:
        DataError: no Annotations folder with XML files.
    """
    root = Path(os.path.abspath(path))
    if not is_voc(root):
        raise DataError(f"{root}: no Annotations/*.xml; a VOC dataset needs Annotations/ and JPEGImages/")
    xmls = sorted(p for p in (root / "Annotations").iterdir() if p.suffix.lower() == ".xml" and p.name[0] != ".")
    parsed: dict[str, _Parsed] = {}
    for xml in xmls:
        entry = _parse(xml, skipped)
        if entry is not None:
            parsed[xml.stem] = entry
    names = _class_names(root, parsed.values())
    index = {name: i for i, name in enumerate(names)}
    splits: dict[str, list[BoxRecord]] = {}
    for split, ids in _split_ids(root, set(parsed), skipped).items():
        records = []
        for stem in ids:
            if stem not in parsed:
                xml = root / "Annotations" / f"{stem}.xml"
                if not xml.is_file():
                    skipped.add(xml, "missing file", f"ImageSets/Main/{split}.txt lists {stem} but it has no XML file")
                continue
            record = _record(root, parsed[stem], index, skipped, max_pixels)
            if record is not None:
                records.append(record)
        splits[split] = records
    return DetectionSource(splits=splits, class_names=names)


def _parse(xml: Path, skipped: SkipReport) -> _Parsed | None:
    try:
        tree = ET.parse(xml)
    except ET.ParseError as exc:
        skipped.add(xml, "bad xml", f"not valid XML ({exc}); its image is left out")
        return None
    except OSError as exc:
        skipped.add(xml, "unreadable", exc.strerror or str(exc))
        return None
    top = tree.getroot()
    entry = _Parsed(xml, _text(top, "filename"), _size(top))
    for k, obj in enumerate(top.iter("object"), 1):
        where = f"{xml.name} object {k}"
        name = _text(obj, "name")
        if not name:
            skipped.add(xml, "bad box", f"{where}: no <name>")
            continue
        if (_text(obj, "difficult") or "0") in ("1", "1.0", "true"):
            skipped.add(xml, "difficult box", f"{where}: {name} marked difficult")
            continue
        box = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (float(_text(box, tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax"))
        except (ValueError, TypeError):
            skipped.add(xml, "bad box", f"{where}: <bndbox> needs numeric xmin, ymin, xmax, ymax")
            continue
        entry.objects.append((name, [xmin - 1, ymin - 1, xmax, ymax], where))
    return entry


def _class_names(root: Path, parsed: Iterable[_Parsed]) -> list[str]:
    for name in LABEL_FILES:
        file = root / name
        if file.is_file():
            try:
                lines = file.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
            names = [line.strip() for line in lines if line.strip()]
            if names:
                return names
    return sorted({name for entry in parsed for name, _, _ in entry.objects})


def _split_ids(root: Path, stems: set[str], skipped: SkipReport) -> dict[str, list[str]]:
    """IDs per split from ImageSets/Main, or every XML under ``ALL`` when there are no split lists."""
    folder = root / "ImageSets" / "Main"
    lists = {s: folder / f"{s}.txt" for s in SPLITS if (folder / f"{s}.txt").is_file()}
    if "train" not in lists and "val" not in lists and (folder / "trainval.txt").is_file():
        lists["train"] = folder / "trainval.txt"
    if not lists:
        return {ALL: sorted(stems)}
    splits: dict[str, list[str]] = {}
    for split in SPLITS:
        if split in lists:
            try:
                lines = lists[split].read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read {lists[split]}: {getattr(exc, 'strerror', None) or exc}") from None
            splits[split] = [line.split()[0] for line in lines if line.strip()]
    listed = {stem for ids in splits.values() for stem in ids}
    for stem in sorted(stems - listed):
        skipped.add(root / "Annotations" / f"{stem}.xml", "unlisted", "in no ImageSets/Main split list; left out")
    return splits


def _record(
    root: Path, entry: _Parsed, index: dict[str, int], skipped: SkipReport, max_pixels: int
) -> BoxRecord | None:
    image = _image_file(root / "JPEGImages", entry)
    info = probe_or_skip(image, entry.xml.name, skipped, max_pixels=max_pixels)
    if info is None:
        return None
    height, width = info.size
    if entry.size is not None and entry.size != (width, height):
        said = f"{entry.size[0]}x{entry.size[1]}"
        detail = f"{entry.xml.name}: <size> says {said} (W x H), the image is {width}x{height}; using the image"
        skipped.add(entry.xml, "size mismatch", detail)
    boxes, labels, places = [], [], []
    for name, box, where in entry.objects:
        if name not in index:
            skipped.add(entry.xml, "bad box", f"{where}: unknown class {name!r} (the labels file lists {len(index)})")
            continue
        boxes.append(box)
        labels.append(index[name])
        places.append(where)
    xyxy = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    xyxy, ids = clean_boxes(
        xyxy, np.array(labels, dtype=np.int64), width, height, len(index), places, skipped, file=entry.xml
    )
    return BoxRecord(str(image), width, height, xyxy, ids, grey=info.grey)


def _image_file(folder: Path, entry: _Parsed) -> Path:
    """<filename> in JPEGImages; failing that, a file named like the XML with any image extension."""
    if entry.filename:
        named = folder / entry.filename
        if named.is_file():
            return named
    for ext in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{entry.xml.stem}{ext}", folder / f"{entry.xml.stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return folder / (entry.filename or f"{entry.xml.stem}.jpg")


def _text(node: ET.Element | None, tag: str) -> str | None:
    if node is None:
        return None
    child = node.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _size(top: ET.Element) -> tuple[int, int] | None:
    size = top.find("size")
    try:
        return int(float(_text(size, "width") or "")), int(float(_text(size, "height") or ""))
    except ValueError:
        return None
