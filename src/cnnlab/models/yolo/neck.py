"""PAN-FPN neck: a top-down pass (FPN, Lin et al. 2017) then a bottom-up pass (PANet, Liu et al. 2018).

Contract: takes the backbone's three maps at strides 8, 16, 32 (channels ``in_channels``) and
returns three maps at the same strides with channels ``out_channels``.

Top-down, the deepest map is upsampled and fused with the next shallower one, so the stride-8 map
learns what the stride-32 map knows about objects. Bottom-up, a strided conv carries the now
semantically rich, precisely localised stride-8 map back down to strides 16 and 32, a short path for
localisation detail that the backbone's long path through many layers would otherwise blur. Fusion
is concat followed by a CSP block without residuals, as in the YOLOv5-v8 necks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.yolo.backbone import CspBlock, conv_bn_act


class PanFpn(nn.Module):
    """Top-down then bottom-up fusion of three levels."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], depth: int = 1) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        o3, o4, o5 = out_channels
        self.in_channels, self.out_channels = tuple(in_channels), tuple(out_channels)
        self.upsample = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.top_down4 = CspBlock(c5 + c4, o4, depth, shortcut=False)
        self.top_down3 = CspBlock(o4 + c3, o3, depth, shortcut=False)
        self.down3 = conv_bn_act(o3, o3, 3, stride=2)
        self.bottom_up4 = CspBlock(o3 + o4, o4, depth, shortcut=False)
        self.down4 = conv_bn_act(o4, o4, 3, stride=2)
        self.bottom_up5 = CspBlock(o4 + c5, o5, depth, shortcut=False)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = features
        t4 = self.top_down4(torch.cat((self.upsample(c5), c4), dim=1))
        p3 = self.top_down3(torch.cat((self.upsample(t4), c3), dim=1))
        p4 = self.bottom_up4(torch.cat((self.down3(p3), t4), dim=1))
        p5 = self.bottom_up5(torch.cat((self.down4(p4), c5), dim=1))
        return [p3, p4, p5]
