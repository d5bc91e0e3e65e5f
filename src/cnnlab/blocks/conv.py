"""conv -> norm -> act, the unit every other block is made of."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from cnnlab.blocks.factory import conv_layer

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]


def make_act(act_layer: ActLayer | None, channels: int) -> nn.Module:
    """An activation instance; PReLU learns one slope per channel, so it is told how many."""
    if act_layer is None:
        return nn.Identity()
    if act_layer is nn.PReLU:
        return nn.PReLU(channels)
    return act_layer()


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the size at stride 1 (odd kernels)."""
    return dilation * (kernel_size - 1) // 2


class ConvNormAct(nn.Sequential):
    """Convolution, then normalisation, then activation; any of the last two may be None.

    Children are named conv, bn, act so checkpoints read like torchvision's and timm's.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        spatial_dims: int = 2,
        dilation: int = 1,
        groups: int = 1,
        padding: int | None = None,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer | None = None,
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        conv = conv_layer(spatial_dims)
        pad = same_padding(kernel_size, dilation) if padding is None else padding
        self.conv = conv(
            in_chs,
            out_chs,
            kernel_size,
            stride=stride,
            padding=pad,
            dilation=dilation,
            groups=groups,
            bias=(norm_layer is None) if bias is None else bias,
        )
        self.bn = norm_layer(out_chs) if norm_layer is not None else nn.Identity()
        self.act = make_act(act_layer, out_chs)
