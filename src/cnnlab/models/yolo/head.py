"""Decoupled, anchor-free detection head (YOLOX, Ge et al. 2021; box distributions from GFL, Li et al. 2020).

Contract: takes the neck's maps at strides 8, 16, 32 and returns one raw tensor per level,
``[B, 4 * reg_max + num_classes, H, W]``: first the box logits, then the class logits, no activation.
:func:`cnnlab.models.yolo.postprocess.decode` and :class:`cnnlab.models.yolo.loss.DetectionLoss`
read exactly this.

YOLOX found that classification and localisation pull a shared head in different directions;
giving each its own two-conv branch converged faster and scored higher. Each side of the box is
predicted as a distribution over ``reg_max`` distance bins (0 .. reg_max - 1 strides) rather than
one number: the expectation is the distance, and the spread lets the model say "this edge is
ambiguous" (occlusion, blur) instead of being punished for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.yolo.backbone import conv_bn_act

# Focal-loss initialisation (RetinaNet, Lin et al. 2017): every class starts at probability 0.01, so
# the thousands of background cells do not swamp the first steps with a huge classification loss.
CLS_PRIOR = 0.01
# Box prior: a bell over the bins centred at 2 strides, expectation ~2.4 strides per side. An
# untrained head then proposes boxes about 5 cells wide on every level (40 px at stride 8,
# 150 px at stride 32), the object sizes FPN levels suit, instead of the 15-cell boxes a flat
# distribution gives; early IoUs, and so the task-aligned assignment, are less degenerate.
BOX_PRIOR_CENTRE, BOX_PRIOR_WIDTH = 2.0, 2.0


def _branch(in_chs: int, width: int, out_chs: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_act(in_chs, width, 3), conv_bn_act(width, width, 3), nn.Conv2d(width, out_chs, 1))


class DecoupledHead(nn.Module):
    """Separate classification and box branches on every level (weights not shared between levels)."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, *, reg_max: int = 16) -> None:
        super().__init__()
        self.num_classes, self.reg_max = num_classes, reg_max
        # One width for all levels: at least 64 so a nano model's stride-8 branch is not starved.
        width = max(64, in_channels[0])
        self.box_branches = nn.ModuleList(_branch(c, width, 4 * reg_max) for c in in_channels)
        self.cls_branches = nn.ModuleList(_branch(c, width, num_classes) for c in in_channels)
        self.reset_parameters()

    @property
    def num_outputs(self) -> int:
        return 4 * self.reg_max + self.num_classes

    def reset_parameters(self) -> None:
        """Set the output biases to the class and box priors above."""
        bins = torch.arange(self.reg_max, dtype=torch.float32)
        box_bias = -0.5 * ((bins - BOX_PRIOR_CENTRE) / BOX_PRIOR_WIDTH) ** 2
        for branch in self.box_branches:
            with torch.no_grad():
                branch[-1].bias.copy_(box_bias.repeat(4))
        for branch in self.cls_branches:
            nn.init.constant_(branch[-1].bias, -math.log((1 - CLS_PRIOR) / CLS_PRIOR))

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [
            torch.cat((box(x), cls(x)), dim=1)
            for x, box, cls in zip(features, self.box_branches, self.cls_branches, strict=True)
        ]
