"""The model contract, over every cnnlab model, every torchvision classifier and 45+ timm families:
build, forward, backward, output shape, the two-part forward, head reset, and a save -> load round
trip through a run directory that must reproduce the outputs exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.registry import create_model, get_entry, list_models
from cnnlab.registry.torchvision_source import CLASSIFIERS
from cnnlab.runs import ModelCard, load_run, save_model

OWN = [e.name for e in list_models(source="cnnlab", task="classify")]  # detectors: tests/test_detect.py
TORCHVISION = sorted(CLASSIFIERS)
# One or two small members of each timm family (families differ in the ops they use: SE, hard-swish,
# grouped/depthwise conv, channel shuffle, split attention, re-parameterisable branches, attention).
TIMM = [
    "resnet18",
    "resnet10t",
    "resnet18d",
    "resnext26ts",
    "seresnext26t_32x4d",
    "legacy_seresnet18",
    "resnetv2_18",
    "regnetx_002",
    "regnety_002",
    "mobilenetv1_100",
    "mobilenetv2_050",
    "mobilenetv3_small_050",
    "mobilenetv4_conv_small",
    "efficientnet_b0",
    "tf_efficientnet_lite0",
    "tf_efficientnetv2_b0",
    "mixnet_s",
    "mnasnet_small",
    "semnasnet_050",
    "fbnetc_100",
    "spnasnet_100",
    "tinynet_e",
    "lcnet_050",
    "hardcorenas_a",
    "ghostnet_050",
    "ghostnetv2_100",
    "repghostnet_050",
    "rexnet_100",
    "densenet121",
    "dla46_c",
    "dpn48b",
    "hrnet_w18_small",
    "cs3darknet_focus_s",
    "darknet17",
    "ese_vovnet19b_dw",
    "repvgg_a0",
    "gernet_s",
    "resnest14d",
    "skresnet18",
    "convnext_atto",
    "convnextv2_atto",
    "edgenext_xx_small",
    "fastvit_t8",
    "mobileone_s0",
    "mobilevit_xxs",
    "nf_regnet_b0",
    "efficientvit_b0",
    "hgnetv2_b0",
    "inception_v3",
    "inception_next_atto",
    "starnet_s050",
]
# Models whose defaults do not fit the small test input get an option or a larger input.
OPTIONS = {"vit_tiny_patch16_224": {"img_size": 64}}
SIZES = {"inception_v3": 96}
TIMM.append("vit_tiny_patch16_224")


# cnnlab models whose default input matters: 1D and 3D networks, and MobileFaceNet's fixed 7x7 map.
SHAPES = {"resnet1d18": (1, 256), "resnet3d18": (1, 32, 32, 32), "mobilefacenet": (3, 112, 112)}


def _input(name: str) -> torch.Tensor:
    entry = get_entry(name)
    if name in SHAPES:
        return torch.randn(2, *SHAPES[name])
    channels = entry.input_size[0]
    size = SIZES.get(name, 32 if entry.source == "cnnlab" else 64)
    if name in ("alexnet", "spec_alexnet"):  # 11x11 stride-4 stem and three 3x3 stride-2 pools
        size = 96
    return torch.randn(2, channels, size, size)


@pytest.mark.parametrize("name", OWN + TORCHVISION + TIMM)
def test_model_contract(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    options = OPTIONS.get(name, {})
    model = create_model(name, num_classes=7, **options)
    x = _input(name)

    model.train()
    out = model(x)
    assert out.shape == (2, 7)
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[-2:]), "classifier received no gradient"

    model.eval()
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
        assert torch.allclose(model.forward_head(features), logits, atol=1e-5)
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape[0] == 2 and pooled.dim() == 2
        assert model.feature_info, "feature_info is empty"

    model.reset_classifier(3)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    model.reset_classifier(7)

    card = ModelCard(
        architecture=name,
        num_classes=7,
        in_chans=x.shape[1],
        input_size=list(x.shape[1:]),
        mean=[0.5] * x.shape[1],
        std=[0.5] * x.shape[1],
        options=options,
    )
    model.eval()
    save_model(model, card, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x)), "save -> load changed the outputs"
    assert loaded.card == card


@pytest.mark.parametrize("name", ["lenet5", "cifar_resnet20", "mobilenet_v2", "squeezenet1_1", "resnet18"])
def test_in_chans_and_headless(name: str) -> None:
    model = create_model(name, in_chans=5, num_classes=0).eval()
    size = 32 if get_entry(name).source == "cnnlab" else 64
    with torch.no_grad():
        out = model(torch.randn(1, 5, size, size))
    assert out.dim() == 2 and out.shape[1] == model.num_features
