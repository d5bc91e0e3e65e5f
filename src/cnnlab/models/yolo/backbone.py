"""Backbones of the YOLO-style detector: cnnlab's own CSP network, and an adapter for any registry model.

Contract (what the neck relies on): a backbone is an ``nn.Module`` whose forward returns a list of
three feature maps at strides 8, 16 and 32, shallow to deep, and whose ``feature_info`` declares
their channels (``feature_info.channels()``) and strides (``feature_info.reduction()``), as timm's
``features_only`` models do.

The own backbone follows the recipe the YOLOv4-v8 and YOLOX papers describe for their
CSPDarknet-like bodies: a stride-2 stem, four stages that each halve the resolution with a strided
3x3 conv and then refine with a cross-stage-partial (CSP) block, and a fast spatial-pyramid pooling
(three chained 5x5 max-pools, equivalent to parallel 5/9/13 pools) at the end. One width and one
depth multiplier scale the whole network (compound scaling as in EfficientNet; the YOLO papers size
their n/s/m models this way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from cnnlab.blocks.conv import ConvNormAct
from cnnlab.blocks.mobile import make_divisible
from cnnlab.errors import ConfigError
from cnnlab.models.features import FeatureInfo

FEATURE_STRIDES = (8, 16, 32)
BASE_WIDTHS = (64, 128, 256, 512, 1024)  # stem, then stages at strides 4, 8, 16, 32
BASE_DEPTHS = (3, 6, 6, 3)  # bottlenecks per stage before the depth multiplier

# Detection trains on small batches for many steps: eps 1e-3 and a slow running-stat update
# (momentum 0.03) keep BatchNorm statistics stable, as the YOLOX and YOLOv6 recipes do.
norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)


def conv_bn_act(in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1) -> ConvNormAct:
    """The detector's one conv unit: conv, BatchNorm, SiLU."""
    return ConvNormAct(in_chs, out_chs, kernel_size, stride, norm_layer=norm_layer, act_layer=nn.SiLU)


@dataclass(frozen=True)
class YoloScale:
    """Compound scaling of the detector: channel and block-count multipliers."""

    width: float
    depth: float

    def channels(self, base: int) -> int:
        return make_divisible(base * self.width, 8)

    def blocks(self, base: int) -> int:
        return max(1, round(base * self.depth))


SCALES: dict[str, YoloScale] = {
    "n": YoloScale(width=0.25, depth=0.33),
    "s": YoloScale(width=0.50, depth=0.33),
    "m": YoloScale(width=0.75, depth=0.67),
}


def get_scale(scale: str | YoloScale) -> YoloScale:
    if isinstance(scale, YoloScale):
        return scale
    if scale not in SCALES:
        raise ConfigError(f"unknown YOLO scale {scale!r}; choose one of {', '.join(SCALES)}")
    return SCALES[scale]


class Bottleneck(nn.Module):
    """Two 3x3 convs with an optional residual add (ResNet's basic block in CSP clothing)."""

    def __init__(self, channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(channels, channels, 3)
        self.conv2 = conv_bn_act(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return x + y if self.shortcut else y


class CspBlock(nn.Module):
    """Cross-stage-partial block with split and concat (CSPNet, Wang et al. 2020; ELAN-style outputs).

    A 1x1 conv makes two halves; one half passes untouched, the other runs through ``depth``
    bottlenecks in sequence, and every intermediate output is kept. Concatenating them all feeds the
    final 1x1 conv features of many receptive fields while gradients reach each bottleneck by a short
    path: the property that lets CSP networks stay accurate at a fraction of the compute.
    """

    def __init__(self, in_chs: int, out_chs: int, depth: int = 1, *, shortcut: bool = True) -> None:
        super().__init__()
        self.hidden = out_chs // 2
        self.split = conv_bn_act(in_chs, 2 * self.hidden)
        self.blocks = nn.ModuleList(Bottleneck(self.hidden, shortcut) for _ in range(depth))
        self.fuse = conv_bn_act((2 + depth) * self.hidden, out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = list(self.split(x).chunk(2, dim=1))
        y = outputs[-1]
        for block in self.blocks:
            y = block(y)
            outputs.append(y)
        return self.fuse(torch.cat(outputs, dim=1))


class FastSpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling (He et al. 2014) as chained 5x5 max-pools at stride 1.

    Two chained 5x5 pools see 9x9 and three see 13x13, so the concat matches the parallel 5/9/13
    pools of SPP at lower cost; it widens the receptive field of the deepest level to the whole of a
    small input.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 5) -> None:
        super().__init__()
        hidden = in_chs // 2
        self.reduce = conv_bn_act(in_chs, hidden)
        self.pool = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.fuse = conv_bn_act(4 * hidden, out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [self.reduce(x)]
        for _ in range(3):
            pooled.append(self.pool(pooled[-1]))
        return self.fuse(torch.cat(pooled, dim=1))


class CspBackbone(nn.Module):
    """cnnlab's own CSP backbone: stem (stride 2), four CSP stages (strides 4-32), SPPF on the last."""

    def __init__(self, scale: str | YoloScale = "n", *, in_chans: int = 3) -> None:
        super().__init__()
        scale = get_scale(scale)
        widths = [scale.channels(c) for c in BASE_WIDTHS]
        depths = [scale.blocks(d) for d in BASE_DEPTHS]
        self.stem = conv_bn_act(in_chans, widths[0], 3, stride=2)
        stages = []
        for i, depth in enumerate(depths):
            layers: list[nn.Module] = [conv_bn_act(widths[i], widths[i + 1], 3, stride=2)]
            layers.append(CspBlock(widths[i + 1], widths[i + 1], depth, shortcut=True))
            if i == len(depths) - 1:
                layers.append(FastSpatialPyramidPool(widths[i + 1], widths[i + 1]))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        # stages 1, 2, 3 end at strides 8, 16, 32
        self.out_stages = (1, 2, 3)
        self.feature_info = FeatureInfo(
            [{"num_chs": widths[i + 1], "reduction": 2 ** (i + 2), "module": f"stages.{i}"} for i in self.out_stages]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_stages:
                features.append(x)
        return features


class RegistryBackbone(nn.Module):
    """Any registry model with ``features_only`` as a detector backbone: keeps its stride-8/16/32 maps.

    When a model has several maps at one stride (a stem and a first stage both at stride 2, say),
    the deepest is taken: it has seen the most layers.
    """

    def __init__(
        self,
        name: str,
        *,
        in_chans: int = 3,
        pretrained: bool | str = False,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        from cnnlab.registry import create_model

        self.name = name
        self.body = create_model(
            name,
            in_chans=in_chans,
            pretrained=pretrained,
            features_only=True,
            out_indices=tuple(out_indices) if out_indices is not None else None,
        )
        reductions = list(self.body.feature_info.reduction())
        channels = list(self.body.feature_info.channels())
        self.picks: list[int] = []
        for stride in FEATURE_STRIDES:
            found = [i for i, r in enumerate(reductions) if r == stride]
            if not found:
                raise ConfigError(
                    f"backbone {name!r} gives feature maps at strides {reductions}, but the detector needs "
                    f"{', '.join(map(str, FEATURE_STRIDES))}; choose a backbone that downsamples 32x "
                    "(resnet18, mobilenetv2_100, efficientnet_b0, ...) or pass out_indices that include them"
                )
            self.picks.append(found[-1])
        names = list(self.body.feature_info.module_name())
        self.feature_info = FeatureInfo(
            [{"num_chs": channels[i], "reduction": reductions[i], "module": f"body.{names[i]}"} for i in self.picks]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(x)
        return [features[i] for i in self.picks]
