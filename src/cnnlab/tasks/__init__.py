"""Tasks: what differs between classification, detection, segmentation and embedding."""

from __future__ import annotations

from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.tasks.base import Metrics, Task

__all__ = ["Metrics", "Task", "build_task"]


def build_task(name: str, **kwargs: Any) -> Task:
    """The task object for ``name`` with its options (num_classes, class_names, loss options...)."""
    if name == "classify":
        from cnnlab.tasks.classify import ClassifyTask

        return ClassifyTask(**kwargs)
    if name == "detect":
        from cnnlab.tasks.detect import DetectTask

        return DetectTask(**kwargs)
    raise ConfigError(f"task {name!r} is not available yet; cnnlab trains: classify, detect")
