"""Parameters and multiply-accumulates.

MACs follow the convention of timm's and torchvision's tables: multiply-accumulates of
convolutions, linear layers and matrix products (attention included); element-wise work, norms and
pooling are not counted. Grouped and depthwise convolutions count their true (divided) cost:
torch's flop counter derives conv FLOPs from the weight shape, which already holds in_chs/groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ParamCount:
    total: int
    trainable: int


def count_params(model: nn.Module) -> ParamCount:
    params = list({id(p): p for p in model.parameters()}.values())  # tied weights once
    return ParamCount(
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
    )


def count_macs(model: nn.Module, example: torch.Tensor, per_module: bool = False) -> tuple[int, dict[str, int]]:
    """MACs of one forward pass on ``example`` (the whole batch), and optionally per module."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
            model(example)
    finally:
        model.train(was_training)
    total = counter.get_total_flops() // 2
    modules: dict[str, int] = {}
    if per_module:
        for name, ops in counter.get_flop_counts().items():
            modules[name] = sum(ops.values()) // 2
    return int(total), modules


def size_bytes(model: nn.Module) -> dict[str, int]:
    """Weights on disk: fp32 as stored, and an int8 estimate (conv/linear weights at one byte each
    plus a float scale per output channel; everything else stays float)."""
    fp32 = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    quantizable = 0
    scales = 0
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            quantizable += module.weight.numel()
            scales += module.weight.shape[0]
    int8 = fp32 - quantizable * 4 + quantizable + scales * 4
    return {"fp32": int(fp32), "int8_estimate": int(int8)}
