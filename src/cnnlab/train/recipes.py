"""Recipes: how to train, decided before the first step and recorded in run.json.

scratch       every layer from random init; SGD + Nesterov, warm-up then cosine, label smoothing
linear-probe  pretrained backbone frozen (BatchNorm statistics too), only the head learns
finetune      head warm-up with the backbone frozen, then every layer with layer-wise LR decay
gradual       unfreeze stage by stage from the head down (ULMFiT-style), for little data far
              from the pretraining domain
auto          picks one of the above from the data size per class and a quick linear probe that
              measures how well the pretrained features already separate the classes
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig

DEFAULT_EPOCHS = 10
FEW_SHOT = 30  # training images per class below which auto treats the data as few-shot


@dataclass
class Phase:
    name: str
    start: float  # progress at which it begins
    train_depth: int | None = None  # None: every layer; k: the head and the k deepest stages

    def trains(self, depth: int, deepest: int) -> bool:
        return self.train_depth is None or depth >= deepest - self.train_depth


@dataclass
class Plan:
    recipe: str
    optimizer: str
    lr: float
    weight_decay: float
    phases: list[Phase]
    warmup: float = 0.0  # fraction of training
    layer_decay: float | None = None
    label_smoothing: float = 0.0
    epochs: int | None = None
    reasoning: list[str] = field(default_factory=list)
    probe: dict[str, Any] | None = None
    # BatchNorm statistics stay pretrained (eval mode) even in layers that train: with a few dozen
    # images, batches of 16 re-estimate them badly (the few-shot benchmark lost 30 points to it)
    freeze_norm_stats: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batch_scaled(lr: float, batch_size: int, reference: int = 64) -> float:
    return lr * batch_size / reference  # linear scaling rule (Goyal et al. 2017)


def scratch_plan(cfg: TrainConfig) -> Plan:
    return Plan(
        "scratch",
        "sgd",
        _batch_scaled(0.05, cfg.batch_size),
        5e-4,
        [Phase("all layers", 0.0)],
        warmup=0.05,
        label_smoothing=0.1,
        reasoning=["from scratch: SGD with Nesterov momentum, 5% warm-up then cosine, label smoothing 0.1"],
    )


def linear_probe_plan(cfg: TrainConfig) -> Plan:
    return Plan(
        "linear-probe",
        "adamw",
        3e-3,
        1e-4,
        [Phase("head only", 0.0, train_depth=0)],
        reasoning=["linear probe: backbone frozen (BatchNorm statistics included), only the head learns"],
    )


def finetune_plan(cfg: TrainConfig, layer_decay: float = 0.75) -> Plan:
    return Plan(
        "finetune",
        "adamw",
        _batch_scaled(1e-3, cfg.batch_size),
        0.05,
        [Phase("head warm-up", 0.0, train_depth=0), Phase("all layers", 0.1)],
        warmup=0.05,
        layer_decay=layer_decay,
        label_smoothing=0.1,
        reasoning=[
            f"fine-tune: 10% head warm-up with the backbone frozen, then all layers with layer-wise "
            f"LR decay {layer_decay} (the stem learns slowest)"
        ],
    )


def gradual_plan(cfg: TrainConfig, stages: int) -> Plan:
    phases = [Phase("head only", 0.0, train_depth=0)]
    span = 0.6 / max(1, stages)
    phases += [Phase(f"head + {k} stage{'s' * (k > 1)}", round(k * span, 4), train_depth=k) for k in range(1, stages)]
    phases.append(Phase("all layers", 0.6))
    return Plan(
        "gradual",
        "adamw",
        _batch_scaled(5e-4, cfg.batch_size),
        0.05,
        phases,
        warmup=0.02,
        label_smoothing=0.1,
        reasoning=[
            f"gradual unfreezing: head first, then one of {stages} stages at a time from the top over "
            "the first 60% of training, then all layers"
        ],
    )


def recover_plan(cfg: TrainConfig) -> Plan:
    return Plan(
        "recover",
        "sgd",
        _batch_scaled(0.01, cfg.batch_size),
        5e-4,
        [Phase("all layers", 0.0)],
        warmup=0.0,
        label_smoothing=0.1,
        reasoning=["recovery fine-tune: every layer at a low rate (SGD 0.01 per 64 images), cosine to 0"],
    )


def make_plan(
    cfg: TrainConfig,
    *,
    pretrained: bool,
    class_counts: list[int],
    stages: int,
    probe: Callable[[], dict[str, Any]] | None = None,
    initial: bool = False,
) -> Plan:
    """The recipe for this run, with every default it chose filled in. ``initial``: the model comes
    trained already (compression), so ``auto`` means a recovery fine-tune."""
    recipe = "recover" if (initial and cfg.recipe == "auto") else cfg.recipe
    if recipe in ("linear-probe", "finetune", "gradual") and not pretrained:
        raise ConfigError(f"--recipe {recipe} adapts pretrained weights; add --pretrained, or use --recipe scratch")
    if recipe == "auto":
        plan = auto_plan(cfg, pretrained=pretrained, class_counts=class_counts, stages=stages, probe=probe)
    elif recipe == "scratch":
        plan = scratch_plan(cfg)
    elif recipe == "linear-probe":
        plan = linear_probe_plan(cfg)
    elif recipe == "recover":
        plan = recover_plan(cfg)
    elif recipe == "finetune":
        plan = finetune_plan(cfg, cfg.layer_decay or 0.75)
    else:
        plan = gradual_plan(cfg, stages)
    return _apply_overrides(plan, cfg)


def auto_plan(
    cfg: TrainConfig,
    *,
    pretrained: bool,
    class_counts: list[int],
    stages: int,
    probe: Callable[[], dict[str, Any]] | None,
) -> Plan:
    if not pretrained:
        plan = scratch_plan(cfg)
        plan.reasoning.insert(0, "auto: no pretrained weights were asked for, so the network trains from scratch")
        return plan
    per_class = statistics.median(class_counts) if class_counts else 0
    result = probe() if probe else None
    similarity = None
    if result:
        chance = 1.0 / max(2, len(class_counts))
        similarity = max(0.0, (result["accuracy"] - chance) / (1 - chance))
    why = f"auto: {per_class:g} training images per class (median)"
    if result:
        why += (
            f"; a linear probe on frozen pretrained features reaches {result['accuracy']:.1%} "
            f"(chance {1 / max(2, len(class_counts)):.1%}), similarity {similarity:.2f}"
        )
    if per_class < FEW_SHOT:
        if similarity is not None and similarity >= 0.75:
            plan = linear_probe_plan(cfg)
            reason = (
                "few images and features that already separate the classes: keep the backbone frozen, "
                "moving it would overfit"
            )
        else:
            plan = gradual_plan(cfg, stages)
            reason = (
                "few images but features that need adapting: unfreeze gradually with a low rate, "
                "so the pretrained layers are not wiped out"
            )
    elif per_class < 1000:
        decay = 0.65 if (similarity or 0) >= 0.6 else 0.8
        plan = finetune_plan(cfg, decay)
        reason = (
            f"a moderate amount of data: fine-tune every layer, layer-wise decay {decay} "
            f"({'close' if decay < 0.7 else 'farther'} to the pretraining domain)"
        )
    else:
        plan = finetune_plan(cfg, 0.9)
        plan.lr *= 2
        reason = "plenty of data: fine-tune every layer with mild layer-wise decay (0.9) and a higher rate"
    if per_class < FEW_SHOT:
        plan.freeze_norm_stats = True
        reason += "; BatchNorm statistics stay pretrained (too few images to re-estimate them)"
    plan.reasoning[:0] = [why, reason]
    plan.probe = result
    return plan


def _apply_overrides(plan: Plan, cfg: TrainConfig) -> Plan:
    """What the user set explicitly wins over the recipe's choice (and run.json says so)."""
    overrides = {
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "weight_decay": cfg.weight_decay,
        "layer_decay": cfg.layer_decay,
        "label_smoothing": cfg.label_smoothing,
    }
    for name, value in overrides.items():
        if value is not None and getattr(plan, name) != value:
            setattr(plan, name, value)
            plan.reasoning.append(f"{name} set to {value} by the user")
    if cfg.warmup_epochs is not None:
        total = cfg.epochs or DEFAULT_EPOCHS
        plan.warmup = min(0.5, cfg.warmup_epochs / total)
    plan.epochs = cfg.epochs if cfg.epochs is not None else (None if cfg.budget_s else DEFAULT_EPOCHS)
    return plan


