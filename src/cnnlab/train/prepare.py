"""What differs between tasks before training starts: the model and its card, the task object, the
plan, and the batches. `train_model` asks :func:`prepare` for these and runs the same trainer, hooks,
checkpoints and evaluation for every task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnlab.errors import ConfigError
from cnnlab.tasks import build_task, task_for_card
from cnnlab.train import setup
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import DistInfo
from cnnlab.train.optim import parameter_depths
from cnnlab.train.probe import load_probe_head
from cnnlab.train.recipes import Plan, make_plan


@dataclass
class Prepared:
    model: torch.nn.Module
    card: Any
    task: Any
    plan: Plan
    batches: Any  # the trainer's BatchSource
    val_batches: Any  # a factory of validation iterables, or None without a validation split
    record: dict[str, Any] = field(default_factory=dict)  # what run.json should say about these choices


def model_and_card(
    config: TrainConfig,
    data: Any,
    initial: tuple[torch.nn.Module, Any] | None,
    make_card: Callable[[TrainConfig, Any, torch.nn.Module], Any],
) -> tuple[torch.nn.Module, Any]:
    """The model to train and its card: the pair continued from, or a fresh registry model (or design
    spec) for the data's classes and channels, with the card ``make_card`` writes for it."""
    if initial is not None:
        return initial
    from cnnlab.registry import create_model

    classes, channels = len(data.class_names), data.channels
    model = create_model(config.model, num_classes=classes, in_chans=channels, **config.model_options)
    return model, make_card(config, data, model)


TASK_NOUNS = {"classify": "classification", "detect": "detection", "segment": "segmentation"}


def task_entry(name: str, task: str, *, needs: str, also: str = "") -> Any:
    """The registry entry of ``name``, refused unless it is a ``task`` model (``needs``: "a detector")."""
    from cnnlab.registry import get_entry

    entry = get_entry(name)
    if entry.task != task:
        raise ConfigError(
            f"--model {name} is a {entry.task} model; {TASK_NOUNS.get(task, task)} needs {needs} "
            f"(see `cnnlab models list --task {task}`{also})"
        )
    return entry


def prepare(
    task_name: str,
    config: TrainConfig,
    data: Any,
    dist: DistInfo,
    device: torch.device,
    initial: tuple[torch.nn.Module, Any] | None = None,
) -> Prepared:
    if data.task != task_name:
        raise ConfigError(
            f"--task {task_name}: {config.data} holds {data.task} data; "
            f"train a {data.task} model on it, or give {task_name} data"
        )
    if config.loss and task_name != "segment":
        raise ConfigError(f"--loss {config.loss}: choosing the loss is for segmentation; {task_name} uses its own")
    if task_name == "classify":
        return prepare_classify(config, data, dist, device, initial)
    if task_name == "detect":
        from cnnlab.train.prepare_detect import prepare_detect

        return prepare_detect(config, data, dist, device, initial)
    if task_name == "segment":
        from cnnlab.train.prepare_segment import prepare_segment

        return prepare_segment(config, data, dist, device, initial)
    raise ConfigError(f"--task {task_name}: cnnlab trains classify, detect and segment models")


def evaluation_batches(card: Any, split: Any, *, batch_size: int = 256, memory: bool = False) -> Any:
    """A factory of evaluation iterables over ``split``, preprocessed as the card's task needs
    (``memory``: the split's images are small enough to be resized as one tensor, classification)."""
    if card.task == "detect":
        from cnnlab.train.prepare_detect import detection_batches

        return detection_batches(
            split, card, train=False, batch_size=min(batch_size, 32), seed=0, workers=0, augment="none", dist=DistInfo()
        )
    if card.task == "segment":
        from cnnlab.train.prepare_segment import eval_batch_size, segmentation_batches

        return segmentation_batches(
            split,
            card,
            train=False,
            batch_size=eval_batch_size(card, batch_size),
            seed=0,
            workers=0,
            augment="none",
            dist=DistInfo(),
        )
    task = task_for_card(card)
    return setup.eval_batches(split, card, memory=memory, collate=task.collate, batch_size=batch_size)


