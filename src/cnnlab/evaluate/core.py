"""Running a model over evaluation batches and computing the task's metrics (shared by the
trainer's validation hook and `cnnlab evaluate`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from cnnlab.tasks.base import Task


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, Any]],
    task: Task,
    *,
    device: torch.device | None = None,
    channels_last: bool = False,
    amp_dtype: torch.dtype | None = None,
    distributed: bool = False,
) -> dict[str, Any]:
    """The task's metrics over ``batches``; with ``distributed``, each rank holds a shard and the
    sums are reduced across ranks before the metrics are computed."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    metrics = task.new_metrics()
    # Segmentation evaluates whole images and volumes, tiled by windows of the training size.
    infer = getattr(task, "infer", None)
    try:
        for inputs, targets in batches:
            inputs = inputs.to(device)
            if channels_last and inputs.dim() == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                outputs = infer(model, inputs) if infer is not None else model(inputs)
            metrics.update(outputs, targets)
    finally:
        model.train(was_training)
    if distributed:
        metrics.reduce()
    return metrics.compute()
