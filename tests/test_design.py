"""Design specs: the classics against their reference implementations, YAML round trips, the
errors of broken specs, scaling, inflation, 1D and 3D networks, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from cnnlab.design import NetworkSpec, build, infer, inflate, load_spec, scale_spec, summarize
from cnnlab.design.zoo import ZOO
from cnnlab.errors import ConfigError, DuplicateModelError
from cnnlab.profile import profile_model
from cnnlab.registry import create_model, get_entry
from tests.conftest import run_cli

# spec name, torchvision reference, builder options, published parameters
REFERENCES = [
    ("spec_resnet50", "resnet50", {}, 25_557_032),
    ("spec_vgg16", "vgg16", {}, 138_357_544),
    ("spec_mobilenet_v2", "mobilenet_v2", {}, 3_504_872),
    ("spec_efficientnet_b0", "efficientnet_b0", {}, 5_288_548),
    ("spec_alexnet", "alexnet", {}, 61_100_840),
    ("spec_resnet18", "resnet18", {}, 11_689_512),
    ("spec_inception_v1", "googlenet", {"aux_logits": False, "init_weights": True}, 6_624_904),
]


@pytest.mark.parametrize(("spec", "reference", "options", "params"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_spec_equals_its_reference(spec: str, reference: str, options: dict, params: int) -> None:
    torch.manual_seed(0)
    ours = create_model(spec).eval()
    theirs = torchvision.models.get_model(reference, weights=None, **options).eval()
    assert sum(p.numel() for p in ours.parameters()) == params == sum(p.numel() for p in theirs.parameters())
    ours_macs = profile_model(ours, input_size=(3, 224, 224), latency=False).macs
    theirs_macs = profile_model(theirs, input_size=(3, 224, 224), latency=False).macs
    assert ours_macs == pytest.approx(theirs_macs, rel=0.01)
    # Loading the reference's state dict in order must reproduce its outputs: it is the same network.
    values = list(theirs.state_dict().values())
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in values]
    ours.load_state_dict(dict(zip(ours.state_dict().keys(), values, strict=True)))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5, rtol=0)


def test_spec_lenet_is_lenet5() -> None:
    ours, theirs = create_model("spec_lenet5").eval(), create_model("lenet5").eval()
    ours.load_state_dict(dict(zip(ours.state_dict().keys(), theirs.state_dict().values(), strict=True)))
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_mobilefacenet_is_a_one_million_parameter_embedder() -> None:
    model = create_model("mobilefacenet").eval()
    assert get_entry("mobilefacenet").task == "embed"
    assert 0.98e6 <= sum(p.numel() for p in model.parameters()) <= 1.01e6
    with torch.no_grad():
        assert model(torch.randn(2, 3, 112, 112)).shape == (2, 128)
    assert create_model("mobilefacenet", num_classes=40)(torch.randn(2, 3, 112, 112)).shape == (2, 40)


@pytest.mark.parametrize("path", sorted(ZOO.glob("*.yaml")), ids=lambda p: p.stem)
def test_yaml_round_trip(path: Path, tmp_path: Path) -> None:
    spec = load_spec(path)
    again = NetworkSpec.from_dict(yaml.safe_load(spec.to_yaml()))
    assert again == spec
    (tmp_path / "s.yaml").write_text(again.to_yaml())
    assert load_spec(tmp_path / "s.yaml").to_dict() == spec.to_dict()


BASE = {"name": "broken", "input_size": [3, 32, 32], "stages": [{"block": "basic", "out": 16}]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"stages": [{"block": "bottlenek", "out": 16}]},
            r"stage 0: unknown block 'bottlenek'; did you mean bottleneck",
        ),
        ({"stages": [{"block": "basic"}]}, r"stage 0 block 0 \(basic\) lacks field 'out'"),
        ({"stages": [{"out": 16}]}, r"stage 0 lacks field 'block'"),
        ({"stages": [{"block": "basic", "out": 16, "kernal": 3}]}, r"stage 0 \(basic\): block 'basic' has no option"),
        (
            {"stages": [{"block": "pool", "kind": "max"}] * 6},
            r"stage 5 block 0 \(pool\): stride 2 / kernel 2 takes the feature map from 1x1 below 1 pixel "
            r"\(input 3x32x32\)",
        ),
        ({"stages": [{"block": "conv", "out": 16, "groups": 5}]}, r"groups=5 must divide the input \(3\)"),
        (
            {"stages": [{"block": "basic", "out": 16}, {"block": "basic", "out": 8, "shortcut": "A"}]},
            r"stage 1 block 0: shortcut A cannot reduce channels \(16 -> 8\)",
        ),
        ({"stages": [{"block": "inception", "branches": [4, 8]}]}, r"field 'branches' must be"),
        ({"stages": [{"block": "basic", "out": 0}]}, r"stage 0 field 'out' must be a positive integer"),
        ({"input_size": [3, 32]}, None),
        ({"input_size": "224"}, r"field 'input_size' must be"),
        ({"stages": []}, r"field 'stages' must be a non-empty list"),
        ({"head": {"type": "softmax"}}, r"head field 'type' is 'softmax'"),
        ({"head": {"type": "embedding"}}, r"needs field 'dim'"),
        ({"colour": "red"}, r"unknown field\(s\) colour"),
        ({"stages": [{"block": "mbconv", "out": 8, "act": "swishy"}]}, r"unknown activation 'swishy'"),
    ],
)
def test_broken_specs_name_the_block_and_field(change: dict, message: str | None) -> None:
    data = {**BASE, **change}
    if message is None:  # a valid 1D spec, for contrast
        infer(NetworkSpec.from_dict(data))
        return
    with pytest.raises(ConfigError, match=message):
        spec = NetworkSpec.from_dict(data)
        build(spec, register=False)


def test_inception_out_mismatch_names_both_numbers() -> None:
    data = {**BASE, "stages": [{"block": "inception", "out": 99, "branches": [4, [4, 8], [2, 4], 4]}]}
    with pytest.raises(ConfigError, match="'out' is 99 but the branches add up to 20"):
        infer(NetworkSpec.from_dict(data))


def test_summary_totals_and_receptive_field() -> None:
    summary = summarize(load_spec(ZOO / "spec_resnet18.yaml"))
    assert summary.total_params == 11_689_512 and summary.total_macs / 1e9 == pytest.approx(1.81, rel=0.01)
    assert summary.rows[-1].receptive_field == 435  # the well-known ResNet-18 figure
    assert sum(r.params for r in summary.rows) + summary.head_params == summary.total_params


def test_compound_scaling() -> None:
    b0 = load_spec(ZOO / "spec_efficientnet_b0.yaml")
    b1 = scale_spec(b0, phi=1)
    assert b1.input_size == [3, 256, 256] and b1.name.endswith("phi1")
    assert all(s.out % 8 == 0 for s in b1.stages if s.out)
    assert sum(s.repeats for s in b1.stages) > sum(s.repeats for s in b0.stages)
    wide = scale_spec(b0, width=2.0)
    assert [s.out for s in wide.stages] == [2 * s.out for s in b0.stages]
    model = build(scale_spec(b0, width=0.5, depth=0.5, resolution=0.5), register=False)
    assert model(torch.randn(1, 3, 112, 112)).shape == (1, 1000)
    with pytest.raises(ConfigError, match="--width must be positive"):
        scale_spec(b0, width=0)


def test_inflating_2d_weights_into_3d() -> None:
    spec = load_spec(ZOO / "spec_resnet18.yaml")
    model_2d = build(spec, num_classes=4, register=False).eval()
    model_3d = inflate(model_2d, NetworkSpec.from_dict({**spec.to_dict(), "num_classes": 4}), depth=16).eval()
    w2, w3 = model_2d.stem[0].conv.weight, model_3d.stem[0].conv.weight
    assert w3.shape == (64, 3, 7, 7, 7) and torch.allclose(w3.sum(2), w2, atol=1e-6)
    # A volume whose slices are one image: away from the depth borders each 3D filter sees the 2D response.
    image = torch.randn(1, 3, 32, 32)
    volume = image[:, :, None].expand(1, 3, 16, 32, 32)
    with torch.no_grad():
        r2 = model_2d.stem[0].conv(image)
        r3 = model_3d.stem[0].conv(volume)
    assert torch.allclose(r3[:, :, 2], r2, atol=1e-5)


def test_a_1d_network_learns_a_synthetic_time_series_task() -> None:
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 256)
    labels = torch.randint(0, 2, (64,))
    freq = torch.where(labels == 1, 12.0, 4.0)
    signals = torch.sin(2 * torch.pi * freq[:, None] * t + torch.rand(64, 1) * 6)[:, None] + 0.3 * torch.randn(
        64, 1, 256
    )
    model = create_model("resnet1d18", num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(signals), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_3d_network_runs_on_a_small_volume() -> None:
    model = create_model("resnet3d18", num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32, 32)).shape == (1, 3)
    assert get_entry("resnet3d18").spatial_dims == (3,)


CBAM_NET = """\
name: cbam_resnet_tiny
input_size: [1, 32, 32]
num_classes: 10
stem:
  - {block: conv, out: 16}
