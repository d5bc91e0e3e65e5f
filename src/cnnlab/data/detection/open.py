"""``open_detection``: a COCO, YOLO or VOC dataset as a ``DatasetBundle`` with ``task="detect"``.

Split policy (``dense_splits``): the dataset's own splits are kept; val and test that it lacks are
carved from train; a dataset without splits is cut 70/10/20 (by the fractions given), images
stratified by the rarest class they contain.
"""

from __future__ import annotations

import os

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.dense_splits import carve, gather
from cnnlab.data.detection.records import DetectionSplit
from cnnlab.data.detection.sources import LAYOUTS, detect_format, read_source
from cnnlab.data.images import DEFAULT_MAX_PIXELS
from cnnlab.data.stratify import SPLITS, SplitOptions
from cnnlab.errors import DataError


def open_detection(
    path: str | os.PathLike[str],
    name: str | None = None,
    options: SplitOptions | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    fmt: str | None = None,
    skip_log: str | os.PathLike[str] | None = None,
) -> DatasetBundle:
    """Read, check and split a detection dataset.

    Args:
        path: a dataset folder, a COCO .json file or a YOLO .yaml file (see ``detect_format``).
        name: the dataset's name for messages and ``describe()`` (default: ``path``).
        options: seed and fractions for the splits that are carved (default ``SplitOptions()``).
        max_pixels: images with more pixels are skipped as "too large" without being decoded.
        fmt: "coco", "yolo" or "voc" to skip format detection.
        skip_log: JSON-lines file that receives images that go bad after opening.

    Raises:
        DataError: not a detection dataset, malformed annotation files, no usable image, no box at all,
            or a declared train split without a usable image.
    """
    name = name or os.fspath(path)
    options = options or SplitOptions()
    fmt = fmt or detect_format(path)
    source, skipped = read_source(path, fmt, max_pixels=max_pixels)
    records, declared = gather(source.splits)
    read_as = f"read as {str(fmt).upper()}"
    if not records:
        raise DataError(
            f"{name}: {read_as}, 0 usable images (skipped: {skipped.summary()}); expected {LAYOUTS}, "
            "with images that exist and decode"
        )
    boxes = sum(len(r.labels) for r in records)
    if boxes == 0:
        raise DataError(
            f"{name}: {read_as}, {len(records)} usable images but not one usable box (skipped: {skipped.summary()}); "
            "check that the annotations belong to these images and use the declared classes"
        )
    refuse = f"{name}: {read_as} (skipped: {skipped.summary()})"
    positions, policy = carve(records, declared, source.splits, options, unit="images", refuse=refuse)
    channels = 1 if all(r.grey for r in records) else 3
    sizes = {(r.height, r.width) for r in records}
    everything = DetectionSplit(records, source.class_names, channels, max_pixels=max_pixels, skip_log=skip_log)
    return DatasetBundle(
        name=name,
        task="detect",
        class_names=list(source.class_names),
        channels=channels,
        native_size=sizes.pop() if len(sizes) == 1 else None,
        splits={split: everything.subset(positions[split]) for split in SPLITS},
        split_policy=f"{policy} ({str(fmt).upper()})",
        skipped=skipped,
    )
