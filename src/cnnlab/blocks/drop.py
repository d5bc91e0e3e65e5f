"""Stochastic depth (drop-path): drop a residual branch for whole samples during training."""

from __future__ import annotations

import torch
from torch import nn


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def drop_path_rates(total_rate: float, depth: int) -> list[float]:
    """Linearly increasing rates over ``depth`` blocks (the stochastic-depth paper's schedule)."""
    if depth <= 1:
        return [total_rate] * depth
    return [total_rate * i / (depth - 1) for i in range(depth)]