def prepare_classify(
    config: TrainConfig,
    data: Any,
    dist: DistInfo,
    device: torch.device,
    initial: tuple[torch.nn.Module, Any] | None = None,
) -> Prepared:
    built = setup.BuiltModel(*initial, weights=None, pretrained=False) if initial else setup.build_model(config, data)
    model, card = built.model, built.card
    train_split = data.splits["train"]
    counts = [int(c) for c in train_split.class_counts()]
    if not built.pretrained and initial is None:
        card.mean, card.std = setup.dataset_stats(train_split, card.in_chans)
    memory = setup.use_memory_path(config, data, card)
    imbalance = setup.imbalance_policy(config, counts)
    hflip = config.hflip if config.hflip is not None else setup.default_hflip(data)
    _, deepest = parameter_depths(model)
    has_val = len(data.splits.get("val", [])) > 0

    task_probe = build_task("classify", num_classes=len(data.class_names), class_names=data.class_names)
    val_batches = (
        setup.eval_batches(data.splits["val"], card, memory=memory, collate=task_probe.collate, dist=dist)
        if has_val
        else None
    )

    probe_head: list[Any] = []  # the probe's classifier, kept for the head (LP-FT)

    def probe() -> dict[str, Any] | None:
        if not has_val:
            return None
        summary, head = _quick_probe(model, data, card, memory, task_probe.collate, config.seed)
        probe_head.append(head)
        return summary

    plan = make_plan(
        config,
        pretrained=built.pretrained,
        class_counts=counts,
        stages=deepest - 1,
        probe=probe,
        initial=initial is not None,
    )
    if probe_head and plan.recipe in ("linear-probe", "finetune", "gradual") and load_probe_head(model, probe_head[0]):
        plan.reasoning.append(
            "the new head starts from the linear probe's classifier (LP-FT), not from random weights, "
            "so fine-tuning does not first distort the pretrained features to fit a random head"
        )
    task = build_task(
        "classify",
        num_classes=len(data.class_names),
        class_names=data.class_names,
        label_smoothing=plan.label_smoothing,
        class_weights=imbalance.get("class_weights"),
        mixup_alpha=config.mixup,
        cutmix_alpha=config.cutmix,
    )
    distillation: dict[str, Any] = {}
    if config.distill_from:
        task = _distillation(task, config, card, device)
        if val_batches is not None:
            distillation = _teacher_on_student_inputs(task, val_batches, config.distill_from, device)
            plan.reasoning.append(distillation["note"])
    sample_weights = None
    if imbalance["policy"] == "balanced-sampler":
        per_class = torch.tensor(imbalance["sample_weight_per_class"], dtype=torch.float64)
        sample_weights = per_class[torch.as_tensor(train_split.labels)]
    batches = setup.train_batches(
        config,
        data,
        card,
        memory=memory,
        collate=task.collate,
        mix=task.batch_transform(),
        sample_weights=sample_weights,
        hflip=hflip,
        dist=dist,
    )
    return Prepared(
        model,
        card,
        task,
        plan,
        batches,
        val_batches,
        record={
            "data_path": "memory" if memory else "loader",
            "imbalance": imbalance,
            "weights": built.weights,
            **({"distillation": distillation} if distillation else {}),
        },
    )


@torch.no_grad()
def _teacher_on_student_inputs(
    task: Any, val_batches: Any, teacher_run: str, device: torch.device, limit: int = 2048
) -> dict[str, Any]:
    """How well the teacher does on the images the student sees (resized and re-normalised to the
    teacher's card), against its own validation score. A teacher fed 32 px images resized back to its
    28 px lost 3 points of accuracy (93.8% -> 90.8% on Fashion-MNIST), below the student it was to
    teach; soft targets from it made the student worse."""
    from cnnlab.runs import RunDir

    right = seen = 0
    for inputs, labels in val_batches():
        guess = task.teacher(task.adapt(inputs.to(device))).argmax(1).cpu()
        right += int((guess == torch.as_tensor(labels)).sum())
        seen += len(guess)
        if seen >= limit:
            break
    ours = right / max(seen, 1)
    own = RunDir(teacher_run).read_json("run.json").get("best_val")
    note = f"the teacher scores {ours:.1%} on {seen} validation images as the student sees them"
    if own is not None:
        note += f" ({own:.1%} on its own validation)"
        if ours < own - 0.01:
            note += (
                "; WARNING: the student's inputs cost the teacher accuracy (resizing between the two input "
                "sizes loses detail): train the student at the teacher's input size"
            )
    return {"teacher_val_top1_on_student_inputs": round(ours, 4), "teacher_val_top1": own, "note": note}


def _distillation(task: Any, config: TrainConfig, card: Any, device: torch.device) -> Any:
    """The task wrapped so a teacher run supervises the student (see tasks.distill)."""
    from cnnlab.runs import load_run
    from cnnlab.tasks.distill import CardAdapter, DistillTask

    teacher = load_run(config.distill_from)
    theirs, ours = list(teacher.card.class_names or []), list(card.class_names or [])
    if theirs != ours:
        raise ConfigError(
            f"--distill-from {config.distill_from}: the teacher predicts {teacher.card.num_classes} classes "
            f"({theirs[:4]}…), the student {card.num_classes} ({ours[:4]}…); "
            "a teacher must have been trained on the same classes"
        )
    return DistillTask(
        task,
        teacher.model.to(device),
        CardAdapter(card, teacher.card),
        temperature=config.distill_temperature,
        alpha=config.distill_alpha,
    )


def _quick_probe(
    model: torch.nn.Module, data: Any, card: Any, memory: bool, collate: Any, seed: int
) -> tuple[dict[str, Any], Any]:
    from cnnlab.train.probe import balanced_subset, linear_probe

    train, val = data.splits["train"], data.splits["val"]
    train_idx = balanced_subset(torch.as_tensor(train.labels), per_class=50, seed=seed)
    val_idx = balanced_subset(torch.as_tensor(val.labels), per_class=50, seed=seed)
    make = setup.eval_batches
    started = time.perf_counter()
    result, head = linear_probe(
        model,
        make(train.subset(train_idx), card, memory=memory, collate=collate)(),
        make(val.subset(val_idx), card, memory=memory, collate=collate)(),
        len(data.class_names),
    )
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result, head
