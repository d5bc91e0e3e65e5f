"""Validation at the end of each epoch, early stopping on the task's primary metric."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from cnnlab.evaluate.core import evaluate_batches
from cnnlab.train.hooks.base import Hook

SCALAR_KEYS = (
    *("top1", "top5", "loss", "macro_f1", "balanced_accuracy", "ece"),
    *("map", "map50", "map75", "mar_100"),
    *("miou", "mdice", "mdice_foreground", "pixel_accuracy", "hd95_mm"),
)


class EvalHook(Hook):
    """Evaluates (the EMA model when there is one), records the epoch's row, tracks the best."""

    priority = 30

    def __init__(
        self, batches: Callable[[], Iterable[tuple[torch.Tensor, Any]]] | None, eval_model: Callable[[], nn.Module]
    ) -> None:
        self.batches = batches
        self.eval_model = eval_model
        self.improved = False

    def after_epoch(self) -> None:
        t = self.trainer
        row: dict[str, Any] = {
            "epoch": t.state.epoch,
            "step": t.state.step,
            "train_loss": round(float(t.last_loss), 6) if t.last_loss is not None else None,
            "lr": t.state.lr,
            "elapsed_s": round(t.elapsed_s, 2),
            "train_img_per_s": round(t.epoch_samples / t.epoch_train_s, 1) if t.epoch_train_s else None,
        }
        self.improved = False
        if self.batches is not None:
            metrics = evaluate_batches(
                self.eval_model(),
                self.batches(),
                t.task,
                device=t.device,
                channels_last=t.channels_last,
                amp_dtype=t.amp_dtype,
                distributed=t.dist.enabled,
            )
            row.update({f"val_{k}": v for k, v in metrics.items() if k in SCALAR_KEYS})
            value = metrics.get(t.task.primary_metric)
            best = t.state.best_metric
            if value is not None and (best is None or (value > best if t.task.greater_is_better else value < best)):
                t.state.best_metric, t.state.best_epoch = value, t.state.epoch
                self.improved = True
        else:
            self.improved = True  # no validation split: the latest weights are the ones to keep
        t.state.history.append(row)


class EarlyStoppingHook(Hook):
    priority = 35

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def after_epoch(self) -> None:
        t = self.trainer
        if t.state.best_epoch is not None and t.state.epoch - t.state.best_epoch >= self.patience:
            t.request_stop(
                f"early stop: no better {t.task.primary_metric} for {self.patience} epochs "
                f"(best {t.state.best_metric:.4f} at epoch {t.state.best_epoch})"
            )
