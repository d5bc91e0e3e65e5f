"""Multi-branch and densely connected blocks: Inception module, ASPP, dense block and transition."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.blocks.conv import ActLayer, ConvNormAct, NormLayer
from cnnlab.blocks.factory import conv_layer, get_norm_layer, get_pool_layer


class Inception(nn.Module):
    """Four parallel branches concatenated (Szegedy et al. 2014):
    1x1 | 1x1 -> 3x3 | 1x1 -> kxk | 3x3 max-pool -> 1x1.

    ``branches`` = [c1, [r3, c3], [r5, c5], pool_proj]; ``second_kernel`` is the kernel of the third
    branch (5 in the paper; torchvision's GoogLeNet uses 3).
    """

    def __init__(
        self,
        in_chs: int,
        branches: Sequence[int | Sequence[int]],
        *,
        second_kernel: int = 5,
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        c1, (r3, c3), (r5, c5), cp = branches
        kw = dict(spatial_dims=spatial_dims, norm_layer=norm_layer, act_layer=act_layer)
        self.in_chs, self.out_chs, self.stride = in_chs, c1 + c3 + c5 + cp, 1
        self.branch1 = ConvNormAct(in_chs, c1, 1, **kw)
        self.branch2 = nn.Sequential(ConvNormAct(in_chs, r3, 1, **kw), ConvNormAct(r3, c3, 3, **kw))
        self.branch3 = nn.Sequential(ConvNormAct(in_chs, r5, 1, **kw), ConvNormAct(r5, c5, second_kernel, **kw))
        self.branch4 = nn.Sequential(
            get_pool_layer("max", spatial_dims)(3, stride=1, padding=1, ceil_mode=True),
            ConvNormAct(in_chs, cp, 1, **kw),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabV3): a 1x1 branch, dilated 3x3 branches at ``rates``,
    and image-level pooling, concatenated and projected to ``out_chs``."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int = 256,
        *,
        rates: Sequence[int] = (6, 12, 18),
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        kw = dict(spatial_dims=spatial_dims, norm_layer=norm_layer, act_layer=act_layer)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, 1
        self.branches = nn.ModuleList([ConvNormAct(in_chs, out_chs, 1, **kw)])
        self.branches.extend(ConvNormAct(in_chs, out_chs, 3, dilation=r, **kw) for r in rates)
        self.pooling = nn.Sequential(
            get_pool_layer("adaptive_avg", spatial_dims)(1), ConvNormAct(in_chs, out_chs, 1, **kw)
        )
        self.project = nn.Sequential(ConvNormAct(out_chs * (len(rates) + 2), out_chs, 1, **kw), nn.Dropout(dropout))
        self._mode = ("linear", "bilinear", "trilinear")[spatial_dims - 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.pooling(x)
        outs.append(nn.functional.interpolate(pooled, size=x.shape[2:], mode=self._mode, align_corners=False))
        return self.project(torch.cat(outs, dim=1))


class DenseLayer(nn.Module):
    """BN -> act -> 1x1 conv (bn_size * growth) -> BN -> act -> 3x3 conv (growth); pre-activation."""

    def __init__(
        self,
        in_chs: int,
        growth: int,
        bn_size: int,
        spatial_dims: int,
        norm_layer: NormLayer,
        act_layer: ActLayer,
        drop_rate: float,
    ) -> None:
        super().__init__()
        conv = conv_layer(spatial_dims)
        self.norm1, self.act1 = norm_layer(in_chs), act_layer()
        self.conv1 = conv(in_chs, bn_size * growth, 1, bias=False)
        self.norm2, self.act2 = norm_layer(bn_size * growth), act_layer()
        self.conv2 = conv(bn_size * growth, growth, 3, padding=1, bias=False)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.conv2(self.act2(self.norm2(self.conv1(self.act1(self.norm1(x)))))))


class DenseBlock(nn.Module):
    """``layers`` dense layers, each seeing the concatenation of all before it (Huang et al. 2016)."""

    def __init__(
        self,
        in_chs: int,
        layers: int,
        growth: int = 32,
        *,
        bn_size: int = 4,
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        self.in_chs, self.out_chs, self.stride = in_chs, in_chs + layers * growth, 1
        self.layers = nn.ModuleList(
            DenseLayer(in_chs + i * growth, growth, bn_size, spatial_dims, norm_layer, act_layer, drop_rate)
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Module):
    """BN -> act -> 1x1 conv -> 2x2 average pool: halves resolution (and usually channels) between dense blocks."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, 2
        self.norm, self.act = norm_layer(in_chs), act_layer()
        self.conv = conv_layer(spatial_dims)(in_chs, out_chs, 1, bias=False)
        self.pool = get_pool_layer("avg", spatial_dims)(2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.act(self.norm(x))))


class Pool(nn.Module):
    """A pooling layer as a block (VGG, AlexNet and stems pool between convolutions)."""

    def __init__(
        self,
        in_chs: int,
        *,
        kind: str = "max",
        kernel_size: int = 2,
        stride: int | None = None,
        padding: int = 0,
        ceil_mode: bool = False,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.stride = in_chs, in_chs, stride or kernel_size
        self.pool = get_pool_layer(kind, spatial_dims)(
            kernel_size, stride=self.stride, padding=padding, ceil_mode=ceil_mode
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)
