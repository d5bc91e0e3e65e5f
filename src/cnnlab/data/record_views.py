"""What every record-backed split shares (detection boxes, segmentation masks): a view over a list
of records by position, whose items can be narrowed (``subset``) or re-transformed
(``with_transform``) without copying the records, and whose unreadable files are logged, written to
the skip log, and replaced by the next item."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from cnnlab.data.images import BadImageError
from cnnlab.data.skips import append_skip_log
from cnnlab.data.split import narrow_positions

log = logging.getLogger(__name__)
View = TypeVar("View", bound="RecordViews")


class RecordViews:
    """Mixin for splits that keep ``_positions`` (indices into their records), ``transform`` and
    ``skip_log``."""

    _positions: np.ndarray
    transform: Any
    skip_log: str | None

    def __len__(self) -> int:
        return len(self._positions)

    def _report(self, exc: BadImageError) -> None:
        log.warning("skipping %s: %s (%s); using the next item instead", exc.file, exc.reason, exc.detail)
        if self.skip_log is not None:
            append_skip_log(self.skip_log, exc.file, exc.reason, exc.detail)

    def with_transform(self: View, transform: Any) -> View:
        """The same items with another ``transform(image, target)`` (None for raw images)."""
        view = copy.copy(self)
        view.transform = transform
        return view

    def subset(self: View, indices: Sequence[int] | np.ndarray | torch.Tensor) -> View:
        """The items at ``indices`` (positions in this split, or a boolean mask); records are shared."""
        view = copy.copy(self)
        view._positions = narrow_positions(self._positions, indices)
        return view
