"""Resize a model's layers to the shapes of a state dict: how a structurally pruned model is rebuilt.

Pruning removes channels, so a pruned network no longer matches its registry architecture. Its
card says ``shapes_from_weights``; loading builds the architecture, then gives every convolution,
normalisation and linear layer the shapes stored in the safetensors file. Depthwise convolutions
stay depthwise (groups follow the channels). No pickle is needed to save or load a pruned model.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CheckpointError

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _empty_like_shape(param: torch.Tensor, shape: torch.Size) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape, dtype=param.dtype), requires_grad=param.requires_grad)


def resize_to_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Give each layer the shapes in ``state``; returns how many layers changed."""
    changed = 0
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if isinstance(module, _CONVS) and weight is not None and weight.shape != module.weight.shape:
            depthwise = module.groups == module.in_channels and module.groups > 1
            out_chs, in_per_group = weight.shape[0], weight.shape[1]
            groups = out_chs if depthwise else module.groups
            module.in_channels, module.out_channels, module.groups = in_per_group * groups, out_chs, groups
            module.weight = _empty_like_shape(module.weight, weight.shape)
            if module.bias is not None:
                module.bias = _empty_like_shape(module.bias, torch.Size([out_chs]))
            changed += 1
        elif isinstance(module, _NORMS) and weight is not None and weight.shape != module.weight.shape:
            n = weight.shape[0]
            module.num_features = n
            module.weight = _empty_like_shape(module.weight, weight.shape)
            module.bias = _empty_like_shape(module.bias, weight.shape)
            module.running_mean = torch.zeros(n)
            module.running_var = torch.ones(n)
            changed += 1
        elif isinstance(module, nn.GroupNorm) and weight is not None and weight.shape != module.weight.shape:
            module.num_channels = weight.shape[0]
            module.weight = _empty_like_shape(module.weight, weight.shape)
            module.bias = _empty_like_shape(module.bias, weight.shape)
            changed += 1
        elif isinstance(module, nn.LayerNorm) and weight is not None and weight.shape != module.weight.shape:
            module.normalized_shape = tuple(weight.shape)
            module.weight = _empty_like_shape(module.weight, weight.shape)
            module.bias = _empty_like_shape(module.bias, weight.shape)
            changed += 1
        elif isinstance(module, nn.Linear) and weight is not None and weight.shape != module.weight.shape:
            module.out_features, module.in_features = weight.shape
            module.weight = _empty_like_shape(module.weight, weight.shape)
            if module.bias is not None:
                module.bias = _empty_like_shape(module.bias, torch.Size([weight.shape[0]]))
            changed += 1
        elif isinstance(module, nn.PReLU) and weight is not None and weight.shape != module.weight.shape:
            module.num_parameters = weight.shape[0]
            module.weight = _empty_like_shape(module.weight, weight.shape)
            changed += 1
    _sync_contract_attributes(model)
    return changed


def _sync_contract_attributes(model: nn.Module) -> None:
    """The model contract's num_features follows the (possibly narrower) classifier input."""
    getter = getattr(model, "get_classifier", None)
    classifier = getter() if callable(getter) else None
    if isinstance(classifier, nn.Linear) and hasattr(model, "num_features"):
        model.num_features = classifier.in_features
        head = getattr(model, "head", None)
        if head is not None and hasattr(head, "in_features"):
            head.in_features = classifier.in_features


def check_resized(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    expected = model.state_dict()
    wrong = [k for k in expected if k in state and expected[k].shape != state[k].shape]
    if wrong:
        raise CheckpointError(f"{origin}: cannot rebuild the pruned layers {', '.join(wrong[:4])} from the weights")
