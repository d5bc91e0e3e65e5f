"""Optimizers with the parameter groups practitioners expect.

- No weight decay on norms, biases and other 1-D parameters (decaying a BatchNorm scale toward 0
  fights the normalisation and costs accuracy).
- Layer-wise learning-rate decay for fine-tuning: the deeper a stage, the closer its rate to the
  head's; the stem learns at ``decay ** depth`` of it, so pretrained low-level filters move least.
  Stages are read from the model contract's ``feature_info``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError


def parameter_depths(model: nn.Module) -> tuple[dict[str, int], int]:
    """Depth of each parameter: 0 = stem, i + 1 = feature stage i, n + 1 = the classifier.

    The classifier is what the model contract's ``get_classifier()`` returns. Parameters between
    declared stages (timm declares only the stages where resolution changes), and those after the
    last stage but outside the classifier (a final 1x1 conv), belong to the stage before them.
    """
    stages = [s["module"] for s in getattr(model, "feature_info", None) or []]
    head = _classifier_params(model)
    deepest = len(stages) + 1

    def stage_of(name: str) -> int | None:
        return next((i for i, prefix in enumerate(stages) if name.startswith(prefix + ".")), None)

    depths: dict[str, int] = {}
    current = 0
    for name, param in model.named_parameters():
        if id(param) in head:
            depths[name] = deepest
            continue
        stage = stage_of(name)
        if stage is not None:
            current = max(current, stage + 1)
        depths[name] = current
    return depths, deepest


def _classifier_params(model: nn.Module) -> set[int]:
    getter = getattr(model, "get_classifier", None)
    classifier = getter() if callable(getter) else None
    if isinstance(classifier, nn.Module):
        return {id(p) for p in classifier.parameters()}
    return set()


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float | None = None) -> list[dict[str, Any]]:
    depths, deepest = parameter_depths(model) if layer_decay else ({}, 0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        no_decay = param.ndim <= 1 or name.endswith(".bias")
        depth = depths.get(name, deepest)
        scale = layer_decay ** (deepest - depth) if layer_decay else 1.0
        group = groups.setdefault(
            (depth, no_decay),
            {"params": [], "weight_decay": 0.0 if no_decay else weight_decay, "lr_scale": scale, "depth": depth},
        )
        group["params"].append(param)
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    layer_decay: float | None = None,
) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay, layer_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ConfigError(f"unknown optimizer {name!r}; choose sgd or adamw")
