"""Every block type x spatial_dims 1/2/3 x a few options: forward, backward, and the shape the spec
inference declares equals the shape the module produces."""

from __future__ import annotations

import pytest
import torch

from cnnlab.design import NetworkSpec, build, infer

CASES = [
    ("conv", {"out": 12, "stride": 2}),
    ("conv", {"out": 12, "kernel": 5, "dilation": 2, "groups": 4}),
    ("pool", {"kind": "max", "kernel": 3, "stride": 2, "padding": 1}),
    ("pool", {"kind": "avg", "kernel": 2, "ceil_mode": True}),
    ("basic", {"out": 16, "stride": 2}),
    ("basic", {"out": 16, "shortcut": "A", "attn": "se"}),
    ("basic", {"out": 8, "dilation": 2, "attn": "cbam"}),
    ("bottleneck", {"out": 32, "stride": 2, "groups": 4, "width_per_group": 8}),
    ("bottleneck", {"out": 16, "attn": "eca"}),
    ("mbconv", {"out": 8, "expand": 4, "se": 0.25}),
    ("mbconv", {"out": 16, "stride": 2, "kernel": 5, "act": "hardswish", "se_gate": "hardsigmoid", "se": 0.25}),
    ("fused_mbconv", {"out": 16, "stride": 2, "expand": 4, "se": 0.25}),
    ("fused_mbconv", {"out": 8, "expand": 1}),
    ("separable", {"out": 16, "stride": 2, "attn": "se"}),
    ("separable", {"out": 8, "skip": True, "dilation": 2}),
    ("inception", {"branches": [4, [4, 8], [2, 4], 4]}),
    ("dense", {"layers": 3, "growth": 4, "bn_size": 2}),
    ("transition", {"out": 4}),
    ("aspp", {"out": 8, "rates": [1, 2, 3]}),
    ("se", {}),
    ("cbam", {"spatial_kernel": 3}),
    ("eca", {}),
]
SIZES = {1: [8, 20], 2: [8, 12, 10], 3: [8, 6, 8, 7]}


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize(("block", "options"), CASES, ids=[f"{b}-{i}" for i, (b, _) in enumerate(CASES)])
def test_block_forward_backward_and_declared_shape(block: str, options: dict, spatial_dims: int) -> None:
    stage = {"block": block, **options}
    spec = NetworkSpec.from_dict(
        {"name": f"t_{block}", "input_size": SIZES[spatial_dims], "num_classes": 3, "stages": [stage]}
    )
    declared = infer(spec)[-1].out_shape
    model = build(spec, register=False)
    x = torch.randn(2, *spec.input_size, requires_grad=True)
    features = model.forward_features(x)
    assert tuple(features.shape[1:]) == declared
    logits = model.forward_head(features)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_blocks_declare_channels_and_stride() -> None:
    from cnnlab.blocks import BasicBlock, Bottleneck
    from cnnlab.blocks.mobile import InvertedResidual
    from cnnlab.blocks.multibranch import DenseBlock, Inception, Transition

    for block, chs, stride in [
        (BasicBlock(8, 16, 2), 16, 2),
        (Bottleneck(8, 32, 1), 32, 1),
        (InvertedResidual(8, 24, 2), 24, 2),
        (Inception(8, [1, [2, 3], [2, 4], 5]), 13, 1),
        (DenseBlock(8, 2, 4), 16, 1),
        (Transition(16, 8), 8, 2),
    ]:
        assert (block.out_chs, block.stride) == (chs, stride), type(block).__name__


def test_make_divisible_rounds_to_hardware_friendly_widths() -> None:
    from cnnlab.blocks.mobile import make_divisible

    assert make_divisible(32 * 1.1) == 32 and make_divisible(40 * 1.4) == 56 and make_divisible(7) == 8
    assert all(make_divisible(c * w) % 8 == 0 for c in (16, 24, 40, 80, 112) for w in (0.5, 0.75, 1.3))
    assert make_divisible(100, 8) >= 90  # never more than 10% below
