"""Hooks: everything around the core step (schedules, evaluation, checkpoints, logging, guards).

Each hook may implement any of the events below; the trainer calls them in ``priority`` order
(lower first). A hook that keeps state across a resume returns it from ``state_dict`` (JSON values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnlab.train.trainer import Trainer

EVENTS = (
    "before_train",
    "before_epoch",
    "before_step",
    "before_optimizer_step",
    "after_optimizer_step",
    "after_step",
    "after_epoch",
    "after_train",
)


class Hook:
    priority: int = 50
    trainer: Trainer

    def before_train(self) -> None: ...
    def before_epoch(self) -> None: ...
    def before_step(self) -> None: ...
    def before_optimizer_step(self) -> None: ...
    def after_optimizer_step(self) -> None: ...
    def after_step(self) -> None: ...
    def after_epoch(self) -> None: ...
    def after_train(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
