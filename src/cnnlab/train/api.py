"""`train_model`: data and a model name in, a run directory with a trained, evaluated model out."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.env import hardware, versions
from cnnlab.runs import RunDir
from cnnlab.train import setup
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import DistInfo, barrier, init_from_env, shutdown
from cnnlab.train.hooks.checkpoint import CheckpointHook
from cnnlab.train.hooks.ema import EMAHook, ModelEMA
from cnnlab.train.hooks.evaluation import EarlyStoppingHook, EvalHook
from cnnlab.train.hooks.guards import GradClipHook, NonFiniteLossHook, TimeBudgetHook
from cnnlab.train.hooks.logging import CSVLoggerHook, ProgressHook, TensorBoardHook
from cnnlab.train.hooks.schedule import LRScheduleHook, PhaseHook
from cnnlab.train.optim import build_optimizer, parameter_depths
from cnnlab.train.prepare import prepare
from cnnlab.train.recipes import Plan
from cnnlab.train.resume import RESUME_FILE, read_resume
from cnnlab.train.state import TrainState
from cnnlab.train.trainer import Trainer


@dataclass
class TrainResult:
    path: Path
    metrics: dict[str, Any]  # test-split evaluation of the saved model
    state: TrainState
    plan: Plan
    skipped: dict[str, Any] = field(default_factory=dict)
    main: bool = True  # False on the other ranks of a distributed run, which report nothing

    def summary(self) -> dict[str, Any]:
        keys = (
            *("top1", "top5", "macro_f1", "ece", "loss", "samples"),
            *("map", "map50", "map75", "mar_100", "images"),
            *("miou", "mdice", "miou_foreground", "mdice_foreground", "pixel_accuracy", "hd95_mm"),
        )
        return {
            "run": str(self.path),
            "recipe": self.plan.recipe,
            "epochs": self.state.epoch,
            "stop_reason": self.state.stop_reason,
            "best_val": self.state.best_metric,
            "test": {k: self.metrics[k] for k in keys if k in self.metrics},
            "elapsed_s": round(self.state.elapsed_s, 1),
        }


def _seed_everything(seed: int, deterministic: bool, rank: int) -> None:
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def train_model(
    config: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    progress: bool | str | None = None,
    initial: tuple[torch.nn.Module, Any] | None = None,
    evaluate_test: bool = True,
    **options: Any,
) -> TrainResult:
    """Train (or resume) a model and evaluate it on the test split.

    Args:
        config: a TrainConfig, or None to build one from ``options`` (data=..., model=..., epochs=...).
        out: the run directory (default runs/train-<n>). An existing run is refused unless ``overwrite``.
        resume: a run directory to continue exactly where its last checkpoint left it. ``epochs`` or
            ``budget_s`` in ``options`` extend it; other options are taken from the run.
        progress: live progress bar (default: when stderr is a terminal); False: one line per epoch;
            "quiet": nothing (selection runs many short trainings and reports them itself).
        initial: (model, card) to continue from instead of building ``config.model``: a pruned model,
            a fake-quantized one (compression). Its card is kept; ``auto`` becomes the recover recipe.
        evaluate_test: False leaves the test split untouched (selection trials rank on validation).
    """
    if resume is not None:
        run = RunDir(resume)
        checkpoint = read_resume(run.file(RESUME_FILE))
        stored = checkpoint.meta["config"]
        stored.update({k: v for k, v in options.items() if k in ("epochs", "budget_s") and v is not None})
        config = TrainConfig.from_dict(stored)
    else:
        config = config or TrainConfig(**options)
        checkpoint = None
        run = None
    device = setup.pick_device(config.device)
    dist = init_from_env(device)
    if run is None:
        run = RunDir.create(out, "train", overwrite=overwrite) if dist.is_main else RunDir(out or "runs/_")
    try:
        return _train(config, run, checkpoint, device, dist, progress, initial, evaluate_test)
    finally:
        shutdown(dist)


def _train(
    config: TrainConfig,
    run: RunDir,
    checkpoint: Any,
    device: torch.device,
    dist: DistInfo,
    progress: bool | str | None,
    initial: tuple[torch.nn.Module, Any] | None = None,
    evaluate_test: bool = True,
) -> TrainResult:
    from cnnlab.data import open_dataset

    _seed_everything(config.seed, config.deterministic, dist.rank)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = open_dataset(
        config.data,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        skip_log=run.file("skipped.jsonl"),
        task=config.task,
    )
    if config.train_per_class:
        data = _limit_train(data, config.train_per_class, config.seed)
    task_name = config.task or data.task
    prepared = prepare(task_name, config, data, dist, device, initial)
    model, card, task, plan = prepared.model, prepared.card, prepared.task, prepared.plan
    batches, val_batches = prepared.batches, prepared.val_batches
    depths, deepest = parameter_depths(model)
    has_val = val_batches is not None

    channels_last = config.channels_last if config.channels_last is not None else card.spatial_dims == 2
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, plan.optimizer, plan.lr, plan.weight_decay, config.momentum, plan.layer_decay)
    ema = ModelEMA(model, config.ema_decay) if config.ema else None
    train_module = model
    if dist.enabled:
        train_module = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if device.type == "cuda" else None
        )

    def eval_model() -> torch.nn.Module:
        return ema.module if ema is not None else model

    eval_hook = EvalHook(val_batches, eval_model)
    hooks = [
        PhaseHook(plan.phases, depths, deepest, plan.freeze_norm_stats),
        LRScheduleHook(plan.lr, config.schedule, plan.warmup),
        NonFiniteLossHook(config.nonfinite),
        eval_hook,
    ]
    if config.grad_clip:
        hooks.append(GradClipHook(config.grad_clip))
    if ema is not None:
        hooks.append(EMAHook(ema))
    if config.budget_s:
        hooks.append(TimeBudgetHook(config.budget_s))
    if config.early_stop and has_val:
        hooks.append(EarlyStoppingHook(config.early_stop))
    if dist.is_main:
        checkpoint_hook = CheckpointHook(
            run,
            card,
            config=config.to_dict(),
            best_model=eval_model,
            ema=ema.module if ema else None,
            improved=lambda: eval_hook.improved,
            every_s=config.checkpoint_every_s,
        )
        hooks += [checkpoint_hook, CSVLoggerHook(run)]
        if progress != "quiet":
            hooks.append(ProgressHook(plan.epochs, config.budget_s, live=progress))
        if not dist.enabled:
            hooks[2] = NonFiniteLossHook(config.nonfinite, restore=checkpoint_hook.restore)
        if TensorBoardHook.available():
            hooks.append(TensorBoardHook(run))

    trainer = Trainer(
        train_module,
        task,
        optimizer,
        batches,
        epochs=plan.epochs,
        budget_s=config.budget_s,
        hooks=hooks,
        device=device,
        grad_accum=config.grad_accum,
        channels_last=channels_last,
        amp_dtype=setup.pick_amp(config, device),
        dist=dist,
    )
    if checkpoint is not None:
        checkpoint.restore(model, optimizer, trainer.scaler, ema.module if ema else None)
        trainer.state = TrainState.from_dict(checkpoint.meta["state"])
        trainer.state.stop_reason = None
        trainer.load_hook_states(checkpoint.meta.get("hooks", {}))

    record = {
        "command": "train",
        "config": config.to_dict(),
        "plan": plan.to_dict(),
        "data": {
            **data.describe(),
            "source": config.data,
            "seed": config.seed,
            "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction,
            "data_path": prepared.record.get("data_path"),
        },
        "task": task.describe(),
        **{k: v for k, v in prepared.record.items() if k != "data_path"},
        "channels_last": channels_last,
        "device": str(device),
        "world_size": dist.world_size,
        "versions": versions(),
        "hardware": hardware(),
        "started": started,
        "status": "running",
    }
    if dist.is_main:
        run.update_run_json(**record)
    try:
        state = trainer.fit()
    except KeyboardInterrupt:
        if dist.is_main:
            checkpoint_hook.save_resume()
            run.update_run_json(status="interrupted", state=trainer.state.to_dict())
        raise
    barrier(dist)
    if not dist.is_main:
        return TrainResult(run.path, {}, state, plan, main=False)
    from cnnlab.evaluate import evaluate_run

    # A run that diverged before its first sound epoch has no model to evaluate; run.json says why.
    has_model = run.file("model.safetensors").is_file()
    metrics = evaluate_run(run.path, split="test") if has_model and evaluate_test else {}
    skipped = _skipped(data, run)
    failed = (state.stop_reason or "").startswith("non-finite")
    run.update_run_json(
        status="stopped" if failed else "completed",
        stop_reason=state.stop_reason,
        epochs=state.epoch,
        steps=state.step,
        best_val=state.best_metric,
        best_epoch=state.best_epoch,
        elapsed_s=round(state.elapsed_s, 2),
        events=state.events,
        skipped=skipped,
        test=_scalars(metrics),
    )
    return TrainResult(run.path, metrics, state, plan, skipped)


def _limit_train(data: Any, per_class: int, seed: int) -> Any:
    """The same dataset with at most ``per_class`` training images per class (val and test untouched)."""
    import dataclasses

    from cnnlab.train.probe import balanced_subset

    train = data.splits["train"]
    keep = balanced_subset(torch.as_tensor(train.labels), per_class=per_class, seed=seed)
    return dataclasses.replace(data, splits={**data.splits, "train": train.subset(keep)})


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _skipped(data: Any, run: RunDir) -> dict[str, Any]:
    """What the dataset scan skipped, plus any file that became unreadable during training."""
    import json

    report = data.skipped.to_dict()
    log = run.file("skipped.jsonl")
    if log.is_file():
        late = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        report["during_training"] = late[:50]
        report["during_training_count"] = len(late)
    return report


__all__ = ["TrainResult", "train_model"]
