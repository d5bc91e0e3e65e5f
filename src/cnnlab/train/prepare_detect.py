"""Detection before training: the detector and its card, the box-aware batches, and the plan.

The recipe follows what one-stage detectors are trained with (YOLOX, YOLOv6 papers): every layer
from the start, AdamW for short schedules (SGD needs hundreds of epochs to catch up), a warm-up,
cosine decay, and no label smoothing or mixup (boxes have no soft labels).
"""

from __future__ import annotations

from typing import Any

import torch

from cnnlab import __version__
from cnnlab.env import versions
from cnnlab.errors import ConfigError
from cnnlab.runs import ModelCard
from cnnlab.tasks import build_task
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import DistInfo
from cnnlab.train.prepare import Prepared, model_and_card, task_entry
from cnnlab.train.recipes import Plan, from_start_plan

DETECT_MEAN = (0.0, 0.0, 0.0)  # YOLO-style inputs are pixels / 255, no per-channel normalisation
DETECT_STD = (1.0, 1.0, 1.0)
BASE_LR = 2e-3  # AdamW at batch 64; scaled linearly with the batch


def detection_card(config: TrainConfig, data: Any, model: torch.nn.Module) -> ModelCard:
    entry = task_entry(config.model, "detect", needs="a detector")
    side = int((config.input_size or entry.input_size)[-1])
    if side % 32:
        lower, upper = side - side % 32, side - side % 32 + 32
        raise ConfigError(f"--input-size {side}: a detector needs a multiple of 32, e.g. {max(lower, 32)} or {upper}")
    smallest = getattr(model, "min_input_side", 32)
    if side < smallest:
        raise ConfigError(
            f"--input-size {side}: {config.model} needs inputs of at least {smallest} px (smaller ones shrink "
            f"its last feature maps below its kernels); use --input-size {-(-smallest // 32) * 32} or more"
        )
    channels = data.channels
    return ModelCard(
        architecture=config.model,
        num_classes=len(data.class_names),
        in_chans=channels,
        input_size=[channels, side, side],
        mean=list(DETECT_MEAN[:channels]) if channels <= 3 else [0.0] * channels,
        std=list(DETECT_STD[:channels]) if channels <= 3 else [1.0] * channels,
        task="detect",
        class_names=list(data.class_names),
        options=dict(config.model_options),
        versions={**versions(), "cnnlab": __version__},
    )


def detection_plan(config: TrainConfig, model: torch.nn.Module | None = None) -> Plan:
    """The shared recipe; a detector whose backbone is pretrained with frozen BatchNorm statistics
    (torchvision's two-stage and RetinaNet builders) is fine-tuned at a quarter of the rate, 1.25e-4
    at batch 16 (the AdamW rate detection fine-tuning commonly uses, 1e-4 for 16 images): at 0.002
    RetinaNet's loss fell while it detected nothing (mAP@.5 0.003 in 5 minutes)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    if model is not None and any(isinstance(m, FrozenBatchNorm2d) for m in model.modules()):
        why = "a pretrained backbone with frozen BatchNorm is fine-tuned at a quarter of the from-scratch rate"
        return from_start_plan(config, "detect", BASE_LR / 4, 64, f"{why}; no label smoothing or mixup")
    return from_start_plan(config, "detect", BASE_LR, 64, "no label smoothing or mixup")


def detection_batches(
    split: Any,
    card: ModelCard,
    *,
    train: bool,
    batch_size: int,
    seed: int,
    workers: int,
    augment: str,
    dist: DistInfo,
    mosaic: float = 0.0,
    hflip: bool = True,
) -> Any:
    """Training batches (a BatchSource) or a factory of evaluation iterables; ``mosaic``: the share of
    training samples that are four-image mosaics."""
    from cnnlab.data.box_transforms import build_box_transform, detection_collate
    from cnnlab.train.loaders import LoaderBatches, loader_eval_batches

    transform = build_box_transform(
        input_size=card.input_size, mean=card.mean, std=card.std, train=train, augment=augment, hflip=hflip
    )
    if train and mosaic > 0:
        from cnnlab.data.box_mosaic import Mosaic

        dataset = Mosaic(split, int(card.input_size[-1]), transform, p=mosaic)
    else:
        dataset = split.with_transform(transform)
    if train:
        return LoaderBatches(
            dataset, batch_size=batch_size, collate=detection_collate, seed=seed, workers=workers, dist=dist
        )
    return lambda: loader_eval_batches(
        dataset, batch_size=batch_size, collate=detection_collate, workers=workers, dist=dist
    )


def prepare_detect(
    config: TrainConfig,
    data: Any,
    dist: DistInfo,
    device: torch.device,
    initial: tuple[torch.nn.Module, Any] | None = None,
) -> Prepared:
    from cnnlab.train.setup import default_workers

    model, card = model_and_card(config, data, initial, detection_card)
    task = build_task("detect", num_classes=card.num_classes, class_names=card.class_names, criterion=model.loss_fn())
    workers = default_workers(config)
    # Classification's policies map onto the box-aware ones: light, or strong (wider scale range,
    # zoom-out); mosaic is light plus half the samples tiled from four images.
    augment = {"none": "none", "light": "light", "mosaic": "light"}.get(config.augment, "strong")
    mosaic = 0.5 if config.augment == "mosaic" else 0.0
    batches = detection_batches(
        data.splits["train"],
        card,
        train=True,
        batch_size=config.batch_size,
        seed=config.seed,
        workers=workers,
        augment=augment,
        dist=dist,
        mosaic=mosaic,
        hflip=config.hflip is not False,  # --no-hflip for data where left and right differ (text, signs)
    )
    val_batches = None
    if len(data.splits["val"]):
        val_batches = detection_batches(
            data.splits["val"],
            card,
            train=False,
            batch_size=config.batch_size,
            seed=0,
            workers=0,
            augment="none",
            dist=dist,
        )
    record = {"data_path": "loader", "augment": augment, "mosaic": mosaic, "weights": None}
    return Prepared(model, card, task, detection_plan(config, model), batches, val_batches, record=record)
