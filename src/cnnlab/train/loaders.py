"""Batches for training and evaluation, reproducible down to the batch.

The order of an epoch and every random augmentation derive from (seed, epoch, batch or sample),
never from a worker's or the process's RNG state. So a run resumed mid-epoch, or run with a
different number of DataLoader workers, sees exactly the same batches.

Two paths:
    MemoryBatches  the dataset is held as a uint8 tensor at the model's input size and whole batches
                   are augmented with tensor ops (small images: digits, Fashion-MNIST, CIFAR-like)
    LoaderBatches  a DataLoader with workers applies per-sample transforms.v2 (everything else)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cnnlab.data.batch_augment import BatchAugment, prepare_images
from cnnlab.train.distributed import DistInfo


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style mixing; stable across processes and versions)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (int(part) + 0x9E3779B97F4A7C15 + (x << 6) + (x >> 2))) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (x ^ (x >> 31)) & 0x7FFFFFFFFFFFFFFF


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def epoch_order(n: int, seed: int, epoch: int, weights: torch.Tensor | None, dist: DistInfo) -> torch.Tensor:
    """Sample indices of one epoch for this rank: a permutation, or weighted draws (balanced sampler)."""
    g = generator(seed, epoch, 0xE)
    order = (
        torch.multinomial(weights, n, replacement=True, generator=g)
        if weights is not None
        else torch.randperm(n, generator=g)
    )
    if dist.enabled:  # equal shards, so every rank runs the same number of steps
        per_rank = n // dist.world_size
        order = order[dist.rank * per_rank : (dist.rank + 1) * per_rank]
    return order


class MemoryBatches:
    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        input_size: Sequence[int],
        batch_size: int,
        augment: BatchAugment,
        seed: int,
        mix: Callable[..., tuple[torch.Tensor, Any]] | None = None,
        weights: torch.Tensor | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        self.images = prepare_images(images, input_size)
        self.labels = labels
        self.batch_size = batch_size
        self.augment = augment
        self.seed = seed
        self.mix = mix
        self.weights = weights
        self.dist = dist or DistInfo()
        per_rank = len(labels) // self.dist.world_size
        self.batches_per_epoch = max(1, per_rank // batch_size)  # drop_last: equal-sized batches for BatchNorm

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, Any]]:
        order = epoch_order(len(self.labels), self.seed, epoch, self.weights, self.dist)
        for b in range(start, self.batches_per_epoch):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            g = generator(self.seed, epoch, b)
            x = self.augment(self.images[index], g)
            y: Any = self.labels[index]
            if self.mix is not None:
                x, y = self.mix(x, y, g)
            yield x, y


class _SeededSamples(Dataset):
    """Wraps a dataset so item (index, seed) is produced with torch's RNG seeded to ``seed``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        torch.manual_seed(seed)
        return self.dataset[index]


class _EpochSampler(Sampler):
    def __init__(self, owner: LoaderBatches) -> None:
        self.owner = owner
        self.epoch = 0
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        o = self.owner
        order = epoch_order(o.size, o.seed, self.epoch, o.weights, o.dist)
        usable = o.batches_per_epoch * o.batch_size
        for i in order[self.start * o.batch_size : usable].tolist():
            yield i, derive_seed(o.seed, self.epoch, i)

    def __len__(self) -> int:
        return (self.owner.batches_per_epoch - self.start) * self.owner.batch_size


class LoaderBatches:
    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        collate: Callable[[list[Any]], tuple[torch.Tensor, Any]],
        seed: int,
        workers: int,
        mix: Callable[..., tuple[torch.Tensor, Any]] | None = None,
        weights: torch.Tensor | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        self.size = len(dataset)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.seed = seed
        self.mix = mix
        self.weights = weights
        self.dist = dist or DistInfo()
        self.batches_per_epoch = max(1, (self.size // self.dist.world_size) // batch_size)
        self.sampler = _EpochSampler(self)
        self.loader = DataLoader(
            _SeededSamples(dataset),
            batch_size=batch_size,
            sampler=self.sampler,
            collate_fn=collate,
            num_workers=workers,
            persistent_workers=workers > 0,
            drop_last=True,
            prefetch_factor=4 if workers > 0 else None,
        )

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, Any]]:
        self.sampler.epoch, self.sampler.start = epoch, start
        for b, (x, y) in enumerate(self.loader, start=start):
            if self.mix is not None:
                x, y = self.mix(x, y, generator(self.seed, epoch, b))
            yield x, y


def memory_eval_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int,
    dist: DistInfo | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Evaluation batches from an in-memory set, resized chunk by chunk (no cache, bounded memory)."""
    dist = dist or DistInfo()
    normalize = BatchAugment(mean, std)
    for start in range(dist.rank * batch_size, len(labels), batch_size * dist.world_size):
        chunk = prepare_images(images[start : start + batch_size], input_size)
        yield normalize.normalize(chunk), labels[start : start + batch_size]


def loader_eval_batches(
    dataset: Dataset,
    *,
    batch_size: int,
    collate: Callable[[list[Any]], tuple[torch.Tensor, Any]],
    workers: int,
    dist: DistInfo | None = None,
) -> DataLoader:
    dist = dist or DistInfo()
    indices = list(range(dist.rank, len(dataset), dist.world_size))  # type: ignore[arg-type]
    subset = torch.utils.data.Subset(dataset, indices)
    return DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=workers)
