"""Decoders: from an encoder's maps (channels, strides) to one map the 1x1 head classifies.

    UNetDecoder           U-Net's expanding path (Ronneberger et al. 2015): out at stride 1
    FPNDecoder            Panoptic FPN's semantic branch (Kirillov et al. 2019): out at stride 4
    DeepLabV3PlusDecoder  ASPP on the deepest map fused with stride-4 detail (Chen et al. 2018): stride 4

Each takes the encoder's ``channels`` and ``strides`` and declares ``out_chs`` and ``stride``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.blocks.conv import ConvNormAct, NormLayer
from cnnlab.blocks.factory import get_norm_layer
from cnnlab.blocks.multibranch import ASPP
from cnnlab.errors import ConfigError
from cnnlab.models.segment import INTERPOLATION

_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def double_conv(in_chs: int, out_chs: int, spatial_dims: int, norm_layer: NormLayer) -> nn.Sequential:
    """U-Net's unit: two 3x3 conv-norm-ReLU (padded, so sizes are kept)."""
    kw = dict(spatial_dims=spatial_dims, norm_layer=norm_layer, act_layer=nn.ReLU)
    return nn.Sequential(ConvNormAct(in_chs, out_chs, 3, **kw), ConvNormAct(out_chs, out_chs, 3, **kw))


def _level_of(strides: Sequence[int], stride: int, decoder: str) -> int:
    if stride not in strides:
        raise ConfigError(
            f"{decoder} needs an encoder map at stride {stride}; this encoder gives strides {list(strides)}; "
            "choose an encoder with a stride-4 stage (resnet18, mobilenetv2_100, ...)"
        )
    return list(strides).index(stride)


