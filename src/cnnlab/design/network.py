"""The network a spec builds: stem, stages, head, with the registry's model contract."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnlab.blocks.drop import drop_path_rates
from cnnlab.blocks.factory import get_act_layer, get_norm_layer
from cnnlab.blocks.head import ClassifierHead, EmbeddingHead, MLPHead
from cnnlab.design.blocks import BlockContext
from cnnlab.design.infer import LayerInfo, infer
from cnnlab.design.spec import NetworkSpec
from cnnlab.models.contract import ContractModel, feature_stage


def _norm(spec: NetworkSpec) -> Any:
    if isinstance(spec.norm, dict):
        options = dict(spec.norm)
        return get_norm_layer(options.pop("type", "batch"), spec.spatial_dims, **options)
    return get_norm_layer(spec.norm, spec.spatial_dims)


def _norm_name(spec: NetworkSpec) -> str:
    return str(spec.norm.get("type", "batch") if isinstance(spec.norm, dict) else spec.norm).lower()


class DesignedNet(ContractModel):
    def __init__(self, spec: NetworkSpec, layers: list[LayerInfo] | None = None) -> None:
        super().__init__()
        layers = layers or infer(spec)
        self.spec_name = spec.name
        self.spec_dict = spec.to_dict()
        self.default_input_size = tuple(spec.input_size)
        self.layers_info = layers
        norm, act = _norm(spec), get_act_layer(spec.act)
        residual = [info for info in layers if info.kind.residual]
        rates = dict(zip((i.path for i in residual), drop_path_rates(spec.drop_path_rate, len(residual)), strict=True))
        built: dict[str, nn.Module] = {}
        for info in layers:
            ctx = BlockContext(
                info.label,
                spec.spatial_dims,
                norm,
                act,
                rates.get(info.path, 0.0),
                has_norm=_norm_name(spec) not in ("none", "identity"),
            )
            built[info.path] = info.kind.build(info.in_chs, info.out_chs, info.stride, info.options, ctx)
        self.stem = nn.Sequential(*[built[i.path] for i in layers if i.path.startswith("stem.")])
        self.stages = nn.Sequential(
            *[
                nn.Sequential(*[built[i.path] for i in layers if i.path.startswith(f"stages.{s}.")])
                for s in range(len(spec.stages))
            ]
        )
        last = layers[-1]
        self.num_features = last.out_chs
        self.num_classes = spec.num_classes
        self.head = self._head(spec, last)
        self.feature_info = [
            feature_stage(info.out_chs, info.jump, f"stages.{s}")
            for s in range(len(spec.stages))
            for info in [next(i for i in reversed(layers) if i.path.startswith(f"stages.{s}."))]
        ]
        self._init_weights(spec.zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """He init: fan-out for convolutions (as torchvision and timm CNNs), fan-in for linear layers.

        PyTorch's default Linear init is ~2.5x narrower; on a spec-built CIFAR ResNet-20 trained 3 epochs
        on digits it cost 10 points (84.5/88.9/81.4% vs 96.1/94.2/96.7% over seeds 0-2).
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if hasattr(module, "zero_init_last"):
                    module.zero_init_last()

    def _head(self, spec: NetworkSpec, last: LayerInfo) -> nn.Module:
        head = spec.head
        if head.type == "mlp":
            module: nn.Module = MLPHead(
                last.out_chs,
                spec.num_classes,
                hidden=list(head.hidden),
                pool_size=head.pool_size,
                spatial_dims=spec.spatial_dims,
                drop_rate=head.dropout,
                act_layer=get_act_layer(spec.act),
            )
            self.num_features = module.in_features
        elif head.type == "embedding":
            module = EmbeddingHead(last.out_chs, spec.num_classes, dim=head.dim, map_size=last.out_size)
            self.num_features = head.dim
        else:
            module = ClassifierHead(
                last.out_chs,
                spec.num_classes if head.type != "none" else 0,
                spatial_dims=spec.spatial_dims,
                pool=head.pool,
                drop_rate=head.dropout,
            )
        return module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)
