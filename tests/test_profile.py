"""The profiler against published numbers (timm's and torchvision's tables) and its own protocol."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.profile.counting import count_macs
from cnnlab.profile.memory import peak_activation_bytes
from tests.conftest import run_cli

# name, input, parameters (exact), GMACs (conv + linear + matmul multiply-accumulates)
PUBLISHED = [
    ("resnet18", 224, 11_689_512, 1.81),
    ("resnet50", 224, 25_557_032, 4.09),
    ("vgg16", 224, 138_357_544, 15.47),
    ("mobilenetv2_100", 224, 3_504_872, 0.30),
    ("mobilenetv3_large_100", 224, 5_483_032, 0.22),
    ("efficientnet_b0", 224, 5_288_548, 0.386),
    ("alexnet", 224, 61_100_840, 0.71),
    ("inception_v3", 299, 23_834_568, 5.73),
    ("densenet121", 224, 7_978_856, 2.83),
]


@pytest.mark.parametrize(("name", "size", "params", "gmacs"), PUBLISHED)
def test_matches_published_numbers(name: str, size: int, params: int, gmacs: float) -> None:
    report = cnnlab.profile_model(name, input_size=(3, size, size), latency=False)
    assert report.params == params
    assert report.macs / 1e9 == pytest.approx(gmacs, rel=0.02)


def test_grouped_and_depthwise_convs_count_their_true_cost() -> None:
    dense = nn.Conv2d(32, 32, 3, padding=1, bias=False)
    depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
    x = torch.randn(1, 32, 10, 10)
    assert count_macs(dense, x)[0] == 32 * 32 * 9 * 100
    assert count_macs(depthwise, x)[0] == 32 * 9 * 100


def test_activation_memory_is_the_live_peak() -> None:
    # x -> a (4 MB) -> b (4 MB) -> c: at most two 1M-float activations are alive at once.
    model = nn.Sequential(nn.Linear(1000, 1000), nn.Linear(1000, 1000), nn.Linear(1000, 1000))
    peak = peak_activation_bytes(model, torch.randn(1000, 1000))
    assert peak == 2 * 1000 * 1000 * 4
    assert peak_activation_bytes(model, torch.randn(500, 1000)) == peak // 2


def test_latency_protocol_and_batches() -> None:
    report = cnnlab.profile_model("cifar_resnet20", batch_sizes=(1, 4), runs=6, warmup=2)
    assert [b.batch for b in report.batches] == [1, 4]
    stats = report.batches[0].latency["torch"]
    assert stats.runs == 6 and stats.warmup == 2
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p95_ms
    assert report.batches[1].activation_bytes > report.batches[0].activation_bytes
    assert report.size["int8_estimate"] < report.size["fp32"]
    data = report.to_dict()
    assert data["hardware"]["cpu"] and data["versions"]["torch"] and "warm-up" in data["protocol"]


def test_profile_a_run_directory(tmp_path) -> None:
    from cnnlab.runs import ModelCard, save_model

    card = ModelCard(architecture="lenet5", num_classes=3, in_chans=1, input_size=[1, 32, 32], mean=[0.5], std=[0.5])
    save_model(cnnlab.create_model("lenet5", num_classes=3), card, tmp_path / "run")
    report = cnnlab.profile_model(str(tmp_path / "run"), latency=False)
    assert report.kind == "run" and report.input_size == (1, 32, 32) and report.params == 61_706 - 7 * 85


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="batch sizes"):
        cnnlab.profile_model("lenet5", batch_sizes=(0,))
    with pytest.raises(ConfigError, match="cannot run on input 1x8x8"):
        cnnlab.profile_model("lenet5", input_size=(1, 8, 8), latency=False)
    with pytest.raises(ConfigError, match="unknown runtime"):
        cnnlab.profile_model("lenet5", runtimes=("tensorrt",), runs=1)


def test_cli_profile_json_and_table() -> None:
    result = run_cli("profile", "lenet5", "cifar_resnet20", "--batch", "1,2", "--runs", "3", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["name"] for d in data] == ["lenet5", "cifar_resnet20"]
    assert data[0]["params"] == 61_706 and len(data[1]["batches"]) == 2
    table = run_cli("profile", "lenet5", "--runs", "3")
    assert table.returncode == 0 and "lenet5" in table.stdout and "GMACs" in table.stdout
