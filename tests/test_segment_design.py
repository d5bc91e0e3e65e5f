"""Segmenters designed in YAML: a unet, deeplabv3plus or fpn head over a spec's stem and stages, in
1D, 2D and 3D, trained, reloaded from the run's card and exported like the registered ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from cnnlab.data.segmentation import make_segment_shapes
from cnnlab.design import build_from_dict
from cnnlab.errors import ConfigError
from cnnlab.train import train_model

ENCODER: dict[str, Any] = {
    "name": "tiny_seg_net",
    "input_size": [1, 32, 32],
    "num_classes": 3,
    "stem": [{"block": "conv", "out": 8}],
    "stages": [
        {"block": "basic", "out": 8},
        {"block": "basic", "out": 16, "stride": 2},
        {"block": "basic", "out": 16, "stride": 2},
        {"block": "mbconv", "out": 24, "stride": 2, "expand": 2},
    ],
}


def spec(head: dict[str, Any], dims: int = 2, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(ENCODER)
    data.update(head=head, input_size=[1, *[32] * dims], **changes)
    return data


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("head", ["unet", "deeplabv3plus", "fpn"])
def test_each_head_gives_logits_at_the_input_size_with_gradients(head: str, dims: int) -> None:
    model = build_from_dict(spec({"type": head, "width": 8}, dims), num_classes=4)
    x = torch.randn(2, 1, *[32] * dims)
    logits = model(x)
    assert logits.shape == (2, 4, *[32] * dims)
    logits.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.spatial_dims == dims and model.size_divisor == 8
    assert model.spec_dict["task"] == "segment" and model.spec_dict["head"]["type"] == head


def test_a_unet_head_works_on_signals_and_the_others_say_they_do_not() -> None:
    model = build_from_dict(spec({"type": "unet"}, dims=1))
    assert model(torch.randn(2, 1, 64)).shape == (2, 3, 64)
    with pytest.raises(ConfigError, match="use a unet head in 1D"):
        build_from_dict(spec({"type": "fpn"}, dims=1))


def test_the_decoder_is_built_from_the_spec_and_the_head_options_reach_it() -> None:
    model = build_from_dict(spec({"type": "deeplabv3plus", "width": 16, "rates": [1, 2, 3]}))
    dilations = sorted({m.dilation[0] for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)})
    assert dilations == [1, 2, 3]
    assert model.decoder.out_chs == 16
    unet = build_from_dict(spec({"type": "unet"}))
    assert unet.decoder.out_chs == 8  # the shallowest encoder map's width by default


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (spec({"type": "unet", "rates": [1, 2]}), "belongs to a deeplabv3plus head"),
        (spec({"type": "fpn", "width": 0}), "'width' must be a positive integer"),
        (spec({"type": "classifier", "width": 8}), "sets a segmentation decoder"),
        (spec({"type": "unet"}, task="classify"), "drop 'task' or set it to segment"),
        (spec({"type": "classifier"}, task="segment"), "needs a segmentation head"),
        (spec({"type": "deeplabv3plus"}, stages=ENCODER["stages"][:3]), "deeper than stride 4"),
    ],
)
def test_specs_that_cannot_make_a_segmenter_are_refused_saying_why(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_from_dict(data)


def test_a_segmenting_spec_is_refused_for_class_labels(tmp_path: Path) -> None:
    path = tmp_path / "seg.yaml"
    path.write_text(yaml.safe_dump(spec({"type": "unet"})), encoding="utf-8")
    with pytest.raises(ConfigError, match="holds class labels"):
        train_model(data="builtin:digits", model=str(path), epochs=1, out=tmp_path / "run", progress=False)


@pytest.mark.slow
def test_a_designed_3d_segmenter_trains_reloads_from_its_card_and_exports(tmp_path: Path) -> None:
    from cnnlab.export import export_run
    from cnnlab.runs import load_run

    path = tmp_path / "vnet.yaml"
    path.write_text(yaml.safe_dump(spec({"type": "unet", "width": 4}, dims=3, name="tiny_vnet")), encoding="utf-8")
    data = make_segment_shapes(tmp_path / "vol", dims=3, n_train=4, n_val=2, n_test=2, size=32, seed=0)
    result = train_model(
        data=str(data), model=str(path), input_size=[32], epochs=1, batch_size=2, out=tmp_path / "run", progress=False
    )
    card = json.loads((result.path / "card.json").read_text())
    assert card["architecture"] == "tiny_vnet" and card["spec"]["head"]["type"] == "unet"
    assert card["task"] == "segment" and card["input_size"] == [1, 32, 32, 32]
    assert "miou" in result.metrics
    loaded = load_run(result.path)  # strict: every saved tensor has its place in the rebuilt network
    assert loaded.model.eval()(torch.randn(1, 1, 32, 32, 32)).shape == (1, card["num_classes"], 32, 32, 32)
    assert export_run(result.path, "onnx", pick_runtime=False).parity["onnx"].passed


def test_design_show_counts_the_decoder_as_the_head_of_a_segmenter() -> None:
    from cnnlab.design import NetworkSpec, summarize

    network = NetworkSpec.from_dict(spec({"type": "fpn", "width": 8}))
    summary = summarize(network)
    model = build_from_dict(network.to_dict())
    assert summary.head_block == "fpn" and summary.output_shape == [3, 32, 32]
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters()) + sum(p.numel() for p in model.head.parameters())
    assert summary.head_params == decoder and summary.head_macs > 0
    assert len(summary.rows) == 1 + len(ENCODER["stages"])  # the stem conv and one block per stage
