"""Segmentation before training: the model and its card, the mask-aware batches, the loss and the plan.

The recipe follows what U-Net and DeepLab are trained with on small data: every layer from the start,
AdamW (Adam at 1e-3 is the U-Net default in nnU-Net's ancestors; SGD needs far longer schedules), a
warm-up, cosine decay, and cross-entropy + Dice, which keeps a small structure from being drowned by
the background without the instability of Dice alone.
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

BASE_LR = 1e-3  # AdamW at batch 16, scaled linearly with the batch
RARE_SHARE = 0.01  # --imbalance auto weights the loss when a class has less than 1% of the pixels


def segmentation_card(config: TrainConfig, data: Any, model: torch.nn.Module) -> ModelCard:
    from cnnlab.data.mask_transforms import dataset_mean_std
    from cnnlab.registry import is_spec_path
    from cnnlab.weights.offline import IMAGENET_MEAN, IMAGENET_STD

    spec = getattr(model, "spec_dict", None) if is_spec_path(config.model) else None
    entry = task_entry(
        model.spec_name if spec is not None else config.model,  # building a spec registered it
        "segment",
        needs="a segmenter",
        also=", or give a design spec a unet, deeplabv3plus or fpn head",
    )
    dims = data.splits["train"].spatial_dims
    given = list(config.input_size or entry.input_size[1:])
    if len(given) < dims and len(set(given)) == 1:  # --input-size 64 means a 64^3 patch for volumes
        given = given[:1] * dims
    size = [int(s) for s in given[-dims:]]
    if len(entry.input_size) - 1 != dims and not config.input_size:
        kind = "volumes (3D)" if dims == 3 else "images (2D)"
        raise ConfigError(
            f"--model {config.model} segments {len(entry.input_size) - 1}D inputs, {config.data} holds {kind}; "
            f"choose a {dims}D model (e.g. {'unet3d' if dims == 3 else 'unet'})"
        )
    divisor = int(getattr(model, "size_divisor", 1))
    bad = [s for s in size if s % divisor]
    if bad:
        fits = ", ".join(str(max(divisor, s - s % divisor)) for s in size)
        raise ConfigError(
            f"--input-size {'x'.join(map(str, size))}: {config.model} needs sides divisible by {divisor} "
            f"(training crops), e.g. {fits}"
        )
    channels = data.channels
    if config.model_options.get("pretrained_encoder") and channels == 3:
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)  # what the ImageNet encoder was trained on
    else:
        mean, std = (list(v) for v in dataset_mean_std(data.splits["train"]))
    return ModelCard(
        architecture=model.spec_name if spec is not None else config.model,
        num_classes=len(data.class_names),
        in_chans=channels,
        input_size=[channels, *size],
        mean=mean,
        std=std,
        task="segment",
        class_names=list(data.class_names),
        options=dict(config.model_options),
        spec=spec,
        versions={**versions(), "cnnlab": __version__},
    )


def imbalance_weights(config: TrainConfig, pixel_counts: list[int]) -> dict[str, Any]:
    """Class weights for the loss: median-frequency balancing when asked, or (auto) when a class that
    occurs has under ``RARE_SHARE`` of the pixels; none otherwise (Dice already balances somewhat)."""
    from cnnlab.tasks.segment_losses import class_weights_from_pixels

    if config.imbalance == "balanced-sampler":
        raise ConfigError(
            "--imbalance balanced-sampler: every image holds several classes, so sampling images cannot "
            "balance pixels; use weighted-loss (or auto)"
        )
    total = max(1, sum(pixel_counts))
    present = [c / total for c in pixel_counts if c > 0]
    rarest = min(present) if present else 1.0
    weighted = config.imbalance == "weighted-loss" or (config.imbalance == "auto" and rarest < RARE_SHARE)
    return {
        "policy": "weighted-loss" if weighted else "none",
        "rarest_class_pixel_share": round(rarest, 6),
        "pixel_share": [round(c / total, 6) for c in pixel_counts],
        "class_weights": class_weights_from_pixels(pixel_counts) if weighted else None,
    }


def segmentation_plan(config: TrainConfig) -> Plan:
    return from_start_plan(config, "segment", BASE_LR, 16, f"loss {config.loss or 'ce+dice'}")


def segmentation_batches(
    split: Any, card: ModelCard, *, train: bool, batch_size: int, seed: int, workers: int, augment: str, dist: DistInfo
) -> Any:
    """Training batches of crops (a BatchSource), or a factory of evaluation iterables of whole items."""
    from cnnlab.data.mask_transforms import build_mask_transform, segmentation_collate
    from cnnlab.train.loaders import LoaderBatches, loader_eval_batches

    transform = build_mask_transform(
        input_size=card.input_size,
        mean=card.mean,
        std=card.std,
        train=train,
        augment=augment,
        hflip=True,
        spatial_dims=card.spatial_dims,
    )
    dataset = split.with_transform(transform)
    if train:
        return LoaderBatches(
            dataset, batch_size=batch_size, collate=segmentation_collate, seed=seed, workers=workers, dist=dist
        )
    return lambda: loader_eval_batches(
        dataset, batch_size=batch_size, collate=segmentation_collate, workers=workers, dist=dist
    )


def eval_batch_size(card: ModelCard, batch_size: int) -> int:
    return min(batch_size, 2 if card.spatial_dims == 3 else 16)  # whole volumes are large


def prepare_segment(
    config: TrainConfig,
    data: Any,
    dist: DistInfo,
    device: torch.device,
    initial: tuple[torch.nn.Module, Any] | None = None,
) -> Prepared:
    from cnnlab.train.setup import default_workers

    model, card = model_and_card(config, data, initial, segmentation_card)
    train_split = data.splits["train"]
    imbalance = imbalance_weights(config, list(train_split.pixel_counts()))
    task = build_task(
        "segment",
        num_classes=card.num_classes,
        class_names=card.class_names,
        input_size=card.input_size,
        loss=config.loss or "ce+dice",
        class_weights=imbalance["class_weights"],
        size_divisor=int(getattr(model, "size_divisor", 1)),
    )
    workers = default_workers(config)
    augment = config.augment if config.augment in ("none", "light", "strong") else "strong"
    batches = segmentation_batches(
        train_split,
        card,
        train=True,
        batch_size=config.batch_size,
        seed=config.seed,
        workers=workers,
        augment=augment,
        dist=dist,
    )
    val_batches = None
    if len(data.splits["val"]):
        val_batches = segmentation_batches(
            data.splits["val"],
            card,
            train=False,
            batch_size=eval_batch_size(card, config.batch_size),
            seed=0,
            workers=0,
            augment="none",
            dist=dist,
        )
    record = {"data_path": "loader", "augment": augment, "imbalance": imbalance, "weights": None}
    return Prepared(model, card, task, segmentation_plan(config), batches, val_batches, record=record)
