"""Writing records as a COCO, YOLO or VOC dataset that the readers (and the usual tools) accept.

    coco    annotations/instances_{split}.json + {split}/ images      (unsplit: annotations.json + images/)
    yolo    data.yaml + images/{split}/ + labels/{split}/*.txt        (unsplit: written as train)
    voc     Annotations/*.xml + JPEGImages/ + ImageSets/Main/{split}.txt + labels.txt (unsplit: no ImageSets)

Images are hard-linked when source and destination share a file system, else copied; they are never
re-encoded. File names are kept, with ``_1``, ``_2`` ... added when two images of one folder share a
stem (a.jpg and a.png would share a label file). Class order survives every format: COCO category
ids are index + 1, YOLO ``names`` is a list, VOC gets a ``labels.txt``.

Precision of a round trip: COCO keeps 4 decimals (px); YOLO keeps 6 decimals of the normalised
coordinates, under 1e-3 px for images up to 2000 px; VOC stores whole pixels, so its boxes are
rounded to the nearest pixel edge.
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cnnlab.data.dense_splits import ALL
from cnnlab.data.detection.records import BoxRecord
from cnnlab.data.detection.sources import FORMATS, read_source
from cnnlab.data.images import DEFAULT_MAX_PIXELS
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLITS
from cnnlab.errors import ConfigError, DataError


def write_dataset(
    splits: Mapping[str, Sequence[BoxRecord]],
    class_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    fmt: str,
    *,
    link: bool = True,
) -> Path:
    """Write ``splits`` to a new folder ``out_dir`` in format ``fmt``; returns the folder.

    Args:
        splits: records per split: keys among train, val and test, or the single key "all" (no splits).
        class_names: the names the records' labels index into.
        out_dir: must not exist, or be empty.
        fmt: "coco", "yolo" or "voc".
        link: hard-link images where possible (False: always copy).

    Raises:
        ConfigError: unknown ``fmt`` or split key.
        DataError: ``out_dir`` exists and is not empty.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"detection format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    keys = set(splits)
    if not (keys <= set(SPLITS) or keys == {ALL}):
        raise ConfigError(f"split keys must be among {', '.join(SPLITS)}, or only {ALL!r}; got {sorted(keys)}")
    for records in splits.values():
        for record in records:
            if len(record.labels) and not 0 <= int(record.labels.min()) <= int(record.labels.max()) < len(class_names):
                raise ValueError(f"{record.image}: labels {record.labels.tolist()} outside {len(class_names)} classes")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not empty; choose a new folder to write the dataset to")
    out.mkdir(parents=True, exist_ok=True)
    writer = {"coco": _write_coco, "yolo": _write_yolo, "voc": _write_voc}[fmt]
    writer({k: list(v) for k, v in splits.items()}, list(class_names), out, link)
    return out


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    fmt: str,
    *,
    src_fmt: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SkipReport:
    """Read a detection dataset in any format and write it to ``dst`` as ``fmt``; returns what was left out.

    Boxes and images the reader skips (see the readers) are not written; the returned report says which.
    """
    source, skipped = read_source(src, src_fmt, max_pixels=max_pixels)
    write_dataset(source.splits, source.class_names, dst, fmt)
    return skipped


class _Folder:
    """One destination folder: unique stems, and each source image placed once."""

    def __init__(self, path: Path, link: bool) -> None:
        self.path = path
        self.link = link
        self._stems: set[str] = set()
        self._placed: dict[str, str] = {}
        path.mkdir(parents=True, exist_ok=True)

    def place(self, image: str) -> str:
        """Link or copy ``image`` here once; its file name here."""
        if image in self._placed:
            return self._placed[image]
        source = Path(image)
        stem, n = source.stem, 0
        while stem in self._stems:
            n += 1
            stem = f"{source.stem}_{n}"
        self._stems.add(stem)
        name = stem + source.suffix
        target = self.path / name
        try:
            if not self.link:
                raise OSError("copy asked for")
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        self._placed[image] = name
        return name


