"""Exponential moving average of the weights; evaluation and the saved model use it when on."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from cnnlab.train.hooks.base import Hook


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float = 0.999, warmup_steps: int = 100) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.warmup_steps = warmup_steps
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        # Early in training the average would be dominated by the random init; ramp the decay up.
        decay = min(self.decay, (1 + self.updates) / (self.warmup_steps + self.updates))
        for ema_t, t in zip(self.module.state_dict().values(), model.state_dict().values(), strict=True):
            if ema_t.is_floating_point():
                ema_t.lerp_(t.detach(), 1.0 - decay)
            else:
                ema_t.copy_(t)


class EMAHook(Hook):
    priority = 20

    def __init__(self, ema: ModelEMA) -> None:
        self.ema = ema

    def after_optimizer_step(self) -> None:
        self.ema.update(self.trainer.module)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.ema.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.updates = int(state.get("updates", 0))
