"""``open_detection``: a COCO, YOLO or VOC dataset as a ``DatasetBundle`` with ``task="detect"``.

Split policy, as for classification (``stratify.split_positions``): the dataset's own splits are
kept; val and test that it lacks are carved from train; a dataset without splits is cut 70/10/20 (by
the fractions given). Carving works on images, seeded, stratified by the rarest class each image
contains (images without boxes form their own group; groups too small to be cut in the asked
proportions are pooled), so a rare class reaches val and test whenever it has enough images.
"""

from __future__ import annotations

import math
import os
from collections import Counter

import numpy as np

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.detection.records import ALL, BoxRecord, DetectionSplit
from cnnlab.data.detection.sources import LAYOUTS, detect_format, read_source
from cnnlab.data.images import DEFAULT_MAX_PIXELS
from cnnlab.data.stratify import SPLITS, SplitOptions, split_positions
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
    records: list[BoxRecord] = []
    declared: list[str | None] = []
    for split in (*SPLITS, ALL):  # train first: image ids follow train, val, test
        found = source.splits.get(split, [])
        records.extend(found)
        declared.extend([None if split == ALL else split] * len(found))
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
    declared_splits = [s for s in SPLITS if s in source.splits] or None
    if declared_splits is not None and "train" not in declared:
        listed = ", ".join(declared_splits)
        raise DataError(
            f"{name}: {read_as}, the train split has 0 usable images (splits found: {listed}; skipped: "
            f"{skipped.summary()}); training needs at least one"
        )

    strata = _pooled(rarest_class(records), options)
    positions, policy = split_positions(strata, declared, declared_splits, options)
    if "stratified" in policy:
        policy += "; images stratified by the rarest class they contain"
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


def _pooled(strata: np.ndarray, options: SplitOptions) -> np.ndarray:
    """Strata too small to be cut in the asked proportions, pooled into one group.

    Why: ``stratified_split`` gives a stratum smaller than the number of splits to train first, so
    a dataset of many rare classes would otherwise end up with (almost) no val and test images.
    """
    shares = (1 - options.val_fraction - options.test_fraction, options.val_fraction, options.test_fraction)
    smallest = math.ceil(1 / min(s for s in shares if s > 0) - 1e-9)  # e.g. 10 for a 10% split
    values, counts = np.unique(strata, return_counts=True)
    pooled = strata.copy()
    pooled[np.isin(strata, values[counts < smallest])] = -2
    return pooled


def rarest_class(records: list[BoxRecord]) -> np.ndarray:
    """Per image, the class it contains that has the fewest boxes overall (-1 for an image without boxes)."""
    totals = Counter(int(label) for r in records for label in r.labels)
    strata = np.full(len(records), -1, dtype=np.int64)
    for i, record in enumerate(records):
        if len(record.labels):
            strata[i] = min({int(c) for c in record.labels}, key=lambda c: (totals[c], c))
    return strata
