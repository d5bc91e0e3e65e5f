"""Image classification: cross-entropy (label smoothing, class weights, soft targets from
mixup/cutmix), top-k/F1/ECE metrics, top-k predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError
from cnnlab.tasks.classify_metrics import ClassificationMetrics


class ClassifyTask:
    name = "classify"
    primary_metric = "top1"
    greater_is_better = True

    def __init__(
        self,
        num_classes: int,
        class_names: list[str] | None = None,
        *,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        if num_classes < 2:
            raise ConfigError(f"classification needs at least 2 classes, the data has {num_classes}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.label_smoothing = label_smoothing
        self.class_weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights.to(outputs.device) if self.class_weights is not None else None
        logits = outputs.float()
        if targets.dim() == 2:  # soft targets (mixup/cutmix): smoothing is applied to the mixed distribution
            soft = targets * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes
            per_sample = -(soft * F.log_softmax(logits, dim=1))
            if weight is not None:
                per_sample = per_sample * weight
            return per_sample.sum(dim=1).mean()
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=self.label_smoothing)

    def new_metrics(self) -> ClassificationMetrics:
        return ClassificationMetrics(self.num_classes, self.class_names)

    def collate(self, samples: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([torch.as_tensor(s[0]) for s in samples])
        labels = torch.tensor([int(s[1]) for s in samples], dtype=torch.int64)
        return images, labels

    def batch_transform(self) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
        if self.mixup_alpha <= 0 and self.cutmix_alpha <= 0:
            return None
        return MixBatch(self.num_classes, self.mixup_alpha, self.cutmix_alpha)

    def predict(self, outputs: torch.Tensor, top_k: int = 5) -> list[dict[str, Any]]:
        probs = outputs.detach().float().softmax(dim=1).cpu()
        values, indices = probs.topk(min(top_k, self.num_classes), dim=1)
        return [
            {
                "label": self.class_names[int(idx[0])],
                "index": int(idx[0]),
                "probability": float(val[0]),
                "top_k": [
                    {"label": self.class_names[int(i)], "index": int(i), "probability": float(v)}
                    for v, i in zip(val, idx, strict=True)
                ],
            }
            for val, idx in zip(values, indices, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
            "class_weights": self.class_weights.tolist() if self.class_weights is not None else None,
            "mixup_alpha": self.mixup_alpha,
            "cutmix_alpha": self.cutmix_alpha,
        }


class MixBatch:
    """Mixup or CutMix on a whole batch (one of the two per batch when both are on), soft targets out.

    Randomness comes from ``generator`` so a resumed run mixes exactly as the uninterrupted one.
    """

    def __init__(self, num_classes: int, mixup_alpha: float, cutmix_alpha: float) -> None:
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        soft = F.one_hot(labels, self.num_classes).to(images.dtype if images.is_floating_point() else torch.float32)
        use_cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha <= 0 or torch.rand((), generator=generator).item() < 0.5
        )
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = torch.distributions.Beta(alpha, alpha).sample().item() if generator is None else _beta(alpha, generator)
        perm = torch.randperm(images.shape[0], generator=generator)
        if use_cutmix:
            images, lam = _cutmix(images, perm, lam, generator)
        else:
            images = images * lam + images[perm] * (1.0 - lam)
        return images, soft * lam + soft[perm] * (1.0 - lam)


def _beta(alpha: float, generator: torch.Generator) -> float:
    # Beta(a, a) from two Gamma draws, with our generator (torch.distributions has no generator argument).
    x = torch._standard_gamma(torch.full((2,), alpha), generator=generator)
    return (x[0] / x.sum()).item()


def _cutmix(
    images: torch.Tensor, perm: torch.Tensor, lam: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, float]:
    h, w = images.shape[-2:]
    cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    cy = int(torch.randint(h, (), generator=generator))
    cx = int(torch.randint(w, (), generator=generator))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    images = images.clone()
    images[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
    return images, 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
