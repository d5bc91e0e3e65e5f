"""One split of a segmentation dataset: a torch ``Dataset`` of ``(image, target)`` over a list of records.

Contract (what a segmentation task may rely on):
    split[i]            -> (image, target), ``transform(image, target)`` applied when one is set
    2D image            tv_tensors.Image uint8 [C, H, W]
    3D image            float32 tensor [C, D, H, W], raw intensities
    target["mask"]      int64 class ids, [H, W] (a tv_tensors.Mask, so v2 transforms move it) or [D, H, W];
                        IGNORE_INDEX (255) marks pixels that count for nothing
    target["spacing"]   pixel size per spatial axis in mm, (y, x) or (z, y, x); 1.0 where unknown
    target["index"]     int, the record's position in the dataset (unique across train, val and test)
    split.channels      C of every image (2D: 1 only when every image is grey)
    split.spatial_dims  2 or 3

Masks were read and checked when the dataset was opened (COCO masks excepted: they are rendered from
their polygons when asked for). How files are decoded is the business of an ``ItemReader`` that
the format's module supplies; records only say where things are and what was found in them.
Views (``subset``, ``with_transform``) share the records; everything is picklable.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from cnnlab.data.images import DEFAULT_MAX_PIXELS, BadImageError
from cnnlab.data.record_views import RecordViews
from cnnlab.errors import DataError

IGNORE_INDEX = 255
Transform = Callable[[Any, Any], Any]


@dataclass
class MaskRecord:
    """One image (or volume) and its mask, as found when the dataset was opened.

    Attributes:
        image: path of the image file or image volume.
        mask: path of the mask or label file (for COCO, the annotation file; for a self-contained
            .npz, the image file itself).
        size: spatial size as the image decodes: (H, W) or (D, H, W).
        labels: sorted int64 class ids present in the mask, IGNORE_INDEX left out.
        grey: 2D: the image decodes to one channel (decides the dataset's channels).
        channels: 3D: channels of the volume.
        spacing: pixel size per spatial axis in mm; ones when unknown.
        pixels: int64 ``[K]`` pixels of each class, once known (COCO: after the first render).
        regions: COCO: ``(class id or IGNORE_INDEX, segmentation)`` in paint order.
    """

    image: str
    mask: str
    size: tuple[int, ...]
    labels: np.ndarray
    grey: bool = False
    channels: int = 1
    spacing: tuple[float, ...] = ()
    pixels: np.ndarray | None = None
    regions: tuple[tuple[int, Any], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self.size = tuple(int(s) for s in self.size)
        self.labels = np.unique(np.asarray(self.labels, dtype=np.int64).reshape(-1))
        self.spacing = tuple(float(s) for s in self.spacing) or (1.0,) * len(self.size)
        if len(self.spacing) != len(self.size):
            raise ValueError(f"{self.image}: spacing {self.spacing} for a size of {len(self.size)} axes")

    @property
    def empty(self) -> bool:
        """The mask holds background (class 0) and ignored pixels only."""
        return not (self.labels > 0).any()


class ItemReader(Protocol):
    """How one format turns a record into arrays; a picklable object shared by a dataset's splits."""

    spatial_dims: int

    def load_image(self, record: MaskRecord, channels: int, max_pixels: int) -> torch.Tensor:
        """uint8 ``[C, H, W]`` (2D) or float32 ``[C, D, H, W]`` (3D); raises BadImageError."""
        ...

    def load_mask(self, record: MaskRecord) -> np.ndarray:
        """Integer class ids of the record's spatial size; raises BadImageError."""
        ...


@dataclass
class SegmentationSource:
    """What a reader found: records per split (train, val, test, or ``ALL``), class names, and its reader."""

    splits: dict[str, list[MaskRecord]]
    class_names: list[str]
    reader: ItemReader


class SegmentationSplit(RecordViews, Dataset[tuple[Any, dict[str, Any]]]):
    """Records, a view over their positions, and a transform; images and masks are decoded on demand.

    A file that goes bad after the dataset was opened (deleted, damaged, resized) does not raise:
    the next usable item of the view is returned instead (wrapping around), with a warning, and the
    file is appended to ``skip_log`` when one was given, as ``DetectionSplit`` does.
    """

    def __init__(
        self,
        records: Sequence[MaskRecord],
        class_names: Sequence[str],
        channels: int,
        *,
        reader: ItemReader,
        transform: Transform | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        skip_log: str | os.PathLike[str] | None = None,
    ) -> None:
        if reader.spatial_dims == 2 and channels not in (1, 3):
            raise ValueError(f"channels of 2D images must be 1 or 3, not {channels!r}")
        self._records = list(records)
        self._positions = np.arange(len(self._records))
        self.class_names = list(class_names)
        self.channels = channels
        self.reader = reader
        self.spatial_dims = reader.spatial_dims
        self.transform = transform
        self.max_pixels = max_pixels
        self.skip_log = Path(skip_log) if skip_log is not None else None
        self._failed: set[int] = set()  # positions that failed in this process, shared by its views

    @property
    def records(self) -> list[MaskRecord]:
        """The record of each item of this view."""
        return [self._records[p] for p in self._positions]

    @property
    def indices(self) -> np.ndarray:
        """The ``index`` each item of this view reports (its position in the dataset)."""
        return self._positions.copy()

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a split of {n} items")
        position, image, mask = self._fetch(index % n)
        record = self._records[position]
        labels = torch.from_numpy(np.require(mask, dtype=np.int64, requirements=["C", "W"]))
        if self.spatial_dims == 2:
            image, labels = tv_tensors.Image(image), tv_tensors.Mask(labels)
        target = {"mask": labels, "spacing": record.spacing, "index": position}
        if self.transform is not None:
            return self.transform(image, target)
        return image, target

    def _fetch(self, index: int) -> tuple[int, torch.Tensor, np.ndarray]:
        """Position, image and mask of item ``index``, or of the next usable item after it."""
        n = len(self)
        for step in range(n):
            position = int(self._positions[(index + step) % n])
            if position in self._failed:
                continue
            try:
                return (position, *self._load(position))
            except BadImageError as exc:
                self._failed.add(position)
                self._report(exc)
        where = f"; see {self.skip_log}" if self.skip_log else ""
        raise DataError(f"none of the {n} items of this split can be read any more{where}")

    def _load(self, position: int) -> tuple[torch.Tensor, np.ndarray]:
        record = self._records[position]
        image = self.reader.load_image(record, self.channels, self.max_pixels)
        mask = self.reader.load_mask(record)
        for what, file, shape in (("image", record.image, image.shape[1:]), ("mask", record.mask, mask.shape)):
            if tuple(shape) != record.size:
                now, was = "x".join(map(str, shape)), "x".join(map(str, record.size))
                raise BadImageError(file, "size changed", f"the {what} is now {now}, it was {was} when opened")
        return image, mask

    def class_counts(self) -> list[int]:
        """Per class, the number of items of this view whose mask contains it."""
        counts = np.zeros(len(self.class_names), dtype=np.int64)
        for position in self._positions:
            labels = self._records[position].labels
            counts[labels[labels < len(counts)]] += 1
        return counts.tolist()

    def pixel_counts(self) -> list[int]:
        """Per class, the number of pixels (voxels) of this view's masks that hold it.

        Known from opening for mask folders and volumes; COCO counts come from the annotations'
        areas, or from rendering a mask once (kept in its record) where an annotation has no area.
        """
        counts = np.zeros(len(self.class_names), dtype=np.int64)
        for position in self._positions:
            record = self._records[position]
            if record.pixels is None:
                try:
                    mask = self.reader.load_mask(record)
                except BadImageError as exc:
                    self._report(exc)
                    continue
                record.pixels = class_pixels(mask, len(counts))
            counts += record.pixels[: len(counts)]
        return counts.tolist()

    def empty_count(self) -> int:
        """Items whose mask holds background and ignored pixels only (kept: they teach "nothing here")."""
        return sum(1 for p in self._positions if self._records[p].empty)

    def statistics(self) -> dict[str, Any]:
        """A JSON-ready summary of the masks and spacings of this view (nothing is decoded)."""
        spacings = sorted({self._records[p].spacing for p in self._positions})
        return {
            "items": len(self),
            "empty_masks": self.empty_count(),
            "spacing": [list(s) for s in spacings[:5]] + ([["..."]] if len(spacings) > 5 else []),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} items, {self.spatial_dims}D, {len(self.class_names)} classes, "
            f"{self.channels} channels)"
        )


def class_pixels(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 ``[num_classes]``: pixels of each class id in ``mask`` (ids outside 0..K-1, 255 included, left out)."""
    values = mask.reshape(-1)
    values = values[(values >= 0) & (values < num_classes)]
    return np.bincount(values.astype(np.intp, copy=False), minlength=num_classes).astype(np.int64)
