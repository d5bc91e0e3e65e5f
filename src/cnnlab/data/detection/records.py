"""One split of a detection dataset: a torch ``Dataset`` of ``(image, target)`` over a list of records.

Contract (what a detection task may rely on):
    split[i]            -> (tv_tensors.Image uint8 [C, H, W], target), ``transform(image, target)`` applied
    target["boxes"]     tv_tensors.BoundingBoxes float32 [N, 4], XYXY in absolute pixels, canvas (H, W)
    target["labels"]    int64 tensor [N], indices into ``class_names``
    target["image_id"]  int, the record's position in the dataset (unique across train, val and test)
    split.channels      C of every image (1 only when every image is grey)
    split.records       the ``BoxRecord`` of each item of this view

Box convention: pixel ``i`` covers ``[i, i + 1)``, so a box around columns 3..7 is ``x1 = 3, x2 = 8``.
Boxes were clipped to the image and cleaned when the dataset was read (``validate.clean_boxes``).

The transform is called with both image and target, torchvision.transforms.v2 style, so geometric
transforms move the boxes with the pixels. Views (``subset``, ``with_transform``) share the records.
Everything is picklable, so DataLoader workers started by fork or spawn can receive a split.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from cnnlab.data.images import DEFAULT_MAX_PIXELS, BadImageError, load_image
from cnnlab.data.record_views import RecordViews
from cnnlab.errors import DataError

Transform = Callable[[Any, Any], Any]


@dataclass
class BoxRecord:
    """One image and its boxes.

    Attributes:
        image: path of the image file.
        width: image width in pixels, as ``load_image`` will return it (EXIF orientation applied).
        height: image height in pixels.
        boxes: float32 ``[N, 4]`` x1, y1, x2, y2 in absolute pixels.
        labels: int64 ``[N]`` class indices.
        grey: the file decodes to one channel (known from the probe; decides the dataset's channels).
    """

    image: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    grey: bool = False

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.boxes) != len(self.labels):
            raise ValueError(f"{self.image}: {len(self.boxes)} boxes but {len(self.labels)} labels")


@dataclass
class DetectionSource:
    """What a reader found: records per split and the class names their labels index into.

    ``splits`` holds the splits the source declares (keys among train, val, test), or the single key
    ``ALL`` when it declares none.
    """

    splits: dict[str, list[BoxRecord]]
    class_names: list[str]


class DetectionSplit(RecordViews, Dataset[tuple[Any, dict[str, Any]]]):
    """Records, a view over their positions, and a transform; images are decoded on demand.

    Files were probed when the dataset was read. If one goes bad afterwards (deleted, damaged, or now
    a different size, which would misplace its boxes), ``__getitem__`` does not raise: it returns the
    next usable item of this view instead (wrapping around), logs a warning, and appends the file to
    ``skip_log`` when one was given, as ``FileSplit`` does for classification.
    """

    in_memory: bool = False

    def __init__(
        self,
        records: Sequence[BoxRecord],
        class_names: Sequence[str],
        channels: int = 3,
        *,
        transform: Transform | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        skip_log: str | os.PathLike[str] | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {channels!r}")
        self._records = list(records)
        self._positions = np.arange(len(self._records))
        self.class_names = list(class_names)
        self.channels = channels
        self.transform = transform
        self.max_pixels = max_pixels
        self.skip_log = Path(skip_log) if skip_log is not None else None
        self._failed: set[int] = set()  # positions that failed in this process, shared by its views

    @property
    def records(self) -> list[BoxRecord]:
        """The record of each item of this view."""
        return [self._records[p] for p in self._positions]

    @property
    def image_ids(self) -> np.ndarray:
        """The ``image_id`` each item of this view reports."""
        return self._positions.copy()

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a split of {n} items")
        position, image = self._fetch(index % n)
        record = self._records[position]
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(record.boxes.copy()), format="XYXY", canvas_size=(record.height, record.width)
            ),
            "labels": torch.from_numpy(record.labels.copy()),
            "image_id": position,
        }
        sample = tv_tensors.Image(image)
        if self.transform is not None:
            return self.transform(sample, target)
        return sample, target

    def _fetch(self, index: int) -> tuple[int, torch.Tensor]:
        """Position and decoded image of item ``index``, or of the next usable item after it."""
        n = len(self)
        for step in range(n):
            position = int(self._positions[(index + step) % n])
            if position in self._failed:
                continue
            try:
                return position, self._load(position)
            except BadImageError as exc:
                self._failed.add(position)
                self._report(exc)
        where = f"; see {self.skip_log}" if self.skip_log else ""
        raise DataError(f"none of the {n} images of this split can be read any more{where}")

    def _load(self, position: int) -> torch.Tensor:
        record = self._records[position]
        image = load_image(record.image, self.channels, max_pixels=self.max_pixels)
        if tuple(image.shape[1:]) != (record.height, record.width):
            now = f"{image.shape[1]}x{image.shape[2]}"
            raise BadImageError(
                record.image, "size changed", f"now {now} (H x W), its boxes are for {record.height}x{record.width}"
            )
        return image

    def class_counts(self) -> list[int]:
        """Number of boxes of each class in this view, in ``class_names`` order."""
        counts = np.zeros(len(self.class_names), dtype=np.int64)
        for position in self._positions:
            labels = self._records[position].labels
            counts += np.bincount(labels, minlength=len(self.class_names))[: len(self.class_names)]
        return counts.tolist()

    def box_count(self) -> int:
        """Number of boxes in this view."""
        return sum(len(self._records[p].labels) for p in self._positions)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} images, {self.box_count()} boxes, "
            f"{len(self.class_names)} classes, {self.channels} channels)"
        )
