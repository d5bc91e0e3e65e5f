"""U-Net (Ronneberger et al. 2015) for 1D, 2D and 3D inputs; in 3D it is the 3D U-Net of Çiçek et al. 2016.

Contracting path: per level two 3x3 conv-BN-ReLU, then a 2x2 max-pool; the width doubles per level.
Expanding path (``decoders.UNetDecoder``): a 2x2 transposed conv halving the width, concatenation
with the contracting path's map of the same size, two 3x3 conv-BN-ReLU. A 1x1 conv gives the logits.

Departures from the 2015 paper, both now standard: the convs are padded, so the output has the
input's size (the paper's unpadded convs shrink a 572 px tile to 388 px and need overlap-tiling);
and every conv is followed by BatchNorm, which the 3D U-Net paper added for faster convergence.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.blocks.factory import get_norm_layer, get_pool_layer
from cnnlab.errors import ConfigError
from cnnlab.models.segment import EncoderDecoder, he_init
from cnnlab.models.segment.decoders import UNetDecoder, double_conv

DEFAULT_SIDES = {1: (1024,), 2: (128, 128), 3: (64, 64, 64)}


class UNetEncoder(nn.Module):
    """U-Net's contracting path; returns each level's map (strides 1, 2, ..., 2**depth).

    Args:
        in_chans: input channels.
        base_width: channels of the first level (64 in the paper); doubled at each of ``depth`` levels.
        depth: number of 2x downsamplings (4 in the paper).
        spatial_dims: 1, 2 or 3.
        norm: normalisation after each conv.
    """

    def __init__(
        self, in_chans: int, *, base_width: int = 64, depth: int = 4, spatial_dims: int = 2, norm: str = "batch"
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm, spatial_dims)
        widths = [base_width * 2**i for i in range(depth + 1)]
        ins = [in_chans, *widths[:-1]]
        self.levels = nn.ModuleList(
            double_conv(i, w, spatial_dims, norm_layer) for i, w in zip(ins, widths, strict=True)
        )
        self.pool = get_pool_layer("max", spatial_dims)(2)
        self.channels = tuple(widths)
        self.strides = tuple(2**i for i in range(depth + 1))
        self.spatial_dims = spatial_dims
        he_init(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.levels[0](x)]
        for level in self.levels[1:]:
            features.append(level(self.pool(features[-1])))
        return features


def build_unet(
    *, num_classes: int, in_chans: int, base_width: int = 64, depth: int = 4, spatial_dims: int = 2, norm: str = "batch"
) -> EncoderDecoder:
    """The U-Net of the paper (base_width 64, depth 4) or a narrower, shallower or 1D/3D one."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"U-Net depth (number of downsamplings) must be a positive integer, got {depth!r}")
    if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
        raise ConfigError(f"U-Net base_width must be a positive integer, got {base_width!r}")
    if spatial_dims not in DEFAULT_SIDES:
        raise ConfigError(f"spatial_dims must be 1, 2 or 3, not {spatial_dims!r}")
    encoder = UNetEncoder(in_chans, base_width=base_width, depth=depth, spatial_dims=spatial_dims, norm=norm)
    decoder = UNetDecoder(encoder.channels, encoder.strides, width=base_width, spatial_dims=spatial_dims, norm=norm)
    name = "3D U-Net" if spatial_dims == 3 else "U-Net"
    return EncoderDecoder(
        encoder,
        decoder,
        num_classes,
        label=f"{name} with {depth} downsamplings",
        default_input_size=(in_chans, *DEFAULT_SIDES[spatial_dims]),
    )
