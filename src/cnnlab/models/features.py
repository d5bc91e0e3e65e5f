"""Multi-scale feature extraction (`features_only=True`) for models that declare feature_info.

timm models bring their own; this serves cnnlab's own and torchvision's classifiers. Forward hooks
collect the outputs of the declared stage modules while forward_features runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError


class FeatureInfo:
    """timm-compatible view over a list of feature stages."""

    def __init__(self, stages: list[dict[str, Any]]) -> None:
        self.info = stages

    def channels(self) -> list[int]:
        return [s["num_chs"] for s in self.info]

    def reduction(self) -> list[int]:
        return [s["reduction"] for s in self.info]

    def module_name(self) -> list[str]:
        return [s["module"] for s in self.info]

    def __len__(self) -> int:
        return len(self.info)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.info[i]


class FeatureExtractor(nn.Module):
    """Returns the feature maps of the selected stages as a list, shallow to deep."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        stages = list(getattr(model, "feature_info", []) or [])
        if not stages:
            raise ConfigError(
                f"{type(model).__name__} declares no feature_info, so features_only is not available for it"
            )
        indices = list(range(len(stages))) if out_indices is None else list(out_indices)
        for i in indices:
            if not -len(stages) <= i < len(stages):
                raise ConfigError(
                    f"out_indices has {i}, but {type(model).__name__} has {len(stages)} feature stages "
                    f"(0..{len(stages) - 1})"
                )
        self.model = model
        self.selected = [stages[i] for i in indices]
        self.feature_info = FeatureInfo(self.selected)
        modules = dict(model.named_modules())
        self._targets = [modules[s["module"]] for s in self.selected]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor | None] = [None] * len(self._targets)
        handles = []
        for i, module in enumerate(self._targets):

            def hook(_m: nn.Module, _inp: Any, out: torch.Tensor, i: int = i) -> None:
                outputs[i] = out

            handles.append(module.register_forward_hook(hook))
        try:
            self.model.forward_features(x)
        finally:
            for h in handles:
                h.remove()
        return [o for o in outputs if o is not None]
