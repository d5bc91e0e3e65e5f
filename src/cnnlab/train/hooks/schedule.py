"""Learning rate and trainable parts, as functions of progress."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnlab.train.hooks.base import Hook
from cnnlab.train.schedule import lr_factor


class LRScheduleHook(Hook):
    """Sets every group's rate before each optimizer step: base * layer scale * schedule(progress)."""

    priority = 10

    def __init__(self, base_lr: float, kind: str, warmup: float, final: float = 0.0) -> None:
        self.base_lr, self.kind, self.warmup, self.final = base_lr, kind, warmup, final

    def _apply(self) -> None:
        t = self.trainer
        factor = lr_factor(t.progress, self.kind, self.warmup, self.final) * t.state.lr_multiplier
        for group in t.optimizer.param_groups:
            group["lr"] = self.base_lr * group.get("lr_scale", 1.0) * factor
        t.state.lr = self.base_lr * factor

    def before_train(self) -> None:
        self._apply()

    def before_optimizer_step(self) -> None:
        self._apply()


class PhaseHook(Hook):
    """Freezes and unfreezes parts of the model as a recipe's phases begin (e.g. head warm-up, then
    all layers). Frozen BatchNorm layers are kept in eval mode, so their statistics stay pretrained;
    with ``freeze_norm_stats`` every BatchNorm layer is (its scale and shift may still train)."""

    priority = 5

    def __init__(
        self, phases: list[Any], depths: dict[str, int], deepest: int, freeze_norm_stats: bool = False
    ) -> None:
        self.phases = phases  # recipes.Phase, ordered by start
        self.depths = depths
        self.deepest = deepest
        self.freeze_norm_stats = freeze_norm_stats
        self.current: str | None = None

    def _phase_now(self) -> Any:
        progress = self.trainer.progress
        return [p for p in self.phases if p.start <= progress + 1e-9][-1]

    def _apply(self, phase: Any) -> None:
        t = self.trainer
        module = t.module
        for name, param in module.named_parameters():
            param.requires_grad_(phase.trains(self.depths.get(name, self.deepest), self.deepest))
        _freeze_norms(module, all_stats=self.freeze_norm_stats)
        if phase.name != self.current:
            t.state.events.append(
                {
                    "event": "phase",
                    "phase": phase.name,
                    "epoch": t.state.epoch,
                    "step": t.state.step,
                    "progress": round(t.progress, 4),
                }
            )
            self.current = phase.name
            t.state.phase = phase.name

    def before_epoch(self) -> None:
        self._apply(self._phase_now())

    def before_step(self) -> None:
        phase = self._phase_now()
        if phase.name != self.current:
            self._apply(phase)

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = state.get("current")


def _freeze_norms(model: nn.Module, all_stats: bool = False) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            frozen = all_stats or (params and not any(p.requires_grad for p in params))
            module.train(model.training and not frozen)
