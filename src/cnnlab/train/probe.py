"""A quick linear probe: how well do frozen pretrained features separate the user's classes?

Features of at most ``per_class`` training images per class are extracted once; a multinomial
logistic regression (L-BFGS, standardised features, light L2) is fit and scored on validation
images. Seconds, not minutes, and it is the number `auto` reasons with.

The fitted classifier is kept too: the transfer recipes start their new head from it (LP-FT, Kumar
et al. 2022), instead of from random weights that a low fine-tuning rate barely moves. Measured on
Fashion-MNIST with 10 images per class: see BENCHMARKS.md, "Few-shot transfer".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def extract_features(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    feats, labels = [], []
    for x, y in batches:
        feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def fit_linear(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float = 1e-3, iterations: int = 100
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    x = (features - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, labels) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach(), mean, std


def linear_probe(
    model: nn.Module,
    train_batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val_batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
) -> tuple[dict[str, Any], tuple[torch.Tensor, torch.Tensor]]:
    """The probe's summary (JSON-ready) and its classifier as (weight, bias) on the raw pre-logits
    features, i.e. with the standardisation folded in, ready to copy into the model's head."""
    train_x, train_y = extract_features(model, train_batches)
    val_x, val_y = extract_features(model, val_batches)
    weight, bias, mean, std = fit_linear(train_x, train_y, num_classes)
    predicted = (((val_x - mean) / std) @ weight.T + bias).argmax(1)
    summary = {
        "accuracy": float((predicted == val_y).float().mean()),
        "train_images": int(train_y.numel()),
        "val_images": int(val_y.numel()),
        "feature_dim": int(train_x.shape[1]),
    }
    folded = weight / std  # x_std @ W.T + b == x @ (W / std).T + (b - (W / std) @ mean)
    return summary, (folded, bias - folded @ mean)


def load_probe_head(model: nn.Module, head: tuple[torch.Tensor, torch.Tensor]) -> bool:
    """Copy a probe's classifier into the model's head when the head is one linear layer of the same
    shape (the model contract's ``get_classifier()``); False, and nothing changed, otherwise."""
    getter = getattr(model, "get_classifier", None)
    classifier = getter() if callable(getter) else None
    weight, bias = head
    if not isinstance(classifier, nn.Linear) or classifier.weight.shape != weight.shape or classifier.bias is None:
        return False
    with torch.no_grad():
        classifier.weight.copy_(weight)
        classifier.bias.copy_(bias)
    return True


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int = 0) -> list[int]:
    """At most ``per_class`` indices of each class, chosen with a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    chosen: list[int] = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        chosen += idx[torch.randperm(len(idx), generator=g)[:per_class]].tolist()
    return sorted(chosen)
