"""Knowledge distillation (Hinton et al. 2015) as a task: the teacher's softened outputs become part
of the targets, and the loss mixes the temperature-scaled KL divergence with the hard-label loss.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * task loss

The T^2 keeps the soft term's gradients on the scale of the hard term's as T grows. The teacher is
fed through its own pre-processing: the student's batch is un-normalised, resized and re-normalised
to the teacher's card, so a 32x32 LeNet can learn from a 28x28 ResNet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.tasks.base import Task


class CardAdapter:
    """Maps a batch normalised for one card to the input another card expects."""

    def __init__(self, source: Any, target: Any) -> None:
        self.identity = (
            list(source.input_size) == list(target.input_size)
            and list(source.mean) == list(target.mean)
            and list(source.std) == list(target.std)
        )
        self.src_mean = torch.tensor(source.mean).view(1, -1, 1, 1)
        self.src_std = torch.tensor(source.std).view(1, -1, 1, 1)
        self.dst_mean = torch.tensor(target.mean).view(1, -1, 1, 1)
        self.dst_std = torch.tensor(target.std).view(1, -1, 1, 1)
        self.size = tuple(target.input_size[1:])
        self.channels = target.input_size[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        raw = x * self.src_std.to(x.device) + self.src_mean.to(x.device)
        if raw.shape[1] != self.channels:
            raw = raw.mean(1, keepdim=True) if self.channels == 1 else raw.expand(-1, self.channels, -1, -1)
        if tuple(raw.shape[2:]) != self.size:
            raw = F.interpolate(raw, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return (raw - self.dst_mean.to(x.device)) / self.dst_std.to(x.device)


class DistillTask:
    def __init__(
        self,
        base: Task,
        teacher: nn.Module,
        adapt: Callable[[torch.Tensor], torch.Tensor],
        temperature: float = 4.0,
        alpha: float = 0.7,
    ) -> None:
        if temperature <= 0:
            raise ConfigError(f"--distill-temperature must be positive, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"--distill-alpha is the weight of the teacher's term, in [0, 1]; got {alpha}")
        self.base = base
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.adapt = adapt
        self.temperature = temperature
        self.alpha = alpha
        self.name = base.name
        self.primary_metric = base.primary_metric
        self.greater_is_better = base.greater_is_better

    @torch.no_grad()
    def prepare_targets(self, inputs: torch.Tensor, targets: Any) -> dict[str, Any]:
        return {"labels": targets, "teacher": self.teacher(self.adapt(inputs)).float()}

    def loss(self, outputs: torch.Tensor, targets: Any) -> torch.Tensor:
        if not isinstance(targets, dict):  # evaluation, or a caller without prepare_targets
            return self.base.loss(outputs, targets)
        t = self.temperature
        soft = (
            F.kl_div(
                F.log_softmax(outputs.float() / t, dim=1),
                F.softmax(targets["teacher"] / t, dim=1),
                reduction="batchmean",
            )
            * t
            * t
        )
        return self.alpha * soft + (1 - self.alpha) * self.base.loss(outputs, targets["labels"])

    def new_metrics(self) -> Any:
        return self.base.new_metrics()

    def collate(self, samples: Sequence[Any]) -> tuple[torch.Tensor, Any]:
        return self.base.collate(samples)

    def batch_transform(self) -> Any:
        return self.base.batch_transform()

    def predict(self, outputs: torch.Tensor, top_k: int = 5) -> list[dict[str, Any]]:
        return self.base.predict(outputs, top_k)

    def describe(self) -> dict[str, Any]:
        return {
            **self.base.describe(),
            "distillation": {
                "temperature": self.temperature,
                "alpha": self.alpha,
                "teacher_params": sum(p.numel() for p in self.teacher.parameters()),
            },
        }