stages:
  - {block: basic, out: 16, repeats: 1, attn: cbam}
  - {block: basic, out: 32, repeats: 1, stride: 2, attn: cbam}
  - {block: basic, out: 48, repeats: 1, stride: 2, attn: cbam}
head: {type: classifier, dropout: 0.1}
"""


def test_train_a_spec_from_yaml_and_reload_it_without_the_file(tmp_path: Path) -> None:
    from cnnlab.runs import load_run
    from cnnlab.train import train_model

    (tmp_path / "net.yaml").write_text(CBAM_NET)
    result = train_model(
        data="builtin:digits", model=str(tmp_path / "net.yaml"), epochs=3, out=tmp_path / "run", progress=False
    )
    assert result.metrics["top1"] > 0.5
    (tmp_path / "net.yaml").unlink()  # the card carries the spec
    loaded = load_run(tmp_path / "run")
    assert loaded.card.spec["name"] == "cbam_resnet_tiny" and loaded.card.architecture == "cbam_resnet_tiny"
    assert type(loaded.model.stages[0][0].attn).__name__ == "CBAM"


def test_building_registers_the_spec_and_protects_taken_names(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(CBAM_NET)
    create_model(str(tmp_path / "net.yaml"))
    assert create_model("cbam_resnet_tiny")(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    (tmp_path / "net.yaml").write_text(CBAM_NET.replace("out: 48", "out: 24"))  # a new version replaces the old
    assert create_model(str(tmp_path / "net.yaml")).num_features == 24
    (tmp_path / "taken.yaml").write_text(CBAM_NET.replace("cbam_resnet_tiny", "resnet18"))
    with pytest.raises(DuplicateModelError, match="taken by a timm model"):
        create_model(str(tmp_path / "taken.yaml"))


def test_design_cli(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(CBAM_NET)
    shown = run_cli("design", "show", str(tmp_path / "net.yaml"), "--input", "1x1x64x64", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["input_size"] == [1, 64, 64] and data["rows"][-1]["out_shape"] == [48, 16, 16]
    assert "receptive field" in run_cli("design", "show", "spec_resnet18").stdout
    assert "ok cbam_resnet_tiny" in run_cli("design", "check", str(tmp_path / "net.yaml")).stdout
    scaled = run_cli("design", "scale", str(tmp_path / "net.yaml"), "--width", "2", "--out", str(tmp_path / "w.yaml"))
    assert scaled.returncode == 0 and load_spec(tmp_path / "w.yaml").stages[2].out == 96
    (tmp_path / "bad.yaml").write_text(CBAM_NET.replace("basic", "basik", 1))
    bad = run_cli("design", "check", str(tmp_path / "bad.yaml"))
    assert bad.returncode == 2 and "unknown block 'basik'" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "junk.yaml").write_text("name: [unclosed")
    junk = run_cli("design", "check", str(tmp_path / "junk.yaml"))
    assert junk.returncode == 2 and "not valid YAML at line" in junk.stderr
