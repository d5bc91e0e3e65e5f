"""Channel and spatial attention for 1D, 2D and 3D feature maps.

    SqueezeExcite  global pool -> 1x1 conv (reduce) -> act -> 1x1 conv -> gate, scales channels
                   (Hu et al. 2017)
    CBAM           channel attention from avg- and max-pooled descriptors, then spatial attention
                   from channel-wise avg and max maps (Woo et al. 2018)
    ECA            a 1D convolution across channels instead of an MLP (Wang et al. 2020)

Blocks take an attention *type* ``attn_layer(channels) -> nn.Module``; ``get_attn_layer`` turns a
spec's name and options into one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from cnnlab.blocks.factory import conv_layer, get_act_layer
from cnnlab.errors import ConfigError


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def _spatial_max(x: torch.Tensor) -> torch.Tensor:
    return x.amax(dim=tuple(range(2, x.dim())), keepdim=True)


class SqueezeExcite(nn.Module):
    def __init__(
        self,
        channels: int,
        rd_channels: int | None = None,
        *,
        rd_ratio: float = 1 / 16,
        spatial_dims: int = 2,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        gate_layer: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        rd = rd_channels or max(1, int(round(channels * rd_ratio)))
        conv = conv_layer(spatial_dims)
        self.fc1 = conv(channels, rd, 1, bias=True)
        self.act = act_layer()
        self.fc2 = conv(rd, channels, 1, bias=True)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(_spatial_mean(x)))))


class CBAM(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 1 / 16,
        spatial_kernel: int = 7,
        spatial_dims: int = 2,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        conv = conv_layer(spatial_dims)
        rd = max(1, int(round(channels * rd_ratio)))
        self.fc1 = conv(channels, rd, 1, bias=False)
        self.act = act_layer()
        self.fc2 = conv(rd, channels, 1, bias=False)
        self.spatial = conv(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.fc2(self.act(self.fc1(_spatial_mean(x)))) + self.fc2(self.act(self.fc1(_spatial_max(x))))
        x = x * torch.sigmoid(channel)
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))


class ECA(nn.Module):
    def __init__(
        self, channels: int, *, kernel_size: int | None = None, gamma: int = 2, beta: int = 1, spatial_dims: int = 2
    ) -> None:
        super().__init__()
        if kernel_size is None:  # the paper's adaptive kernel: grows with log2(channels), always odd
            t = int(abs(math.log2(channels) / gamma + beta / gamma))
            kernel_size = max(t if t % 2 else t + 1, 3)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _spatial_mean(x).flatten(1)[:, None, :]  # (N, 1, C): convolve across channels
        y = torch.sigmoid(self.conv(y)).view(x.shape[0], x.shape[1], *([1] * (x.dim() - 2)))
        return x * y


ATTENTION = ("se", "cbam", "eca")


def get_attn_layer(name: str | None, spatial_dims: int = 2, **options: object) -> Callable[[int], nn.Module] | None:
    """An attention type ``f(channels)`` from a name (``se``, ``cbam``, ``eca``) and its options."""
    if name in (None, "", "none"):
        return None
    options = dict(options)
    if "act" in options:
        options["act_layer"] = get_act_layer(options.pop("act"))
    if "gate" in options:
        options["gate_layer"] = get_act_layer(options.pop("gate"))
    table = {"se": SqueezeExcite, "cbam": CBAM, "eca": ECA}
    if name not in table:
        raise ConfigError(f"unknown attention {name!r}; choose one of {', '.join(ATTENTION)}")
    return partial(table[name], spatial_dims=spatial_dims, **options)
