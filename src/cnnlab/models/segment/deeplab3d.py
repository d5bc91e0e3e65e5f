"""cnnlab's own dilated residual encoder, for DeepLab-style heads in 2D and 3D.

No 3D ImageNet backbone exists to dilate, so this is a small ResNet built from ``BasicBlock``:
a stride-2 stem, four stages of basic blocks (the first at stride 4 gives the low-level map), and
beyond the output stride the stages stop striding and dilate instead, as DeepLab does to ResNet
(Chen et al. 2017): the receptive field keeps growing while the map keeps its resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.blocks.conv import ConvNormAct
from cnnlab.blocks.factory import get_norm_layer
from cnnlab.blocks.residual import BasicBlock
from cnnlab.errors import ConfigError
from cnnlab.models.features import FeatureInfo
from cnnlab.models.segment import he_init


class DilatedResNet(nn.Module):
    """Stem and four residual stages at strides 4, 8, 16, 32, with dilation past ``output_stride``.

    Returns every stage's map (a features_only module: wrap it in ``FeatureEncoder``).

    Args:
        in_chans: input channels.
        base_width: channels of the stem and the first stage; doubled per later stage.
        depths: basic blocks per stage.
        output_stride: 8 or 16; deeper stages keep this stride and dilate by 2, then 4.
        spatial_dims: 2 or 3.
    """

    def __init__(
        self,
        in_chans: int,
        *,
        base_width: int = 16,
        depths: Sequence[int] = (2, 2, 2, 2),
        output_stride: int = 8,
        spatial_dims: int = 3,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ConfigError(f"output_stride must be 8 or 16, not {output_stride!r}")
        if len(depths) != 4:
            raise ConfigError(f"depths gives the blocks of four stages, got {list(depths)}")
        norm_layer = get_norm_layer("batch", spatial_dims)
        kw = dict(spatial_dims=spatial_dims, norm_layer=norm_layer)
        self.stem = ConvNormAct(in_chans, base_width, 3, 2, act_layer=nn.ReLU, **kw)
        widths = [base_width * 2**i for i in range(4)]
        stages, info = [], [{"num_chs": base_width, "reduction": 2, "module": "stem"}]
        in_chs, stride, dilation = base_width, 2, 1
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            step = 2 if stride < output_stride else 1
            if step == 1:
                dilation *= 2
            stride *= step
            blocks = [BasicBlock(in_chs, width, step, dilation=dilation, **kw)]
            blocks += [BasicBlock(width, width, dilation=dilation, **kw) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            info.append({"num_chs": width, "reduction": stride, "module": f"stages.{i}"})
            in_chs = width
        self.stages = nn.ModuleList(stages)
        self.feature_info = FeatureInfo(info)
        he_init(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        for stage in self.stages:
            features.append(stage(features[-1]))
        return features
