"""A spec with a segmentation head: its stem and stages become the encoder, the head a decoder.

The decoders are the ones cnnlab's registered segmenters use (``cnnlab.models.segment.decoders``),
so a designed U-Net, DeepLabV3+ or FPN follows the same model contract: ``model(x)`` gives logits
at the input's size, in 1D (U-Net), 2D and 3D.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cnnlab.design.network import DesignedNet
from cnnlab.design.spec import HeadSpec, NetworkSpec
from cnnlab.errors import ConfigError

# DeepLabV3+'s ASPP rates at output stride 16 (the paper's for 2D; for volumes, whose deepest maps
# are a few voxels across, those of cnnlab's deeplabv3plus3d at stride 8, doubled); halved per 2x more stride.
_RATES_AT_16 = {1: (6, 12, 18), 2: (6, 12, 18), 3: (4, 6, 8)}


def build_segmenter(spec: NetworkSpec) -> Any:
    """The segmenter a spec with a unet, deeplabv3plus or fpn head describes."""
    from cnnlab.models.features import FeatureExtractor
    from cnnlab.models.segment.encoders import FeatureEncoder
    from cnnlab.models.segmenters import deeplab_over, fpn_over, unet_over

    head = spec.head
    body = DesignedNet(dataclasses.replace(spec, head=HeadSpec(type="none"), num_classes=0))
    encoder = FeatureEncoder(FeatureExtractor(body), name=spec.name)
    stride = encoder.strides[-1]
    if head.type != "unet" and spec.spatial_dims == 1:
        raise ConfigError(f"spec {spec.name}: a {head.type} head is built for 2D and 3D inputs; use a unet head in 1D")
    if head.type == "unet":
        model = unet_over(encoder, spec.num_classes, spec.in_chans, head.width or encoder.channels[0])
    elif head.type == "deeplabv3plus":
        width = head.width or (256 if spec.spatial_dims == 2 else 64)
        rates = tuple(head.rates) or tuple(max(1, r * 16 // stride) for r in _RATES_AT_16[spec.spatial_dims])
        model = deeplab_over(
            encoder, spec.num_classes, spec.in_chans, rates, width=width, low_level_chs=max(8, width * 48 // 256)
        )
    else:
        width = head.width or 128
        model = fpn_over(encoder, spec.num_classes, spec.in_chans, segment_chs=width, pyramid_chs=2 * width)
    model.default_input_size = tuple(spec.input_size)
    model.label = f"{spec.name} ({head.type} head, downsamples {stride}x)"
    model.spec_name, model.spec_dict = spec.name, spec.to_dict()
    return model
