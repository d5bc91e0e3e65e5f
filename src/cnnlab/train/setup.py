"""Turning a TrainConfig and a dataset into the parts the trainer runs: device, model and card,
normalisation, batch sources, and the class-imbalance policy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab import __version__
from cnnlab.data.batch_augment import BatchAugment
from cnnlab.data.transforms import SMALL_IMAGE, build_transform
from cnnlab.env import versions
from cnnlab.errors import ConfigError
from cnnlab.runs import ModelCard
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import DistInfo
from cnnlab.train.loaders import LoaderBatches, MemoryBatches, loader_eval_batches, memory_eval_batches

MEMORY_LIMIT_BYTES = 2 * 1024**3  # the in-memory path caches the training set at input size up to this


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here; use --device cpu")
    return torch.device(name)


def pick_amp(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Mixed precision where the device has it: bf16 (or fp16) on CUDA; off on CPUs without bf16 units."""
    if cfg.amp == "off" or (cfg.amp == "auto" and device.type != "cuda"):
        return None
    if cfg.amp == "fp16" or (cfg.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def resolve_input_size(cfg: TrainConfig, default: Sequence[int], channels: int) -> list[int]:
    """The model's input (C, H, W): the architecture's default, or --input-size (H, W or a side)."""
    spatial = list(default[1:])
    if cfg.input_size:
        given = list(cfg.input_size)
        spatial = given[-len(spatial) :] if len(given) >= len(spatial) else given * len(spatial)
    if any(s < 1 for s in spatial):
        raise ConfigError(f"--input-size must be positive, got {cfg.input_size}")
    return [channels, *spatial]


def default_hflip(data: Any) -> bool:
    """Flips change the meaning of digits and characters; everywhere else they are free data."""
    return data.name not in ("builtin:digits",)


@dataclass
class BuiltModel:
    model: nn.Module
    card: ModelCard
    weights: dict[str, Any] | None
    pretrained: bool


def build_model(cfg: TrainConfig, data: Any) -> BuiltModel:
    from cnnlab.registry import create_model, get_entry, is_spec_path

    num_classes, in_chans = len(data.class_names), data.channels
    model = create_model(
        cfg.model, num_classes=num_classes, in_chans=in_chans, pretrained=cfg.pretrained, **cfg.model_options
    )
    if is_spec_path(cfg.model):
        if model.spec_dict.get("task") == "segment":
            raise ConfigError(
                f"--model {cfg.model} has a {model.spec_dict['head']['type']} head and segments; {data.name} holds "
                "class labels: give the spec a classifier head, or train it on image/mask data"
            )
        default_size, spec = list(model.default_input_size), model.spec_dict
        architecture, mean, std = model.spec_name, None, None
    else:
        entry = get_entry(cfg.model)
        default_size, spec, architecture = list(entry.input_size), None, cfg.model
        mean, std = None, None
    info = getattr(model, "weights_info", None)
    if info is not None and info.mean is not None:
        mean, std = _fit_channels(info.mean, in_chans), _fit_channels(info.std, in_chans)
    card = ModelCard(
        architecture=architecture,
        num_classes=num_classes,
        in_chans=in_chans,
        input_size=resolve_input_size(cfg, default_size, in_chans),
        mean=mean or [0.5] * in_chans,
        std=std or [0.5] * in_chans,
        task="classify",
        class_names=list(data.class_names),
        options=dict(cfg.model_options),
        spec=spec,
        pretrained=info.source if info else None,
        versions={**versions(), "cnnlab": __version__},
    )
    return BuiltModel(model, card, info.to_dict() if info else None, pretrained=info is not None)


def _fit_channels(values: Sequence[float], channels: int) -> list[float]:
    """Normalisation of RGB weights for a model whose stem was summed to one channel: the channel mean."""
    values = list(values)
    if len(values) == channels:
        return values
    if channels == 1:
        return [sum(values) / len(values)]
    return (values * channels)[:channels]


def dataset_stats(split: Any, in_chans: int, limit: int = 2048) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (up to ``limit``) training images, for models trained from scratch."""
    from cnnlab.data.transforms import MatchChannels

    if split.in_memory:
        images = split.as_tensors()[0][:limit]
    else:  # decode a spread of files only: a large folder must not be read whole for two numbers per channel
        step = max(1, len(split) // limit)
        images = torch.stack([_resize_for_stats(split[i][0]) for i in range(0, len(split), step)][:limit])
    x = MatchChannels(in_chans)(images).float() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return [round(v, 4) for v in mean.tolist()], [round(v, 4) for v in std.tolist()]


def _resize_for_stats(image: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(image[None].float(), size=(64, 64), mode="area")[0].to(torch.uint8)


def imbalance_policy(cfg: TrainConfig, counts: list[int]) -> dict[str, Any]:
    present = [c for c in counts if c > 0]
    ratio = max(present) / min(present) if present else 1.0
    policy = cfg.imbalance
    if policy == "auto":
        policy = "weighted-loss" if ratio > 3.0 else "none"
    info: dict[str, Any] = {"policy": policy, "imbalance_ratio": round(ratio, 3), "class_counts": counts}
    total, k = sum(counts), len(counts)
    if policy == "weighted-loss":
        info["class_weights"] = [round(total / (k * c), 4) if c else 0.0 for c in counts]
    elif policy == "balanced-sampler":
        info["sample_weight_per_class"] = [round(1.0 / c, 8) if c else 0.0 for c in counts]
    return info


def use_memory_path(cfg: TrainConfig, data: Any, card: ModelCard) -> bool:
    if cfg.data_path == "loader":
        return False
    size = data.native_size
    small = size is not None and max(size) <= SMALL_IMAGE
    batchable_augment = cfg.augment in ("none", "light")
    n = len(data.splits["train"])
    fits = n * card.in_chans * card.input_size[-1] * card.input_size[-2] <= MEMORY_LIMIT_BYTES
    if cfg.data_path == "memory":
        if not (small and fits):
            raise ConfigError("--data-path memory needs small images (<= 64 px) that fit in memory; use loader")
        return True
    return small and batchable_augment and fits


def default_workers(cfg: TrainConfig) -> int:
    if cfg.workers is not None:
        return cfg.workers
    return min(4, os.cpu_count() or 1)


def train_batches(
    cfg: TrainConfig,
    data: Any,
    card: ModelCard,
    *,
    memory: bool,
    collate: Callable[..., Any],
    mix: Callable[..., Any] | None,
    sample_weights: torch.Tensor | None,
    hflip: bool,
    dist: DistInfo,
) -> MemoryBatches | LoaderBatches:
    split = data.splits["train"]
    if memory:
        images, labels = split.as_tensors()
        augment = BatchAugment(
            card.mean,
            card.std,
            hflip=hflip,
            random_erasing=cfg.random_erasing,
            crop_padding=0 if cfg.augment == "none" else max(1, card.input_size[-1] // 8),
        )
        return MemoryBatches(
            images,
            labels,
            input_size=card.input_size,
            batch_size=cfg.batch_size,
            augment=augment,
            seed=cfg.seed,
            mix=mix,
            weights=sample_weights,
            dist=dist,
        )
    transform = build_transform(
        input_size=card.input_size,
        mean=card.mean,
        std=card.std,
        train=True,
        augment=cfg.augment,
        hflip=hflip,
        random_erasing=cfg.random_erasing,
        interpolation=card.interpolation,
        crop_pct=card.crop_pct,
        native_size=data.native_size,
    )
    return LoaderBatches(
        split.with_transform(transform),
        batch_size=cfg.batch_size,
        collate=collate,
        seed=cfg.seed,
        workers=default_workers(cfg),
        mix=mix,
        weights=sample_weights,
        dist=dist,
    )


def eval_batches(
    split: Any,
    card: ModelCard,
    *,
    memory: bool,
    collate: Callable[..., Any],
    batch_size: int = 256,
    workers: int = 0,
    dist: DistInfo | None = None,
) -> Callable[[], Iterable[tuple[torch.Tensor, Any]]]:
    """A factory of fresh evaluation iterables over ``split`` (deterministic, no augmentation)."""
    if memory:
        images, labels = split.as_tensors()
        return lambda: memory_eval_batches(
            images, labels, input_size=card.input_size, mean=card.mean, std=card.std, batch_size=batch_size, dist=dist
        )
    transform = build_transform(
        input_size=card.input_size,
        mean=card.mean,
        std=card.std,
        train=False,
        interpolation=card.interpolation,
        crop_pct=card.crop_pct,
    )
    dataset = split.with_transform(transform)
    return lambda: loader_eval_batches(dataset, batch_size=batch_size, collate=collate, workers=workers, dist=dist)
