"""Saving: the best model (model.safetensors + card) when validation improves, and the resume
checkpoint at every epoch end and every ``every_s`` seconds within an epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnlab.runs import ModelCard, RunDir, save_model
from cnnlab.train.hooks.base import Hook
from cnnlab.train.resume import RESUME_FILE, read_resume, save_resume


class CheckpointHook(Hook):
    priority = 40

    def __init__(
        self,
        run: RunDir,
        card: ModelCard,
        *,
        config: dict[str, Any],
        best_model: Callable[[], nn.Module],
        ema: nn.Module | None,
        improved: Callable[[], bool],
        every_s: float | None = 300.0,
    ) -> None:
        self.run = run
        self.card = card
        self.config = config
        self.best_model = best_model
        self.ema = ema
        self.improved = improved
        self.every_s = every_s
        self._last_save = time.monotonic()

    def save_resume(self) -> None:
        t = self.trainer
        save_resume(
            self.run.file(RESUME_FILE),
            model=t.module,
            optimizer=t.optimizer,
            scaler=t.scaler,
            ema=self.ema,
            state=t.state.to_dict(),
            hooks=t.hook_states(),
            config=self.config,
        )
        self._last_save = time.monotonic()

    def restore(self) -> bool:
        """Back to the last resume checkpoint (the non-finite guard's rollback)."""
        path = self.run.file(RESUME_FILE)
        if not path.is_file():
            return False
        t = self.trainer
        data = read_resume(path)
        data.restore(t.module, t.optimizer, t.scaler, self.ema)
        events, multiplier = t.state.events, t.state.lr_multiplier
        from cnnlab.train.state import TrainState

        restored = TrainState.from_dict(data.meta["state"])
        restored.events, restored.lr_multiplier = events, multiplier
        t.state.__dict__.update(restored.__dict__)
        return True

    def after_step(self) -> None:
        if self.every_s and time.monotonic() - self._last_save >= self.every_s:
            self.save_resume()

    def _healthy(self) -> bool:
        """Weights worth keeping: a diverged model (NaN/inf) never replaces a checkpoint."""
        return all(torch.isfinite(p).all() for p in self.best_model().parameters())

    def after_epoch(self) -> None:
        if not self._healthy():
            return
        if self.improved():
            save_model(self.best_model(), self.card, self.run.path)
        self.save_resume()

    def after_train(self) -> None:
        # Stopped before any epoch ended (time budget): keep what there is, if it is sound.
        if not self.run.file("model.safetensors").is_file() and self._healthy():
            save_model(self.best_model(), self.card, self.run.path)
