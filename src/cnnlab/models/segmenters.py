"""cnnlab's segmentation models in the registry: U-Net (1D/2D/3D, and over any encoder), DeepLabV3+
and Panoptic FPN's semantic head.

`cnnlab models list --task segment` shows them. Each follows the contract stated in
``cnnlab.models.segment``: ``model(x)`` gives logits at the input's size. ``encoder=NAME`` puts any
registry model or design spec under a decoder; ``pretrained_encoder=True`` loads its ImageNet
weights (the packaged offline set for MobileNetV2). Heavy modules are imported when a model is built.
"""

from __future__ import annotations

from typing import Any

from cnnlab.registry import register_model
from cnnlab.registry.entry import IMAGENET_MEAN, IMAGENET_STD

_RGB = dict(input_size=(3, 256, 256), num_classes=21, mean=IMAGENET_MEAN, std=IMAGENET_STD)  # VOC: 20 + background
_VOLUME = dict(input_size=(1, 64, 64, 64), num_classes=2, spatial_dims=(3,))
_SIDES = {1: (1024,), 2: (256, 256), 3: (64, 64, 64)}  # default sides by spatial_dims
_UNET3D_PAPER = dict(paper="3D U-Net: Learning Dense Volumetric Segmentation from Sparse Annotation", year=2016)


def unet_over(encoder: Any, num_classes: int, in_chans: int, decoder_width: int) -> Any:
    """U-Net's expanding path over an encoder (the contract in ``cnnlab.models.segment``)."""
    from cnnlab.models.segment.decoders import UNetDecoder

    decoder = UNetDecoder(encoder.channels, encoder.strides, width=decoder_width, spatial_dims=encoder.spatial_dims)
    return _assemble(encoder, decoder, num_classes, in_chans, "U-Net over {name} (downsamples {stride}x)")


def _assemble(encoder: Any, decoder: Any, num_classes: int, in_chans: int, label: str) -> Any:
    """encoder -> decoder -> 1x1 head; ``label`` names it in errors ({name}: the encoder's, {stride}: its depth)."""
    from cnnlab.models.segment import EncoderDecoder

    size = (in_chans, *_SIDES[encoder.spatial_dims])
    label = label.format(name=encoder.name, stride=encoder.strides[-1])
    return EncoderDecoder(encoder, decoder, num_classes, label=label, default_input_size=size)


def _unet(encoder: str, num_classes: int, in_chans: int, decoder_width: int, pretrained: bool) -> Any:
    from cnnlab.models.segment.encoders import registry_encoder

    body = registry_encoder(encoder, in_chans=in_chans, pretrained=pretrained)
    return unet_over(body, num_classes, in_chans, decoder_width)


def deeplab_over(
    encoder: Any, num_classes: int, in_chans: int, rates: tuple[int, ...], *, width: int = 256, low_level_chs: int = 48
) -> Any:
    """DeepLabV3+'s ASPP and stride-4 fusion over an encoder with a stride-4 map."""
    from cnnlab.models.segment.decoders import DeepLabV3PlusDecoder

    decoder = DeepLabV3PlusDecoder(
        encoder.channels,
        encoder.strides,
        spatial_dims=encoder.spatial_dims,
        rates=rates,
        width=width,
        low_level_chs=low_level_chs,
    )
    return _assemble(encoder, decoder, num_classes, in_chans, "DeepLabV3+ over {name} at output stride {stride}")


