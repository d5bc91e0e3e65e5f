"""Semantic segmentation models in 1D, 2D and 3D: encoder -> decoder -> 1x1 head, behind one contract.

The model contract (training, export and prediction rely on it):
    model(x)                x float [B, C, *S], S = (H, W) or (D, H, W) (U-Net also takes (L,)) ->
                            logits float [B, K, *S] at the input's size, in train and eval mode alike:
                            one tensor, never a dict, no auxiliary heads; traceable and exportable to
                            ONNX (checks read shapes only, never tensor values).
    model.spatial_dims      2 or 3 (1 for a 1D U-Net)
    model.size_divisor      every input side must be a multiple of it (the total downsampling);
                            forward raises ConfigError naming the size and the nearest valid sizes
    model.num_classes       K
    model.in_chans          C
    model.exportable        True
    model.default_input_size  (C, *S) the registry entry advertises

The parts' contract (internal: nothing hands feature lists to the caller):
    encoder(x) -> list of maps, shallow to deep, exactly one per stride;
        encoder.channels, encoder.strides (increasing powers of two), encoder.spatial_dims.
        encoders.FeatureEncoder turns any registry model (features_only) into one.
    decoder(features) -> one map with decoder.out_chs channels at decoder.stride.
    head: a 1x1 conv to K classes; the logits are resized to the input (a no-op at stride 1).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.blocks.factory import conv_layer
from cnnlab.errors import ConfigError

__all__ = ["EncoderDecoder", "SegmentationModel", "he_init"]

INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


def he_init(module: nn.Module) -> None:
    """Gaussian weights with std sqrt(2 / fan_in), as the U-Net paper prescribes for ReLU stacks.

    PyTorch's default conv init is scaled for a leaky slope of sqrt(5) and shrinks activations layer
    by layer; encoders from timm or torchvision keep their own init (or their pretrained weights).
    """
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _side_sizes(sides: tuple[int, ...], divisor: int) -> str:
    lower = "x".join(str(max(divisor, s // divisor * divisor)) for s in sides)
    upper = "x".join(str(-(-s // divisor) * divisor) for s in sides)
    return lower if lower == upper else f"{lower} or {upper}"


class SegmentationModel(nn.Module):
    """Attributes and the input check every segmentation model shares."""

    exportable = True
    spatial_dims: int
    size_divisor: int
    num_classes: int
    in_chans: int
    default_input_size: tuple[int, ...]
    label: str  # names the architecture in error messages: "U-Net with 4 downsamplings"

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse inputs the network cannot map back to their own size, saying what would fit.

        Reads the channel and spatial sizes only: touching the batch size would pin it in an
        export with a dynamic batch. The TorchScript tracer (ONNX's fallback exporter) records
        sizes as tensors, so the check is left out while it traces an example of valid size.
        """
        if torch.jit.is_tracing():
            return
        if x.dim() != self.spatial_dims + 2:
            want = ("[B, C, L]", "[B, C, H, W]", "[B, C, D, H, W]")[self.spatial_dims - 1]
            raise ConfigError(f"{self.label} takes {self.spatial_dims}D inputs {want}, got shape {list(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ConfigError(
                f"input has {x.shape[1]} channels, {self.label} was built for {self.in_chans}; "
                f"build it with in_chans={x.shape[1]}"
            )
        sides = tuple(int(s) for s in x.shape[2:])
        if any(s % self.size_divisor for s in sides):
            raise ConfigError(
                f"input {'x'.join(map(str, sides))}: {self.label} needs sides divisible by {self.size_divisor}, "
                f"e.g. {_side_sizes(sides, self.size_divisor)}; pad or crop"
            )


class EncoderDecoder(SegmentationModel):
    """encoder -> decoder -> 1x1 head -> resize to the input: every segmentation model here is one.

    Args:
        encoder: follows the encoder contract above.
        decoder: follows the decoder contract above; built for this encoder's channels and strides.
        num_classes: K, the head's output channels.
        label: how errors name the architecture.
        default_input_size: (C, *S) without the batch.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        num_classes: int,
        *,
        label: str,
        default_input_size: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.spatial_dims = int(encoder.spatial_dims)
        self.head = conv_layer(self.spatial_dims)(decoder.out_chs, num_classes, 1)
        he_init(self.decoder)
        he_init(self.head)
        self.num_classes = num_classes
        self.in_chans = int(default_input_size[0])
        self.size_divisor = int(max(encoder.strides))
        self.label = label
        self.default_input_size = tuple(default_input_size)
        self._mode = INTERPOLATION[self.spatial_dims]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        logits = self.head(self.decoder(self.encoder(x)))
        if self.decoder.stride == 1:
            return logits
        return nn.functional.interpolate(logits, size=x.shape[2:], mode=self._mode, align_corners=False)
