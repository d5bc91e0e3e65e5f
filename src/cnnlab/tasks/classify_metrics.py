"""Classification metrics as sums that can be reduced across ranks before they are computed.

State: a confusion matrix, top-k hit counts, summed loss, and calibration bins (count, summed
confidence, summed correctness per confidence bin). Everything derived (precision, recall, F1,
ECE) comes from these sums, so a distributed evaluation gives exactly the single-process numbers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.tasks.base import all_reduce_

ECE_BINS = 15


class ClassificationMetrics:
    def __init__(self, num_classes: int, class_names: list[str] | None = None, top_k: int = 5) -> None:
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.top_k = min(top_k, num_classes)
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.topk_hits = torch.zeros(1, dtype=torch.int64)
        self.loss_sum = torch.zeros(1, dtype=torch.float64)
        self.bin_count = torch.zeros(ECE_BINS, dtype=torch.float64)
        self.bin_confidence = torch.zeros(ECE_BINS, dtype=torch.float64)
        self.bin_correct = torch.zeros(ECE_BINS, dtype=torch.float64)

    @torch.no_grad()
    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits = outputs.detach().float().cpu()
        labels = targets.detach().cpu().long()
        probs = logits.softmax(dim=1)
        confidence, predicted = probs.max(dim=1)
        confidence = torch.nan_to_num(confidence, nan=0.0)  # a diverged model must still be measurable
        index = labels * self.num_classes + predicted
        self.confusion += torch.bincount(index, minlength=self.num_classes**2).view(self.num_classes, -1)
        topk = logits.topk(self.top_k, dim=1).indices
        self.topk_hits += (topk == labels[:, None]).any(dim=1).sum()
        self.loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        bins = (confidence * ECE_BINS).long().clamp_(0, ECE_BINS - 1)
        correct = (predicted == labels).double()
        self.bin_count += torch.bincount(bins, minlength=ECE_BINS).double()
        self.bin_confidence += torch.bincount(bins, weights=confidence.double(), minlength=ECE_BINS)
        self.bin_correct += torch.bincount(bins, weights=correct, minlength=ECE_BINS)

    def reduce(self) -> None:
        all_reduce_(
            [self.confusion, self.topk_hits, self.loss_sum, self.bin_count, self.bin_confidence, self.bin_correct]
        )

    def compute(self) -> dict[str, Any]:
        cm = self.confusion.double()
        total = cm.sum().item()
        if total == 0:
            return {"samples": 0}
        tp = cm.diag()
        predicted = cm.sum(dim=0)
        actual = cm.sum(dim=1)
        precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
        recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
        denom = precision + recall
        f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp))
        present = actual > 0
        ece = (
            (
                (self.bin_count / total)
                * (
                    self.bin_confidence / self.bin_count.clamp(min=1) - self.bin_correct / self.bin_count.clamp(min=1)
                ).abs()
            )
            .sum()
            .item()
        )
        return {
            "samples": int(total),
            "top1": tp.sum().item() / total,
            f"top{self.top_k}": self.topk_hits.item() / total,
            "loss": self.loss_sum.item() / total,
            "macro_f1": f1[present].mean().item() if present.any() else 0.0,
            "balanced_accuracy": recall[present].mean().item() if present.any() else 0.0,
            "ece": ece,
            "per_class": {
                name: {
                    "precision": precision[i].item(),
                    "recall": recall[i].item(),
                    "f1": f1[i].item(),
                    "support": int(actual[i].item()),
                }
                for i, name in enumerate(self.class_names)
            },
            "confusion_matrix": self.confusion.tolist(),
        }
