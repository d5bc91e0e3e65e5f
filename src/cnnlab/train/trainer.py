"""The trainer's core: batch -> loss -> backward -> step. Everything else is a hook.

Task-agnostic: the task gives the loss; the batch source gives (inputs, targets). Distributed-aware:
the model may be DDP-wrapped, gradient accumulation skips the all-reduce on inner micro-steps, and
stop decisions are broadcast from rank 0.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import nn

from cnnlab.tasks.base import Task
from cnnlab.train.distributed import DistInfo, broadcast_flag
from cnnlab.train.hooks.base import Hook
from cnnlab.train.state import TrainState


class BatchSource(Protocol):
    batches_per_epoch: int
    batch_size: int

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, Any]]: ...


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: torch.optim.Optimizer,
        batches: BatchSource,
        *,
        epochs: int | None,
        budget_s: float | None,
        hooks: list[Hook],
        device: torch.device,
        state: TrainState | None = None,
        grad_accum: int = 1,
        channels_last: bool = False,
        amp_dtype: torch.dtype | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        if epochs is None and budget_s is None:
            raise ValueError("the trainer needs epochs, a time budget, or both")
        self.model = model
        self.task = task
        self.optimizer = optimizer
        self.batches = batches
        self.epochs = epochs
        self.budget_s = budget_s
        self.device = device
        self.state = state or TrainState()
        self.grad_accum = grad_accum
        self.channels_last = channels_last
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self.dist = dist or DistInfo()
        self.hooks = sorted(hooks, key=lambda h: h.priority)
        for hook in self.hooks:
            hook.trainer = self
        self.last_loss: torch.Tensor | None = None
        self._stop_requested = False
        self._micro_step = 0
        self._clock_start = 0.0
        self._elapsed_at_start = 0.0
        self.epoch_train_s = 0.0  # training time of the last epoch, evaluation and checkpoints excluded
        self.epoch_samples = 0

    # --- what hooks read ---------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The model itself, unwrapped from DistributedDataParallel."""
        return getattr(self.model, "module", self.model)

    @property
    def elapsed_s(self) -> float:
        return self._elapsed_at_start + (time.perf_counter() - self._clock_start)

    @property
    def progress(self) -> float:
        """Fraction of the planned training done: by steps, by time, whichever is further."""
        parts = []
        if self.epochs:
            done = self.state.epoch * self.batches.batches_per_epoch + self.state.batch_in_epoch
            parts.append(done / max(1, self.epochs * self.batches.batches_per_epoch))
        if self.budget_s:
            parts.append(self.elapsed_s / self.budget_s)
        return min(1.0, max(parts))

    def request_stop(self, reason: str) -> None:
        if not self._stop_requested:
            self._stop_requested = True
            self.state.stop_reason = reason

    # --- the loop ----------------------------------------------------------------------------
    def _call(self, event: str) -> None:
        for hook in self.hooks:
            getattr(hook, event)()

    def _should_stop(self) -> bool:
        return broadcast_flag(self._stop_requested, self.dist)

    def fit(self) -> TrainState:
        self._clock_start = time.perf_counter()
        self._elapsed_at_start = self.state.elapsed_s
        self._call("before_train")
        while not self._finished():
            self.model.train()
            self._call("before_epoch")
            epoch_start, samples_before = time.perf_counter(), self.state.samples
            for inputs, targets in self.batches.epoch(self.state.epoch, start=self.state.batch_in_epoch):
                self._call("before_step")
                self.last_loss = self.run_step(inputs, targets)
                self.state.batch_in_epoch += 1
                self.state.samples += inputs.shape[0] * self.dist.world_size
                self.state.elapsed_s = self.elapsed_s
                self._call("after_step")
                if self._should_stop():
                    break
            self.epoch_train_s = time.perf_counter() - epoch_start
            self.epoch_samples = self.state.samples - samples_before
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            self.state.elapsed_s = self.elapsed_s
            self._call("after_epoch")
            if self._should_stop():
                break
        if self.state.stop_reason is None:
            self.state.stop_reason = "completed"
        self._call("after_train")
        return self.state

    def _finished(self) -> bool:
        if self.epochs is not None and self.state.epoch >= self.epochs:
            return True
        return self._stop_requested

    def run_step(self, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
        """One micro-step: forward, loss, backward; an optimizer step every ``grad_accum`` of them."""
        inputs, targets = self._to_device(inputs), self._to_device(targets)
        prepare = getattr(self.task, "prepare_targets", None)  # tasks that derive targets from inputs (distillation)
        self._micro_step += 1
        stepping = self._micro_step % self.grad_accum == 0
        sync = contextlib.nullcontext() if stepping or not self.dist.enabled else self.model.no_sync()
        with sync:
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
            ):
                if prepare is not None:  # under autocast too: a teacher's forward costs as much as the student's step
                    targets = prepare(inputs, targets)
                loss = self.task.loss(self.model(inputs), targets)
            self.scaler.scale(loss / self.grad_accum).backward()
        if stepping:
            self._call("before_optimizer_step")
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.state.step += 1
            self._call("after_optimizer_step")
        return loss.detach()

    def _to_device(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            value = value.to(self.device, non_blocking=True)
            if self.channels_last and value.dim() == 4 and value.is_floating_point():
                value = value.contiguous(memory_format=torch.channels_last)
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(self._to_device(v) for v in value)
        if isinstance(value, dict):
            return {k: self._to_device(v) for k, v in value.items()}
        return value

    def hook_states(self) -> dict[str, Any]:
        return {type(h).__name__: h.state_dict() for h in self.hooks if h.state_dict()}

    def load_hook_states(self, states: dict[str, Any]) -> None:
        for hook in self.hooks:
            if type(hook).__name__ in states:
                hook.load_state_dict(states[type(hook).__name__])
