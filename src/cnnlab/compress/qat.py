"""Quantization-aware fine-tuning: conv and linear layers see int8-rounded weights (per channel,
symmetric) and inputs (per tensor, asymmetric, ranges tracked by moving average) during a short
recovery fine-tune, with straight-through gradients. Afterwards fake quantization is switched off
and the float weights, now robust to rounding, go through the same ORT post-training quantization.

Fake quantization is an instance-level forward on each layer, not a wrapper module, so the state
dict keeps its keys: the fine-tune's checkpoints are ordinary checkpoints of the same architecture.
"""

from __future__ import annotations

import types

import torch
from torch import nn
from torch.nn import functional as F

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class _Range:
    """Moving min/max of a layer's input (a plain object: not a buffer, so not in the state dict)."""

    def __init__(self, momentum: float = 0.01) -> None:
        self.lo = self.hi = None
        self.momentum = momentum

    def update(self, x: torch.Tensor) -> None:
        lo, hi = float(x.detach().min()), float(x.detach().max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo += self.momentum * (lo - self.lo)
            self.hi += self.momentum * (hi - self.hi)


def _quant_input(x: torch.Tensor, observed: _Range, training: bool) -> torch.Tensor:
    if training or observed.lo is None:
        observed.update(x)
    lo, hi = min(observed.lo, 0.0), max(observed.hi, 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    return torch.fake_quantize_per_tensor_affine(x, scale, int(round(-lo / scale)), 0, 255)


def _quant_weight(w: torch.Tensor) -> torch.Tensor:
    scale = (w.detach().abs().amax(dim=tuple(range(1, w.dim()))) / 127.0).clamp(min=1e-8).float()
    return torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32), 0, -127, 127)


def _fake_quant_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = _quant_input(x, self._cnnlab_range, self.training)
    w = _quant_weight(self.weight)
    if isinstance(self, nn.Linear):
        return F.linear(x, w, self.bias)
    conv = (F.conv1d, F.conv2d, F.conv3d)[self.weight.dim() - 3]
    return conv(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def enable(model: nn.Module) -> int:
    """Switch fake quantization on for every conv/linear layer; returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, _LAYERS) and not hasattr(module, "_cnnlab_range"):
            module._cnnlab_range = _Range()
            module.forward = types.MethodType(_fake_quant_forward, module)
            count += 1
    return count


def disable(model: nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "_cnnlab_range"):
            del module._cnnlab_range
            del module.forward  # back to the class's forward
