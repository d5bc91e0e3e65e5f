"""The task seam: everything that differs between classification, detection, segmentation and
embedding lives behind this protocol, so the trainer, evaluator, exporter and report never ask
"which task is this?".

Contract
    loss(outputs, targets) -> scalar tensor
    new_metrics() -> Metrics accumulator (update per batch, reduce across ranks, compute once)
    collate(samples) -> (inputs, targets) for a DataLoader
    batch_transform(inputs, targets) -> batch-level augmentation that changes targets (mixup), or None
    predict(outputs, top_k) -> JSON-ready predictions per sample
    primary_metric / greater_is_better: what "best" means for checkpoints and early stopping
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch


class Metrics(Protocol):
    def update(self, outputs: torch.Tensor, targets: Any) -> None: ...

    def reduce(self) -> None:
        """Sum the accumulated state across distributed ranks (no-op when not distributed)."""

    def compute(self) -> dict[str, Any]: ...


class Task(Protocol):
    name: str
    primary_metric: str
    greater_is_better: bool

    def loss(self, outputs: torch.Tensor, targets: Any) -> torch.Tensor: ...

    def new_metrics(self) -> Metrics: ...

    def collate(self, samples: Sequence[Any]) -> tuple[torch.Tensor, Any]: ...

    def batch_transform(self) -> Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]] | None: ...

    def predict(self, outputs: torch.Tensor, top_k: int = 5) -> list[dict[str, Any]]: ...

    def describe(self) -> dict[str, Any]: ...


def all_reduce_(tensors: Sequence[torch.Tensor]) -> None:
    """Sum tensors across ranks in place when torch.distributed is running."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
