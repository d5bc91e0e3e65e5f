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


class MLPHead(nn.Module):
    """Pool to a fixed grid, flatten, hidden linear layers, then the classifier (VGG, AlexNet)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        hidden: list[int],
        pool_size: int | None = None,
        spatial_dims: int = 2,
        drop_rate: float = 0.5,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.pool = get_pool_layer("adaptive_avg", spatial_dims)(pool_size or 1)
        width = in_features * (pool_size or 1) ** spatial_dims
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), act_layer(), nn.Dropout(drop_rate)]
            width = h
        self.hidden = nn.Sequential(*layers)
        self.in_features = width
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.hidden(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.fc(x)


class EmbeddingHead(nn.Module):
    """Global depthwise conv over the whole final map, then a linear 1x1 conv to ``dim`` (MobileFaceNet):
    an embedding that keeps where on the face a feature was, which global average pooling throws away.
    ``num_classes`` > 0 adds a classifier on the embedding (for softmax-style training)."""

    def __init__(self, in_features: int, num_classes: int, *, dim: int, map_size: tuple[int, ...]) -> None:
        super().__init__()
        self.gdconv = nn.Conv2d(in_features, in_features, tuple(map_size), groups=in_features, bias=False)
        self.gdbn = nn.BatchNorm2d(in_features)
        self.proj = nn.Conv2d(in_features, dim, 1, bias=False)
        self.bn = nn.BatchNorm2d(dim)
        self.in_features = dim
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.bn(self.proj(self.gdbn(self.gdconv(x)))), 1)
        return x if pre_logits else self.fc(x)
