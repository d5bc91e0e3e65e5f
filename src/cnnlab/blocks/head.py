"""Classification head: global pool -> (dropout) -> linear, for any spatial_dims."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.blocks.factory import get_pool_layer


class ClassifierHead(nn.Module):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        spatial_dims: int = 2,
        pool: str = "avg",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.spatial_dims = spatial_dims
        self.pool_type = pool
        self.pool = get_pool_layer(f"adaptive_{pool}", spatial_dims)(1)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)
        if pre_logits:
            return x
        return self.fc(self.drop(x))
