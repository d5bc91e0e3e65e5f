"""The model contract every registry model follows (the same one timm models follow).

    forward_features(x) -> the last feature map, before pooling
    forward_head(x, pre_logits=False) -> logits, or the pooled features when pre_logits
    reset_classifier(num_classes) -> a new, freshly initialised final layer
    feature_info -> one dict per feature stage: num_chs, reduction, module (path in the model)

Necks (detection, segmentation) rely on feature_info; fine-tuning relies on reset_classifier;
distillation and embeddings rely on pre_logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ContractModel(nn.Module):
    """Base for cnnlab's own classifiers: subclasses define the two forwards and the head."""

    num_classes: int
    num_features: int
    feature_info: list[dict[str, Any]]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def feature_stage(num_chs: int, reduction: int, module: str) -> dict[str, Any]:
    return {"num_chs": num_chs, "reduction": reduction, "module": module}