def _deeplab_registry(encoder: str, num_classes: int, in_chans: int, output_stride: int, pretrained: bool) -> Any:
    from cnnlab.models.segment.encoders import registry_encoder

    body = registry_encoder(encoder, in_chans=in_chans, pretrained=pretrained, output_stride=output_stride)
    # The paper's rates at output stride 16; at 8 the map is twice as large, so the rates double.
    rates = tuple(r * 16 // output_stride for r in (6, 12, 18))
    return deeplab_over(body, num_classes, in_chans, rates)


def fpn_over(encoder: Any, num_classes: int, in_chans: int, *, segment_chs: int = 128, pyramid_chs: int = 256) -> Any:
    """Panoptic FPN's semantic branch over an encoder with stride 4-32 maps."""
    from cnnlab.models.segment.decoders import FPNDecoder

    decoder = FPNDecoder(
        encoder.channels,
        encoder.strides,
        spatial_dims=encoder.spatial_dims,
        pyramid_chs=pyramid_chs,
        segment_chs=segment_chs,
    )
    return _assemble(encoder, decoder, num_classes, in_chans, "FPN over {name} (downsamples {stride}x)")


def _fpn(encoder: str, num_classes: int, in_chans: int, pretrained: bool) -> Any:
    from cnnlab.models.segment.encoders import registry_encoder

    return fpn_over(registry_encoder(encoder, in_chans=in_chans, pretrained=pretrained), num_classes, in_chans)


# --- U-Net: the original, in 1D, 2D and 3D -------------------------------------------------------


@register_model(family="unet", task="segment", input_size=(3, 128, 128), num_classes=2, spatial_dims=(1, 2, 3))
def unet(
    *, num_classes: int = 2, in_chans: int = 3, base_width: int = 32, depth: int = 4, spatial_dims: int = 2
) -> Any:
    """U-Net (2015): two 3x3 conv-BN-ReLU per level, max-pool down, transposed-conv up, skip concat.

    base_width 32 by default (CPU-friendly); the paper's is 64. spatial_dims 1, 2 or 3.
    """
    from cnnlab.models.segment.unet import build_unet

    return build_unet(
        num_classes=num_classes, in_chans=in_chans, base_width=base_width, depth=depth, spatial_dims=spatial_dims
    )


@register_model(family="unet", task="segment", **_VOLUME, **_UNET3D_PAPER)
def unet3d(*, num_classes: int = 2, in_chans: int = 1, base_width: int = 16, depth: int = 4) -> Any:
    """3D U-Net (Çiçek et al. 2016) for volumes: U-Net with 3x3x3 convs, 2x2x2 pools and up-convs."""
    from cnnlab.models.segment.unet import build_unet

    return build_unet(num_classes=num_classes, in_chans=in_chans, base_width=base_width, depth=depth, spatial_dims=3)


# --- U-Net's decoder over a registry encoder --------------------------------------------------------


@register_model(family="unet", task="segment", **_RGB)
def unet_resnet18(
    *,
    num_classes: int = 21,
    in_chans: int = 3,
    encoder: str = "resnet18",
    decoder_width: int = 16,
    pretrained_encoder: bool = False,
) -> Any:
    """U-Net decoder (transposed-conv up, skip concat, two 3x3 convs) over a ResNet-18 or any registry encoder."""
    return _unet(encoder, num_classes, in_chans, decoder_width, pretrained_encoder)


@register_model(family="unet", task="segment", **_RGB)
def unet_mobilenetv2(
    *,
    num_classes: int = 21,
    in_chans: int = 3,
    encoder: str = "mobilenetv2_100",
    decoder_width: int = 16,
    pretrained_encoder: bool = False,
) -> Any:
    """U-Net decoder over MobileNetV2 (pretrained_encoder=True: packaged offline ImageNet weights)."""
    return _unet(encoder, num_classes, in_chans, decoder_width, pretrained_encoder)


@register_model(family="unet", task="segment", **_VOLUME, **_UNET3D_PAPER)
def unet3d_inflated(
    *,
    num_classes: int = 2,
    in_chans: int = 1,
    encoder: str = "spec_mobilenet_v2",
    decoder_width: int = 8,
    pretrained_encoder: bool = True,
) -> Any:
    """3D U-Net over a 3D MobileNetV2 whose ImageNet weights are inflated from 2D (I3D, Carreira & Zisserman 2017).

    The 2D stem is adapted to in_chans first; pretrained_encoder=False gives the same network untrained.
    """
    from cnnlab.models.segment.encoders import inflated_encoder

    body = inflated_encoder(encoder, in_chans=in_chans, pretrained=pretrained_encoder)
    return unet_over(body, num_classes, in_chans, decoder_width)


# --- DeepLabV3+ ---------------------------------------------------------------------------------------


@register_model(family="deeplabv3plus", task="segment", **_RGB)
def deeplabv3plus_mobilenetv2(
    *,
    num_classes: int = 21,
    in_chans: int = 3,
    encoder: str = "mobilenetv2_100",
    output_stride: int = 16,
    pretrained_encoder: bool = False,
) -> Any:
    """DeepLabV3+ (2018): dilated MobileNetV2 at output stride 16 or 8, ASPP, stride-4 detail fusion."""
    return _deeplab_registry(encoder, num_classes, in_chans, output_stride, pretrained_encoder)


@register_model(family="deeplabv3plus", task="segment", **_RGB)
def deeplabv3plus_resnet50(
    *,
    num_classes: int = 21,
    in_chans: int = 3,
    encoder: str = "resnet50",
    output_stride: int = 16,
    pretrained_encoder: bool = False,
) -> Any:
    """DeepLabV3+ (2018): dilated ResNet-50 at output stride 16 or 8, ASPP, stride-4 detail fusion."""
    return _deeplab_registry(encoder, num_classes, in_chans, output_stride, pretrained_encoder)


@register_model(family="deeplabv3plus", task="segment", input_size=(1, 64, 64, 64), num_classes=2, spatial_dims=(2, 3))
def deeplabv3plus3d(
    *,
    num_classes: int = 2,
    in_chans: int = 1,
    base_width: int = 16,
    output_stride: int = 8,
    rates: tuple[int, ...] = (2, 3, 4),
    decoder_width: int = 64,
    spatial_dims: int = 3,
) -> Any:
    """DeepLabV3+ head on cnnlab's small dilated ResNet (BasicBlock), for volumes (or 2D images).

    Rates: the paper's 6/12/18 span about 0.2-0.55 of its 33-pixel map; on a 64^3 volume at output
    stride 8 the map is 8 voxels, hence 2/3/4. decoder_width 64 (not 256): the stride-4 fusion convs
    run on 16^3 voxels, where 256 channels would cost 8 GMACs per conv.
    """
    from cnnlab.models.segment.deeplab3d import DilatedResNet
    from cnnlab.models.segment.encoders import FeatureEncoder

    body = DilatedResNet(in_chans, base_width=base_width, output_stride=output_stride, spatial_dims=spatial_dims)
    encoder = FeatureEncoder(body, name="a dilated ResNet")
    return deeplab_over(
        encoder, num_classes, in_chans, tuple(rates), width=decoder_width, low_level_chs=max(8, decoder_width // 4)
    )


# --- Panoptic FPN's semantic head ----------------------------------------------------------------------

_PANOPTIC = dict(paper="Panoptic Feature Pyramid Networks", year=2019)


@register_model(family="fpn", task="segment", **_RGB, **_PANOPTIC)
def fpn_resnet18(
    *, num_classes: int = 21, in_chans: int = 3, encoder: str = "resnet18", pretrained_encoder: bool = False
) -> Any:
    """FPN semantic head (Panoptic FPN, 2019): levels at strides 4-32 brought to stride 4 and summed."""
    return _fpn(encoder, num_classes, in_chans, pretrained_encoder)


@register_model(family="fpn", task="segment", **_RGB, **_PANOPTIC)
def fpn_mobilenetv2(
    *, num_classes: int = 21, in_chans: int = 3, encoder: str = "mobilenetv2_100", pretrained_encoder: bool = False
) -> Any:
    """FPN semantic head (Panoptic FPN, 2019) over MobileNetV2 (offline ImageNet weights available)."""
    return _fpn(encoder, num_classes, in_chans, pretrained_encoder)
