"""The CIFAR ResNets of He et al. 2015, section 4.2: depth 6n+2, widths 16/32/64, option-A shortcuts.

These are not ImageNet ResNets shrunk: a 3x3 stem, no max-pool, three stages of n basic blocks,
and parameter-free shortcuts. ResNet-20/32/44/56/110 have 0.27M/0.46M/0.66M/0.85M/1.7M parameters.
``width=k`` multiplies every stage's channels (Zagoruyko & Komodakis 2016, wide ResNets): k=2 has
about 4x the parameters and MACs of k=1.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from cnnlab.blocks import ClassifierHead, get_act_layer
from cnnlab.blocks.conv import ConvNormAct
from cnnlab.blocks.residual import BasicBlock
from cnnlab.errors import ConfigError
from cnnlab.models.contract import ContractModel, feature_stage
from cnnlab.registry import register_model

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
WIDTHS = (16, 32, 64)


class CifarResNet(ContractModel):
    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: str = "A",
        act: str = "relu",
        drop_rate: float = 0.0,
        width: int = 1,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ConfigError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"CIFAR ResNet width is a whole multiple of 16/32/64 channels (1, 2, 4…), got {width!r}")
        widths = tuple(w * width for w in WIDTHS)
        blocks_per_stage = (depth - 2) // 6
        act_layer = get_act_layer(act)
        norm_layer = nn.BatchNorm2d
        self.stem = ConvNormAct(in_chans, widths[0], 3, norm_layer=norm_layer, act_layer=act_layer)
        stages = []
        in_chs = widths[0]
        for i, stage_width in enumerate(widths):
            blocks = [
                BasicBlock(
                    in_chs if b == 0 else stage_width,
                    stage_width,
                    stride=2 if (i > 0 and b == 0) else 1,
                    shortcut=shortcut,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
                for b in range(blocks_per_stage)
            ]
            stages.append(nn.Sequential(*blocks))
            in_chs = stage_width
        self.stages = nn.Sequential(*stages)
        self.num_features = widths[-1]
        self.num_classes = num_classes
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate=drop_rate)
        self.feature_info = [feature_stage(w, 2**i, f"stages.{i}") for i, w in enumerate(widths)]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.Conv2d) else "fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)


def _cifar_resnet(
    depth: int,
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    shortcut: str = "A",
    act: str = "relu",
    drop_rate: float = 0.0,
    width: int = 1,
) -> CifarResNet:
    return CifarResNet(
        depth,
        num_classes=num_classes,
        in_chans=in_chans,
        shortcut=shortcut,
        act=act,
        drop_rate=drop_rate,
        width=width,
    )


def _register(depth: int) -> None:
    builder = partial(_cifar_resnet, depth)
    builder.__doc__ = f"ResNet-{depth} for 32x32 images (He et al. 2015, CIFAR-10 variant, option A)."
    builder.__name__ = f"cifar_resnet{depth}"
    register_model(
        family="cifar_resnet",
        input_size=(3, 32, 32),
        num_classes=10,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        first_conv="stem.conv",
        classifier="head.fc",
    )(builder)


for _depth in (20, 32, 44, 56, 110):
    _register(_depth)
