"""Residual blocks: basic (two 3x3) and bottleneck (1x1 -> 3x3 -> 1x1), for 1D, 2D and 3D.

Shortcut kinds (He et al. 2015):
    "A"  identity, subsampled by the stride and zero-padded to the new width (no parameters)
    "B"  a 1x1 projection (conv + norm) where the shape changes, identity elsewhere
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnnlab.blocks.conv import ActLayer, ConvNormAct, NormLayer, make_act
from cnnlab.blocks.drop import DropPath
from cnnlab.blocks.factory import get_norm_layer
from cnnlab.errors import ConfigError

AttnLayer = Callable[[int], nn.Module]


class PadShortcut(nn.Module):
    """Option A: subsample spatially by ``stride`` and zero-pad the channels."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ConfigError(f"shortcut 'A' cannot reduce channels ({in_chs} -> {out_chs}); use shortcut 'B'")
        self.pad, self.stride = out_chs - in_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            index = (slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)
            x = x[index]
        if self.pad:
            front = self.pad // 2
            x = nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (front, self.pad - front))
        return x


def make_shortcut(
    in_chs: int, out_chs: int, stride: int, kind: str, spatial_dims: int, norm_layer: NormLayer | None
) -> nn.Module:
    if in_chs == out_chs and stride == 1:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_chs, out_chs, stride)
    if kind == "B":
        return ConvNormAct(in_chs, out_chs, 1, stride, spatial_dims=spatial_dims, norm_layer=norm_layer)
    raise ConfigError(f"unknown shortcut {kind!r}; choose 'A' (zero-pad) or 'B' (projection)")


class _Residual(nn.Module):
    """Shared tail: attention on the branch, drop-path, add the shortcut, activate."""

    out_chs: int
    stride: int

    def _finish(self, branch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        branch = self.drop_path(self.attn(branch))
        return self.act(branch + self.shortcut(x))


class BasicBlock(_Residual):
    expansion = 1

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        spatial_dims: int = 2,
        dilation: int = 1,
        shortcut: str = "B",
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
        attn_layer: AttnLayer | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.conv1 = ConvNormAct(
            in_chs,
            out_chs,
            3,
            stride,
            spatial_dims=spatial_dims,
            dilation=dilation,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        self.conv2 = ConvNormAct(
            out_chs, out_chs, 3, spatial_dims=spatial_dims, dilation=dilation, norm_layer=norm_layer
        )
        self.attn = attn_layer(out_chs) if attn_layer else nn.Identity()
        self.shortcut = make_shortcut(in_chs, out_chs, stride, shortcut, spatial_dims, norm_layer)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.act = make_act(act_layer, out_chs)

    def zero_init_last(self) -> None:
        """Start the block as the identity: a known aid to training deep residual nets."""
        nn.init.zeros_(self.conv2.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._finish(self.conv2(self.conv1(x)), x)


class Bottleneck(_Residual):
    """1x1 reduce -> 3x3 (strided, grouped) -> 1x1 expand; ``mid_chs`` defaults to out_chs / 4."""

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        mid_chs: int | None = None,
        groups: int = 1,
        spatial_dims: int = 2,
        dilation: int = 1,
        shortcut: str = "B",
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU,
        attn_layer: AttnLayer | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("batch", spatial_dims)
        mid = mid_chs or out_chs // self.expansion
        if mid % groups:
            raise ConfigError(f"bottleneck width {mid} is not divisible by groups={groups}")
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.conv1 = ConvNormAct(in_chs, mid, 1, spatial_dims=spatial_dims, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(
            mid,
            mid,
            3,
            stride,
            spatial_dims=spatial_dims,
            dilation=dilation,
            groups=groups,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        self.conv3 = ConvNormAct(mid, out_chs, 1, spatial_dims=spatial_dims, norm_layer=norm_layer)
        self.attn = attn_layer(out_chs) if attn_layer else nn.Identity()
        self.shortcut = make_shortcut(in_chs, out_chs, stride, shortcut, spatial_dims, norm_layer)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.act = make_act(act_layer, out_chs)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._finish(self.conv3(self.conv2(self.conv1(x))), x)