class UpBlock(nn.Module):
    """2x transposed conv (the paper's "up-convolution", halving channels), concatenation with the
    encoder map of the same stride when there is one, then two 3x3 conv-norm-ReLU."""

    def __init__(self, in_chs: int, skip_chs: int, out_chs: int, spatial_dims: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.up = _TRANSPOSED[spatial_dims - 1](in_chs, out_chs, 2, stride=2)
        self.convs = double_conv(out_chs + skip_chs, out_chs, spatial_dims, norm_layer)
        self.has_skip = skip_chs > 0

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        if self.has_skip:
            x = torch.cat([skip, x], dim=1)
        return self.convs(x)


class UNetDecoder(nn.Module):
    """U-Net's expanding path over any encoder, from its deepest stride down to stride 1.

    One ``UpBlock`` per halving of the stride; an encoder map at that stride is concatenated where
    the encoder has one (a ResNet has none at stride 1, spec_resnet18 none at 2). Widths halve on the
    way up and end at ``width``: the original U-Net at base 64 is widths 512, 256, 128, 64.

    Args:
        channels: the encoder's channels, shallow to deep.
        strides: the encoder's strides, shallow to deep.
        width: channels of the last (stride-1) level.
        spatial_dims: 1, 2 or 3.
        norm: normalisation after each conv (``batch``, ``group``, ``instance``, ...).
    """

    def __init__(
        self, channels: Sequence[int], strides: Sequence[int], *, width: int, spatial_dims: int, norm: str = "batch"
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm, spatial_dims)
        levels = int(math.log2(strides[-1]))
        skips = dict(zip(strides, channels, strict=True))
        self.skip_index = []
        blocks, in_chs = [], channels[-1]
        for level in range(levels):
            stride = strides[-1] // 2 ** (level + 1)
            out_chs = width * 2 ** (levels - 1 - level)
            blocks.append(UpBlock(in_chs, skips.get(stride, 0), out_chs, spatial_dims, norm_layer))
            self.skip_index.append(list(strides).index(stride) if stride in skips else -1)
            in_chs = out_chs
        self.blocks = nn.ModuleList(blocks)
        self.out_chs, self.stride = in_chs, 1

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for block, index in zip(self.blocks, self.skip_index, strict=True):
            x = block(x, features[index] if index >= 0 else None)
        return x


class FPNDecoder(nn.Module):
    """The semantic branch of Panoptic FPN over an encoder's stride 4-32 maps.

    FPN (Lin et al. 2017): a 1x1 lateral conv per level, a top-down sum with 2x nearest upsampling,
    and a 3x3 conv on each sum. Semantic branch (Kirillov et al. 2019): each level is brought to
    stride 4 by repeated [3x3 conv, GroupNorm, ReLU, 2x bilinear upsample] (one conv and no upsample
    at stride 4), and the levels are summed.

    Args:
        channels: the encoder's channels, shallow to deep.
        strides: the encoder's strides; one must be 4.
        spatial_dims: 2 or 3.
        pyramid_chs: FPN's width (256 in both papers).
        segment_chs: the semantic branch's width (128 in the paper).
        norm: the branch's normalisation (GroupNorm in the paper: it is batch-size independent).
    """

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        *,
        spatial_dims: int,
        pyramid_chs: int = 256,
        segment_chs: int = 128,
        norm: str = "group",
    ) -> None:
        super().__init__()
        first = _level_of(strides, 4, "the FPN decoder")
        self.first = first
        kw = dict(spatial_dims=spatial_dims)
        self.lateral = nn.ModuleList(ConvNormAct(c, pyramid_chs, 1, **kw) for c in channels[first:])
        self.smooth = nn.ModuleList(ConvNormAct(pyramid_chs, pyramid_chs, 3, **kw) for _ in self.lateral)
        norm_layer, mode = get_norm_layer(norm, spatial_dims), INTERPOLATION[spatial_dims]
        branches = []
        for stride in strides[first:]:
            ups = int(math.log2(stride // 4))
            layers: list[nn.Module] = []
            for k in range(max(1, ups)):
                in_chs = pyramid_chs if k == 0 else segment_chs
                layers.append(ConvNormAct(in_chs, segment_chs, 3, norm_layer=norm_layer, act_layer=nn.ReLU, **kw))
                if ups:
                    layers.append(nn.Upsample(scale_factor=2, mode=mode, align_corners=False))
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.out_chs, self.stride = segment_chs, 4

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        maps = features[self.first :]
        top = self.lateral[-1](maps[-1])
        pyramid = [top]
        for lateral, x in zip(reversed(self.lateral[:-1]), reversed(maps[:-1]), strict=True):
            top = lateral(x) + nn.functional.interpolate(top, size=x.shape[2:], mode="nearest")
            pyramid.insert(0, top)
        out = self.branches[0](self.smooth[0](pyramid[0]))
        for branch, smooth, p in zip(self.branches[1:], self.smooth[1:], pyramid[1:], strict=True):
            out = out + branch(smooth(p))
        return out


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+: ASPP on the deepest map, upsampled to stride 4 and fused with the stride-4 map.

    The low-level map is first projected to few channels (48 against ASPP's 256 in the paper) so it
    refines boundaries without outweighing the semantic features; two 3x3 conv-BN-ReLU fuse them.

    Args:
        channels: the encoder's channels, shallow to deep.
        strides: the encoder's strides; one must be 4.
        spatial_dims: 2 or 3.
        rates: ASPP's dilation rates (6, 12, 18 at output stride 16; doubled at 8).
        width: ASPP's and the fusion convs' channels (256 in the paper).
        low_level_chs: the low-level projection's channels (48 in the paper).
    """

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        *,
        spatial_dims: int,
        rates: Sequence[int] = (6, 12, 18),
        width: int = 256,
        low_level_chs: int = 48,
    ) -> None:
        super().__init__()
        self.low_index = _level_of(strides, 4, "the DeepLabV3+ decoder")
        if strides[-1] <= 4:
            raise ConfigError(f"the DeepLabV3+ decoder needs an encoder deeper than stride 4, got {list(strides)}")
        norm_layer = get_norm_layer("batch", spatial_dims)
        kw = dict(spatial_dims=spatial_dims, norm_layer=norm_layer, act_layer=nn.ReLU)
        self.aspp = ASPP(channels[-1], width, rates=tuple(rates), spatial_dims=spatial_dims, norm_layer=norm_layer)
        self.low_level = ConvNormAct(channels[self.low_index], low_level_chs, 1, **kw)
        self.fuse = nn.Sequential(
            ConvNormAct(width + low_level_chs, width, 3, **kw), ConvNormAct(width, width, 3, **kw)
        )
        self._mode = INTERPOLATION[spatial_dims]
        self.out_chs, self.stride = width, 4

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        low = self.low_level(features[self.low_index])
        context = self.aspp(features[-1])
        context = nn.functional.interpolate(context, size=low.shape[2:], mode=self._mode, align_corners=False)
        return self.fuse(torch.cat([context, low], dim=1))
