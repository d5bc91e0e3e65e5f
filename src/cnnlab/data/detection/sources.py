"""Which detection format a path holds, told by its layout, and reading it whatever it is.

    FILE.json                                   coco
    FILE.yaml / FILE.yml                        yolo (an Ultralytics data.yaml)
    DIR with data.yaml (or one YAML with names) yolo
    DIR with Annotations/*.xml                  voc
    DIR with annotations/*.json, a split-named JSON, annotations.json, or train/_annotations.coco.json
                                                coco

Checked in that order, so a folder with both a data.yaml and Annotations/ is read as YOLO.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.data.detection.coco import find_coco_files, read_coco
from cnnlab.data.detection.records import DetectionSource
from cnnlab.data.detection.voc import is_voc, read_voc
from cnnlab.data.detection.yolo import find_yolo_yaml, read_yolo
from cnnlab.data.images import DEFAULT_MAX_PIXELS
from cnnlab.data.skips import SkipReport
from cnnlab.errors import ConfigError, DataError

FORMATS = ("coco", "yolo", "voc")
_READERS = {"coco": read_coco, "yolo": read_yolo, "voc": read_voc}
LAYOUTS = (
    "COCO (annotations/instances_train.json + train/, or a .json file), "
    "YOLO (data.yaml + images/ and labels/), or VOC (Annotations/*.xml + JPEGImages/)"
)


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """ "coco", "yolo" or "voc" when ``path`` is laid out as such a dataset, else None (never raises)."""
    path = Path(path)
    try:
        if path.is_file():
            return {".json": "coco", ".yaml": "yolo", ".yml": "yolo"}.get(path.suffix.lower())
        if not path.is_dir():
            return None
        if find_yolo_yaml(path) is not None:
            return "yolo"
        if is_voc(path):
            return "voc"
        try:
            return "coco" if find_coco_files(path) else None
        except DataError:
            return "coco"  # COCO files, but ambiguous: reading it will say why
    except OSError:
        return None


def read_source(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    skipped: SkipReport | None = None,
) -> tuple[DetectionSource, SkipReport]:
    """Read a detection dataset into records; every image is probed once.

    Args:
        path: a dataset folder, a COCO .json file, or a YOLO .yaml file.
        fmt: "coco", "yolo" or "voc"; None to tell it from the layout (``detect_format``).
        max_pixels: images with more pixels are skipped as "too large" without being decoded.
        skipped: report to add to (a new one when None).

    Raises:
        DataError: the path does not exist or is not a detection dataset, or its files are malformed.
        ConfigError: ``fmt`` is not one of ``FORMATS``.
    """
    report = skipped if skipped is not None else SkipReport()
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"detection format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if not Path(path).exists():
        raise DataError(f"{os.fspath(path)} does not exist; give a detection dataset: {LAYOUTS}")
    fmt = fmt or detect_format(path)
    if fmt is None:
        raise DataError(f"{os.fspath(path)} is not laid out as a detection dataset; expected {LAYOUTS}")
    return _READERS[fmt](Path(path), report, max_pixels=max_pixels), report
