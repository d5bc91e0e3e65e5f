"""Trainer parts that need no dataset: schedules, optimizer groups, seeded batches, resume file."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data.batch_augment import BatchAugment
from cnnlab.errors import ConfigError
from cnnlab.registry import create_model
from cnnlab.train.config import TrainConfig, parse_duration
from cnnlab.train.distributed import DistInfo
from cnnlab.train.loaders import MemoryBatches, derive_seed
from cnnlab.train.optim import build_optimizer, param_groups, parameter_depths
from cnnlab.train.probe import linear_probe, load_probe_head
from cnnlab.train.schedule import lr_factor


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("10m") == 600 and parse_duration("1h30m") == 5400
    assert parse_duration("1.5h") == 5400 and parse_duration(42) == 42
    with pytest.raises(ConfigError, match="duration"):
        parse_duration("ten minutes")


def test_config_validation_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--recipe 'fast'"):
        TrainConfig(data="x", model="y", recipe="fast")
    with pytest.raises(ConfigError, match="--epochs"):
        TrainConfig(data="x", model="y", epochs=0)
    with pytest.raises(ConfigError, match="--layer-decay"):
        TrainConfig(data="x", model="y", layer_decay=1.5)


def test_schedules() -> None:
    assert lr_factor(0.0, "cosine") == pytest.approx(1.0)
    assert lr_factor(0.5, "cosine") == pytest.approx(0.5)
    assert lr_factor(1.0, "cosine") == pytest.approx(0.0)
    assert lr_factor(0.05, "cosine", warmup=0.1) == pytest.approx(0.5)
    assert lr_factor(0.25, "onecycle") == pytest.approx(1.0) and lr_factor(1.0, "onecycle") == pytest.approx(0.0)
    assert lr_factor(0.7, "constant", warmup=0.1) == 1.0


def test_no_weight_decay_on_norms_and_biases() -> None:
    model = create_model("cifar_resnet20")
    groups = param_groups(model, weight_decay=5e-4)
    for group in groups:
        if group["weight_decay"] == 0.0:
            assert all(p.ndim <= 1 for p in group["params"])
        else:
            assert all(p.ndim > 1 for p in group["params"])
    total = sum(p.numel() for g in groups for p in g["params"])
    assert total == sum(p.numel() for p in model.parameters())


def test_layer_decay_scales_follow_depth() -> None:
    model = create_model("resnet18")
    depths, deepest = parameter_depths(model)
    assert depths["conv1.weight"] == 0 and depths["fc.weight"] == deepest
    assert depths["layer1.0.conv1.weight"] < depths["layer4.0.conv1.weight"] < deepest
    optimizer = build_optimizer(model, "adamw", 1e-3, 0.05, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert lr_of[id(params["fc.weight"])] == pytest.approx(1e-3)
    assert lr_of[id(params["conv1.weight"])] == pytest.approx(1e-3 * 0.5**deepest)


def _batches(seed: int = 0, dist: DistInfo | None = None) -> MemoryBatches:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(40) % 4
    augment = BatchAugment([0.5], [0.5], crop_padding=2, hflip=True, random_erasing=0.5)
    return MemoryBatches(images, labels, input_size=(1, 16, 16), batch_size=8, augment=augment, seed=seed, dist=dist)


def test_memory_batches_are_reproducible_and_resumable() -> None:
    first = list(_batches().epoch(3))
    again = list(_batches().epoch(3))
    resumed = list(_batches().epoch(3, start=2))
    assert len(first) == 5 and first[0][0].shape == (8, 1, 16, 16)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first[2:], resumed, strict=True))
    other_epoch = list(_batches().epoch(4))
    assert not torch.equal(first[0][1], other_epoch[0][1])


def test_distributed_shards_are_disjoint() -> None:
    ranks = [list(_batches(dist=DistInfo(rank=r, world_size=2)).epoch(0)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 2  # 20 samples per rank, batch 8, last partial batch dropped
    assert derive_seed(1, 2) != derive_seed(2, 1) and derive_seed(1, 2) == derive_seed(1, 2)


def test_probe_head_loaded_into_the_model_predicts_what_the_probe_scored() -> None:
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=3, in_chans=1).eval()
    x, y = torch.randn(60, 1, 32, 32), torch.arange(60) % 3
    x += y.view(-1, 1, 1, 1) * 0.5  # separable enough for the probe to beat chance
    summary, head = linear_probe(model, [(x[:45], y[:45])], [(x[45:], y[45:])], num_classes=3)
    assert load_probe_head(model, head)
    with torch.no_grad():
        accuracy = (model(x[45:]).argmax(1) == y[45:]).float().mean().item()
    assert accuracy == pytest.approx(summary["accuracy"]) and summary["accuracy"] > 0.5
    other = create_model("lenet5", num_classes=4, in_chans=1)
    before = other.get_classifier().weight.clone()
    assert not load_probe_head(other, head)  # another number of classes: the head is left alone
    assert torch.equal(other.get_classifier().weight, before)
