"""One split of a classification dataset: a torch ``Dataset`` of ``(image, label)`` over shared storage.

Contract (what the trainer and the tasks may rely on):
    split[i]            -> (tv_tensors.Image uint8 [C, H, W], int), ``transform`` applied to the image
    split.labels        numpy int64 [len(split)], the label of every item, for samplers
    split.channels      C of every image (the bundle's native channels)
    split.class_names   the bundle's classes; labels index into it
    split.in_memory     True when ``as_tensors()`` is a cheap copy, not a decode of every file

Views: ``subset`` and ``with_transform`` return new splits that share the images (a tensor, or a
list of paths) and differ only in which positions they show and which transform they apply.
Everything is picklable, so DataLoader workers started by fork or spawn can receive a split.
"""

from __future__ import annotations

import copy
import logging
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from cnnlab.data.images import DEFAULT_MAX_PIXELS, BadImageError, load_image
from cnnlab.data.skips import append_skip_log
from cnnlab.errors import DataError

log = logging.getLogger(__name__)

Transform = Callable[[Any], Any]


class ClassificationSplit(Dataset[tuple[Any, int]]):
    """Labels, a view over positions of the shared storage, and a transform; subclasses fetch images."""

    in_memory: bool = False

    def __init__(
        self,
        labels: np.ndarray,
        class_names: Sequence[str],
        channels: int,
        *,
        transform: Transform | None = None,
    ) -> None:
        self._all_labels = np.asarray(labels, dtype=np.int64)
        self._positions = np.arange(len(self._all_labels))  # views narrow this down (``subset``)
        self.labels = self._all_labels[self._positions]
        self.class_names = list(class_names)
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = operator.index(index)  # numpy and 0-d torch integers too; slices are not supported
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a split of {n} items")
        image, label = self._fetch(index % n)
        image = tv_tensors.Image(image)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def _fetch(self, index: int) -> tuple[torch.Tensor, int]:
        """Image (uint8 [C, H, W], not shared with storage) and label of item ``index`` of this view."""
        raise NotImplementedError

    def with_transform(self, transform: Transform | None) -> ClassificationSplit:
        """The same items with another transform (None for raw uint8 images); data is shared."""
        view = copy.copy(self)
        view.transform = transform
        return view

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> ClassificationSplit:
        """The items at ``indices`` (positions in this split, or a boolean mask); data is shared."""
        view = copy.copy(self)
        view._positions = narrow_positions(self._positions, indices)
        view.labels = self._all_labels[view._positions]
        return view

    def class_counts(self) -> list[int]:
        """Number of items of each class, in ``class_names`` order."""
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()

    def as_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images as uint8 ``[N, C, H, W]`` and labels as int64 ``[N]``, transform not applied."""
        raise NotImplementedError(f"{type(self).__name__} cannot hand out all its images as one tensor")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} items, {len(self.class_names)} classes, {self.channels} channels)"


class InMemorySplit(ClassificationSplit):
    """Images held in one uint8 tensor ``[N, C, H, W]`` (the built-in sets)."""

    in_memory = True

    def __init__(
        self,
        images: torch.Tensor,
        labels: np.ndarray,
        class_names: Sequence[str],
        *,
        transform: Transform | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"images must be uint8 [N, C, H, W] with N = {len(labels)}, got {images.dtype} {tuple(images.shape)}"
            )
        super().__init__(labels, class_names, images.shape[1], transform=transform)
        self._images = images

    def _fetch(self, index: int) -> tuple[torch.Tensor, int]:
        position = int(self._positions[index])
        # A copy: a transform that works in place must not change the shared images.
        return self._images[position].clone(), int(self._all_labels[position])

    def as_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """New tensors (safe to modify in place) of this view's images and labels."""
        positions = torch.from_numpy(self._positions.astype(np.int64, copy=False))
        return self._images.index_select(0, positions), torch.from_numpy(self.labels.copy())


class FileSplit(ClassificationSplit):
    """Images decoded from files on demand with ``load_image``.

    Files were probed when the dataset was opened. If one goes bad afterwards (deleted, rewritten,
    damaged in a way the probe could not see, or now a different size), ``__getitem__`` does not
    raise: it returns the next usable item of this view instead (wrapping around; its label comes
    with it), logs a warning, and appends ``{"file", "reason", "detail"}`` as one JSON line to
    ``skip_log`` when one was given. Each process remembers the files that failed and skips them
    from then on, so a file is logged once per DataLoader worker, not once per epoch.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: np.ndarray,
        class_names: Sequence[str],
        channels: int,
        *,
        native_size: tuple[int, int] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        skip_log: str | os.PathLike[str] | None = None,
        transform: Transform | None = None,
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        super().__init__(labels, class_names, channels, transform=transform)
        self._paths = list(paths)
        self.native_size = native_size
        self.max_pixels = max_pixels
        self.skip_log = Path(skip_log) if skip_log is not None else None
        self._failed: set[int] = set()  # positions that failed in this process, shared by its views

    @property
    def paths(self) -> list[str]:
        """The file of each item of this view."""
        return [self._paths[p] for p in self._positions]

    def _fetch(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        for step in range(n):
            position = int(self._positions[(index + step) % n])
            if position in self._failed:
                continue
            try:
                image = self._load(position)
            except BadImageError as exc:
                self._failed.add(position)
                self._report(exc)
                continue
            return image, int(self._all_labels[position])
        where = f"; see {self.skip_log}" if self.skip_log else ""
        raise DataError(f"none of the {n} files of this split can be read any more{where}")

    def _load(self, position: int) -> torch.Tensor:
        path = self._paths[position]
        image = load_image(path, self.channels, max_pixels=self.max_pixels)
        if self.native_size is not None and tuple(image.shape[1:]) != self.native_size:
            # Batches are stacked without resizing when every image shares one size.
            size = f"{image.shape[1]}x{image.shape[2]}"
            expected = f"{self.native_size[0]}x{self.native_size[1]}"
            raise BadImageError(path, "size changed", f"now {size} (H x W), the dataset's images are {expected}")
        return image

    def _report(self, exc: BadImageError) -> None:
        log.warning("skipping %s: %s (%s); using the next image instead", exc.file, exc.reason, exc.detail)
        if self.skip_log is not None:
            append_skip_log(self.skip_log, exc.file, exc.reason, exc.detail)

    def as_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode every file into uint8 ``[N, C, H, W]`` (needs ``native_size``; costs N*C*H*W bytes).

        A file that fails is replaced as in ``__getitem__``, so the labels returned are those of the
        images actually decoded.

        Raises:
            NotImplementedError: images differ in size (``native_size`` is None).
        """
        if self.native_size is None:
            raise NotImplementedError("the images differ in size; resize them per sample (use the DataLoader)")
        height, width = self.native_size
        images = torch.empty((len(self), self.channels, height, width), dtype=torch.uint8)
        labels = torch.empty(len(self), dtype=torch.int64)
        for i in range(len(self)):
            images[i], labels[i] = self._fetch(i)
        return images, labels


def narrow_positions(positions: np.ndarray, indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    """``positions`` at ``indices`` (positions in the view, or a boolean mask over it), for ``subset``."""
    chosen = np.asarray(indices)
    if chosen.dtype == np.bool_:
        if chosen.shape != (len(positions),):
            raise IndexError(f"boolean mask of shape {chosen.shape} for a split of {len(positions)} items")
        chosen = np.flatnonzero(chosen)
    return positions[chosen.astype(np.int64, copy=False)]
