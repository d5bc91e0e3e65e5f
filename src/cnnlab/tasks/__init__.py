"""Tasks: what differs between classification, detection, segmentation and embedding."""

from __future__ import annotations

from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.tasks.base import Metrics, Task

__all__ = ["Metrics", "Task", "build_task", "task_for_card"]


def build_task(name: str, **kwargs: Any) -> Task:
    """The task object for ``name`` with its options (num_classes, class_names, loss options...)."""
    if name == "classify":
        from cnnlab.tasks.classify import ClassifyTask

        return ClassifyTask(**kwargs)
    if name == "detect":
        from cnnlab.tasks.detect import DetectTask

        return DetectTask(**kwargs)
    if name == "segment":
        from cnnlab.tasks.segment import SegmentTask

        return SegmentTask(**kwargs)
    raise ConfigError(f"task {name!r} is not available yet; cnnlab trains: classify, detect, segment")


def task_for_card(card: Any) -> Task:
    """The task a trained model's card describes, for evaluation and prediction (no training criterion)."""
    extra: dict[str, Any] = {}
    if card.task == "segment":  # whole images are tiled with windows of the training size
        extra = {"input_size": card.input_size}
    return build_task(card.task, num_classes=card.num_classes, class_names=card.class_names, **extra)
