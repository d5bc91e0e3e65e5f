"""Encoders: any registry model, through ``features_only``, as the first half of a segmentation model.

A ``FeatureEncoder`` keeps one map per stride (the deepest there: it has seen the most layers) and
declares ``channels``, ``strides`` and ``spatial_dims`` (the encoder contract in
``cnnlab.models.segment``). ``registry_encoder`` builds one from a registry name or a spec path,
with ImageNet weights and an output stride; ``inflated_encoder`` builds a 3D one from a 2D design
spec and its 2D weights (I3D inflation).

Output stride: timm's CNNs replace the stride of their last stages by dilation when created with
``output_stride`` (8 or 16), and the registry passes the option through. cnnlab's and torchvision's
models have no such switch, so for them only their natural stride is accepted.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import ConfigError

OUTPUT_STRIDES = (8, 16, 32)


def spatial_dims_of(module: nn.Module) -> int:
    """1, 2 or 3: read from the first convolution, so 3D registry models (resnet3d18) work as encoders."""
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return m.weight.dim() - 2
    raise ConfigError(f"{type(module).__name__} has no convolution; it cannot serve as a segmentation encoder")


class FeatureEncoder(nn.Module):
    """A features_only module (timm's or cnnlab's FeatureExtractor) reduced to one map per stride.

    Args:
        body: returns a list of maps and declares ``feature_info`` (channels, reductions).
        name: what error messages call it.
    """

    def __init__(self, body: nn.Module, *, name: str) -> None:
        super().__init__()
        info = body.feature_info
        reductions, channels = [int(r) for r in info.reduction()], [int(c) for c in info.channels()]
        deepest = {stride: i for i, stride in enumerate(reductions)}  # a later map at one stride wins
        odd = [s for s in deepest if s & (s - 1)]
        if odd:
            raise ConfigError(
                f"encoder {name!r} has feature maps at strides {reductions}; segmentation decoders need "
                "powers of two (2, 4, 8, 16, 32); choose another encoder"
            )
        self.body = body
        self.name = name
        self.picks = [deepest[s] for s in sorted(deepest)]
        self.strides = tuple(reductions[i] for i in self.picks)
        self.channels = tuple(channels[i] for i in self.picks)
        self.spatial_dims = spatial_dims_of(body)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(x)
        return [features[i] for i in self.picks]


def weights_request(name: str, pretrained: bool | str) -> bool | str:
    """``True`` means the packaged offline weights where a package exists for ``name``.

    Without this, a missing package would send the request to the hub and fail on the network;
    asking for ``offline:`` says which package to install instead.
    """
    from cnnlab.weights.offline import OFFLINE_WEIGHTS

    offline = OFFLINE_WEIGHTS.get(name)
    if pretrained is True and offline is not None:
        return offline.ref
    return pretrained


def registry_encoder(
    name: str, *, in_chans: int = 3, pretrained: bool | str = False, output_stride: int | None = None
) -> FeatureEncoder:
    """Any registry model (or design spec path) as an encoder.

    Args:
        name: registry name (``resnet18``, ``mobilenetv2_100``, ``spec_resnet18``, ``resnet3d18``)
            or the path of a design spec.
        in_chans: input channels; pretrained stems are adapted (RGB filters summed for one channel).
        pretrained: False, True (offline package where one ships, else the hub) or a weights file.
        output_stride: 8 or 16 dilate the last stages instead of striding (timm CNNs); None or 32
            keep the model as it is.
    """
    from cnnlab.registry import create_model, get_entry, is_spec_path

    if output_stride is not None and output_stride not in OUTPUT_STRIDES:
        raise ConfigError(f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, not {output_stride!r}")
    spec_file = is_spec_path(name)
    if spec_file and pretrained:
        raise ConfigError(
            f"encoder {name!r} is a design spec file and brings no weights; use pretrained_encoder=False, "
            "or a registered encoder with weights (mobilenetv2_100, spec_mobilenet_v2, ...)"
        )
    timm_model = not spec_file and get_entry(name).source == "timm"
    options = {"output_stride": output_stride} if timm_model and output_stride else {}
    weights = weights_request(name, pretrained)
    body = create_model(name, in_chans=in_chans, pretrained=weights, features_only=True, **options)
    encoder = FeatureEncoder(body, name=Path(name).stem if spec_file else name)
    if output_stride is not None and encoder.strides[-1] != output_stride:
        how = (
            "timm did not apply it"
            if timm_model
            else "only timm's CNNs (resnet50, mobilenetv2_100, efficientnet_b0, ...) can trade stride for dilation"
        )
        raise ConfigError(
            f"encoder {name!r} ends at stride {encoder.strides[-1]}, not the requested output_stride={output_stride}: "
            f"{how}; choose such an encoder or output_stride={encoder.strides[-1]}"
        )
    return encoder


def inflated_encoder(spec_name: str, *, in_chans: int = 1, pretrained: bool | str = True) -> FeatureEncoder:
    """The 3D network of a 2D design spec, carrying the 2D weights inflated along depth (I3D).

    Args:
        spec_name: a registered 2D design spec (``spec_mobilenet_v2``, ``spec_resnet18``).
        in_chans: input channels; the 2D stem is adapted before inflation.
        pretrained: the 2D weights to inflate (True: the packaged offline set where there is one).
    """
    from cnnlab.design import DesignedNet, NetworkSpec, inflate
    from cnnlab.models.features import FeatureExtractor
    from cnnlab.registry import create_model

    # The classifier stays in place while loading, so the file's head pairs with it in order.
    model_2d = create_model(spec_name, in_chans=in_chans, pretrained=weights_request(spec_name, pretrained))
    if not isinstance(model_2d, DesignedNet):
        raise ConfigError(
            f"encoder {spec_name!r} is not a design spec; inflation needs one (spec_mobilenet_v2, spec_resnet18, ...)"
        )
    spec = NetworkSpec.from_dict(model_2d.spec_dict)
    model_3d = inflate(model_2d, spec, depth=spec.input_size[1])
    model_3d.reset_classifier(0)  # unused by the encoder: it would hold parameters without gradients
    return FeatureEncoder(FeatureExtractor(model_3d), name=f"{spec_name} inflated to 3D")