def _write_coco(splits: dict[str, list[BoxRecord]], names: list[str], out: Path, link: bool) -> None:
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(names)]
    for split, records in splits.items():
        folder = _Folder(out / ("images" if split == ALL else split), link)
        images, annotations = [], []
        for image_id, record in enumerate(records, 1):
            file_name = folder.place(record.image)
            images.append({"id": image_id, "file_name": file_name, "width": record.width, "height": record.height})
            for (x1, y1, x2, y2), label in zip(record.boxes.tolist(), record.labels.tolist(), strict=True):
                w, h = x2 - x1, y2 - y1
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": label + 1,
                        "bbox": [round(x1, 4), round(y1, 4), round(w, 4), round(h, 4)],
                        "area": round(w * h, 4),
                        "iscrowd": 0,
                    }
                )
        data = {"info": {"description": "written by cnnlab"}, "images": images, "annotations": annotations}
        data["categories"] = categories
        if split == ALL:
            target = out / "annotations.json"
        else:
            (out / "annotations").mkdir(exist_ok=True)
            target = out / "annotations" / f"instances_{split}.json"
        target.write_text(json.dumps(data), encoding="utf-8")


def _write_yolo(splits: dict[str, list[BoxRecord]], names: list[str], out: Path, link: bool) -> None:
    import yaml

    # No "path": Ultralytics then resolves the splits against the YAML's folder (a relative "path" would
    # be taken from the working directory or its datasets folder instead).
    config: dict[str, object] = {}
    for split, records in splits.items():
        key = "train" if split == ALL else split  # YOLO has no unsplit form: open_detection carves val/test
        folder = _Folder(out / "images" / key, link)
        labels_dir = out / "labels" / key
        labels_dir.mkdir(parents=True, exist_ok=True)
        for record in records:
            name = folder.place(record.image)
            lines = []
            for (x1, y1, x2, y2), label in zip(record.boxes.tolist(), record.labels.tolist(), strict=True):
                cx, cy = (x1 + x2) / 2 / record.width, (y1 + y2) / 2 / record.height
                w, h = (x2 - x1) / record.width, (y2 - y1) / record.height
                lines.append(f"{label} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
            (labels_dir / Path(name).with_suffix(".txt")).write_text("".join(lines), encoding="utf-8")
        config[key] = f"images/{key}"
    config["nc"] = len(names)
    config["names"] = list(names)
    (out / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _write_voc(splits: dict[str, list[BoxRecord]], names: list[str], out: Path, link: bool) -> None:
    folder = _Folder(out / "JPEGImages", link)  # one folder for every split: VOC IDs are unique
    (out / "Annotations").mkdir()
    (out / "labels.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    for split, records in splits.items():
        ids = []
        for record in records:
            name = folder.place(record.image)
            stem = Path(name).stem
            ids.append(stem)
            tree = ET.ElementTree(_voc_xml(record, name, names))
            ET.indent(tree)
            tree.write(out / "Annotations" / f"{stem}.xml", encoding="utf-8", xml_declaration=False)
        if split != ALL:
            (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
            (out / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


def _voc_xml(record: BoxRecord, file_name: str, names: list[str]) -> ET.Element:
    top = ET.Element("annotation")
    ET.SubElement(top, "folder").text = "JPEGImages"
    ET.SubElement(top, "filename").text = file_name
    size = ET.SubElement(top, "size")
    for tag, value in (("width", record.width), ("height", record.height), ("depth", 1 if record.grey else 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(top, "segmented").text = "0"
    # Whole pixels, 1-based inclusive corners: the 0-based edge x1 is pixel x1 + 1, edge x2 is pixel x2.
    edges = np.floor(record.boxes.astype(np.float64) + 0.5).astype(np.int64)
    for (x1, y1, x2, y2), label in zip(edges.tolist(), record.labels.tolist(), strict=True):
        obj = ET.SubElement(top, "object")
        ET.SubElement(obj, "name").text = names[label]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(box, tag).text = str(value)
    return top