def from_start_plan(cfg: TrainConfig, task: str, base_lr: float, reference_batch: int, why: str) -> Plan:
    """Dense tasks (detection, segmentation): every layer trains from the start with AdamW, a 5%
    warm-up and cosine decay; ``base_lr`` is for ``reference_batch`` and scales linearly with the batch."""
    if cfg.recipe not in ("auto", "scratch"):
        raise ConfigError(f"--recipe {cfg.recipe}: {task} models train with auto (every layer from the start)")
    lr = cfg.lr or _batch_scaled(base_lr, cfg.batch_size, reference_batch)
    plan = Plan(
        task,
        cfg.optimizer or "adamw",
        lr,
        cfg.weight_decay if cfg.weight_decay is not None else 5e-4,
        [Phase("all layers", 0.0)],
        warmup=0.05,
        reasoning=[
            f"{task}: every layer from the start, {cfg.optimizer or 'AdamW'} at lr {lr:.4g}, "
            f"5% warm-up then cosine; {why}"
        ],
    )
    if cfg.warmup_epochs is not None:
        plan.warmup = min(0.5, cfg.warmup_epochs / (cfg.epochs or DEFAULT_EPOCHS))
    plan.epochs = cfg.epochs if cfg.epochs is not None else (None if cfg.budget_s else DEFAULT_EPOCHS)
    return plan
