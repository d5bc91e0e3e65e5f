"""Guards: gradient clipping, the time budget, and what to do when the loss stops being a number."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from cnnlab.train.hooks.base import Hook


class GradClipHook(Hook):
    priority = 15

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def before_optimizer_step(self) -> None:
        t = self.trainer
        t.scaler.unscale_(t.optimizer)  # clip the true gradients, not the loss-scaled ones
        torch.nn.utils.clip_grad_norm_(t.module.parameters(), self.max_norm)


class TimeBudgetHook(Hook):
    priority = 90

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s

    def after_step(self) -> None:
        if self.trainer.elapsed_s >= self.budget_s:
            self.trainer.request_stop(f"time budget of {self.budget_s:g}s reached")


class NonFiniteLossHook(Hook):
    """A NaN/inf loss stops the run cleanly with the best weights kept (``stop``), or restores the
    last checkpoint and halves the learning rate (``rollback``, at most ``max_rollbacks`` times)."""

    priority = 1

    def __init__(self, policy: str, restore: Callable[[], bool] | None = None, max_rollbacks: int = 2) -> None:
        self.policy = policy
        self.restore = restore
        self.max_rollbacks = max_rollbacks
        self.rollbacks = 0

    def after_step(self) -> None:
        t = self.trainer
        loss = t.last_loss
        if loss is None or math.isfinite(float(loss)):
            return
        where = f"epoch {t.state.epoch + 1}, batch {t.state.batch_in_epoch}, lr {t.state.lr:.3g}"
        t.state.events.append(
            {
                "event": "non-finite loss",
                "epoch": t.state.epoch,
                "step": t.state.step,
                "lr": t.state.lr,
                "policy": self.policy,
            }
        )
        if self.policy == "rollback" and self.restore and self.rollbacks < self.max_rollbacks and self.restore():
            self.rollbacks += 1
            t.state.lr_multiplier *= 0.5
            t.state.events.append({"event": "rollback", "lr_multiplier": t.state.lr_multiplier})
            return
        t.request_stop(
            f"non-finite loss ({float(loss)}) at {where}; stopped cleanly with the last good weights. "
            "Lower --lr, add --grad-clip 1.0, or use --nonfinite rollback"
        )

    def state_dict(self) -> dict[str, int]:
        return {"rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.rollbacks = int(state.get("rollbacks", 0))
