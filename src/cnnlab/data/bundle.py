"""What ``open_dataset`` returns: the splits of one dataset and what is known about them.

The shape is task-neutral on purpose: detection and segmentation readers will return the same
bundle with ``task`` set to "detect" or "segment" and their own split type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnlab.data.skips import SkipReport
from cnnlab.data.split import ClassificationSplit
from cnnlab.data.stratify import SPLITS


@dataclass
class DatasetBundle:
    """A dataset opened for one task, divided into train, val and test.

    Attributes:
        name: ``builtin:NAME``, or the path as the user gave it.
        task: "classify" (ClassificationSplit), "detect" (``detection.DetectionSplit``) or "segment"
            (``segmentation.SegmentationSplit``, images or volumes).
        class_names: labels index into this list.
        channels: native channels of every image the splits yield: 1 when every image is grey,
            else 3 (grey images are then repeated to RGB).
        native_size: (H, W) shared by every image ((D, H, W) for volumes), or None when sizes differ.
        splits: always the keys "train", "val" and "test"; val or test may be empty.
        split_policy: how the splits were made, in words (recorded in the run directory).
        skipped: what was left out when the dataset was opened, and why.
    """

    name: str
    task: str
    class_names: list[str]
    channels: int
    native_size: tuple[int, int] | None
    splits: dict[str, ClassificationSplit | Any]  # DetectionSplit for task "detect"
    split_policy: str
    skipped: SkipReport = field(default_factory=SkipReport)

    def __post_init__(self) -> None:
        if set(self.splits) != set(SPLITS):
            raise ValueError(f"splits must be exactly {SPLITS}, got {sorted(self.splits)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary, as ``cnnlab data info`` prints it and runs record it."""
        return {
            "name": self.name,
            "task": self.task,
            "classes": list(self.class_names),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "native_size": list(self.native_size) if self.native_size else None,
            "splits": {name: self._describe_split(split) for name, split in self.splits.items()},
            "split_policy": self.split_policy,
            "skipped": self.skipped.to_dict(),
        }

    def _describe_split(self, split: Any) -> dict[str, Any]:
        found: dict[str, Any] = {"size": len(split), "class_counts": split.class_counts()}
        if self.task == "detect":
            from cnnlab.data.detection.stats import box_statistics

            found["box_stats"] = box_statistics(split)
        if self.task == "segment" and len(split):
            pixels = [int(c) for c in split.pixel_counts()]
            total = max(1, sum(pixels))
            found["pixel_share"] = [round(c / total, 5) for c in pixels]
            stats = split.statistics()
            found["empty_masks"], found["spacing"] = stats["empty_masks"], stats["spacing"]
        return found
