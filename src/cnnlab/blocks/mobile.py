"""Mobile blocks: inverted residual (MBConv), fused-MBConv, depthwise-separable convolution.

Child order matches torchvision's (expand, depthwise, squeeze-excite, project), so their
ImageNet checkpoints load into spec-built MobileNetV2 / EfficientNet in order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnnlab.blocks.attention import SqueezeExcite
from cnnlab.blocks.conv import ActLayer, ConvNormAct, NormLayer
from cnnlab.blocks.drop import DropPath
from cnnlab.blocks.factory import get_norm_layer


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor`` (SIMD-friendly), never more than 10% below ``value``."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class _Skip(nn.Module):
    """Residual add when shapes allow it (stride 1, same channels), with drop-path."""

    use_skip: bool

    def _residual(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(out) + x if self.use_skip else out


class InvertedResidual(_Skip):
    """1x1 expand -> kxk depthwise -> (SE) -> 1x1 project (linear bottleneck), Sandler et al. 2018."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        expand_ratio: float = 6.0,
        kernel_size: int = 3,
        dilation: int = 1,
        se_ratio: float = 0.0,
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU6,
        se_gate: Callable[[], nn.Module] = nn.Sigmoid,
        drop_path_rate: float = 0.0,
        skip: bool = True,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        mid = int(round(in_chs * expand_ratio))
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        layers: list[nn.Module] = []
        if mid != in_chs:
            layers.append(
                ConvNormAct(in_chs, mid, 1, spatial_dims=spatial_dims, norm_layer=norm_layer, act_layer=act_layer)
            )
        layers.append(
            ConvNormAct(
                mid,
                mid,
                kernel_size,
                stride,
                spatial_dims=spatial_dims,
                dilation=dilation,
                groups=mid,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
        )
        if se_ratio > 0:  # EfficientNet: squeeze width from the block *input* channels
            layers.append(
                SqueezeExcite(
                    mid,
                    max(1, int(in_chs * se_ratio)),
                    spatial_dims=spatial_dims,
                    act_layer=act_layer,
                    gate_layer=se_gate,
                )
            )
        layers.append(ConvNormAct(mid, out_chs, 1, spatial_dims=spatial_dims, norm_layer=norm_layer))
        self.block = nn.Sequential(*layers)
        self.use_skip = skip and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._residual(self.block(x), x)


class FusedMBConv(_Skip):
    """kxk expand conv (strided) -> (SE) -> 1x1 project; expand ratio 1 is a single kxk conv (EfficientNetV2)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        expand_ratio: float = 4.0,
        kernel_size: int = 3,
        se_ratio: float = 0.0,
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.SiLU,
        drop_path_rate: float = 0.0,
        skip: bool = True,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        mid = int(round(in_chs * expand_ratio))
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        layers: list[nn.Module] = []
        if mid != in_chs:
            layers.append(
                ConvNormAct(
                    in_chs,
                    mid,
                    kernel_size,
                    stride,
                    spatial_dims=spatial_dims,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
            )
            if se_ratio > 0:
                layers.append(
                    SqueezeExcite(mid, max(1, int(in_chs * se_ratio)), spatial_dims=spatial_dims, act_layer=act_layer)
                )
            layers.append(ConvNormAct(mid, out_chs, 1, spatial_dims=spatial_dims, norm_layer=norm_layer))
        else:
            layers.append(
                ConvNormAct(
                    in_chs,
                    out_chs,
                    kernel_size,
                    stride,
                    spatial_dims=spatial_dims,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
            )
        self.block = nn.Sequential(*layers)
        self.use_skip = skip and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._residual(self.block(x), x)


class DepthwiseSeparable(_Skip):
    """kxk depthwise conv -> (attention) -> 1x1 pointwise conv (MobileNetV1, Xception)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        kernel_size: int = 3,
        dilation: int = 1,
        spatial_dims: int = 2,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
        attn_layer: Callable[[int], nn.Module] | None = None,
        pw_act: bool = True,
        drop_path_rate: float = 0.0,
        skip: bool = False,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.conv_dw = ConvNormAct(
            in_chs,
            in_chs,
            kernel_size,
            stride,
            spatial_dims=spatial_dims,
            dilation=dilation,
            groups=in_chs,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        self.attn = attn_layer(in_chs) if attn_layer else nn.Identity()
        self.conv_pw = ConvNormAct(
            in_chs,
            out_chs,
            1,
            spatial_dims=spatial_dims,
            norm_layer=norm_layer,
            act_layer=act_layer if pw_act else None,
        )
        self.use_skip = skip and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._residual(self.conv_pw(self.attn(self.conv_dw(x))), x)
