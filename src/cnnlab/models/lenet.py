"""LeNet-5 (LeCun et al., 1998): the network that read cheques, for 32x32 grayscale inputs.

C1 conv5 6 -> S2 pool -> C3 conv5 16 -> S4 pool -> C5 conv5 120 -> F6 84 -> output.
C3 connects to all S2 maps (the paper's sparse connection table is a 1998 compute saving; every
modern reimplementation uses the full connection). 61,706 parameters for 10 classes.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.blocks import get_act_layer, get_pool_layer
from cnnlab.models.contract import ContractModel, feature_stage
from cnnlab.registry import register_model


class LeNet5(ContractModel):
    def __init__(self, num_classes: int = 10, in_chans: int = 1, act: str = "tanh", pool: str = "avg") -> None:
        super().__init__()
        act_layer = get_act_layer(act)
        pool_layer = get_pool_layer(pool)
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_chans, 6, 5),
                act1=act_layer(),
                s2=pool_layer(2),
                c3=nn.Conv2d(6, 16, 5),
                act3=act_layer(),
                s4=pool_layer(2),
                c5=nn.Conv2d(16, 120, 5),
                act5=act_layer(),
            )
        )
        # C5 sees a 5x5 map at 32x32 input, so this pool is the identity there; it lets larger inputs through.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.f6 = nn.Linear(120, 84)
        self.act6 = act_layer()
        self.num_features = 84
        self.num_classes = num_classes
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            feature_stage(6, 1, "features.act1"),
            feature_stage(16, 2, "features.act3"),
            feature_stage(120, 4, "features.act5"),
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act6(self.f6(torch.flatten(self.pool(x), 1)))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


@register_model(
    family="lenet",
    input_size=(1, 32, 32),
    num_classes=10,
    mean=(0.5,),
    std=(0.5,),
    first_conv="features.c1",
    classifier="fc",
)
def lenet5(*, num_classes: int = 10, in_chans: int = 1, act: str = "tanh", pool: str = "avg") -> LeNet5:
    """LeNet-5 (1998) for 32x32 grayscale digits and characters."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans, act=act, pool=pool)
