"""Which paper introduced each architecture family, and the family of a timm model name.

timm groups many families in one module (MobileNetV2, MnasNet, FBNet and MixNet all live in
`efficientnet.py`), so the family is read from the name first and the module second.
"""

from __future__ import annotations

import re

# family -> (paper title, year of first arXiv/publication)
PAPERS: dict[str, tuple[str, int]] = {
    "lenet": ("Gradient-Based Learning Applied to Document Recognition", 1998),
    "alexnet": ("ImageNet Classification with Deep Convolutional Neural Networks", 2012),
    "vgg": ("Very Deep Convolutional Networks for Large-Scale Image Recognition", 2014),
    "googlenet": ("Going Deeper with Convolutions", 2014),
    "inception_v3": ("Rethinking the Inception Architecture for Computer Vision", 2015),
    "inception_v4": ("Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning", 2016),
    "resnet": ("Deep Residual Learning for Image Recognition", 2015),
    "cifar_resnet": ("Deep Residual Learning for Image Recognition", 2015),
    "resnetv2": ("Identity Mappings in Deep Residual Networks", 2016),
    "resnext": ("Aggregated Residual Transformations for Deep Neural Networks", 2016),
    "wide_resnet": ("Wide Residual Networks", 2016),
    "densenet": ("Densely Connected Convolutional Networks", 2016),
    "squeezenet": ("SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size", 2016),
    "xception": ("Xception: Deep Learning with Depthwise Separable Convolutions", 2016),
    "senet": ("Squeeze-and-Excitation Networks", 2017),
    "dpn": ("Dual Path Networks", 2017),
    "dla": ("Deep Layer Aggregation", 2017),
    "mobilenetv1": ("MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", 2017),
    "mobilenetv2": ("MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018),
    "shufflenet_v2": ("ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design", 2018),
    "mnasnet": ("MnasNet: Platform-Aware Neural Architecture Search for Mobile", 2018),
    "fbnet": ("FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture Search", 2018),
    "mobilefacenet": (
        "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face Verification on Mobile Devices",
        2018,
    ),
    "mobilenetv3": ("Searching for MobileNetV3", 2019),
    "efficientnet": ("EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", 2019),
    "efficientnet_lite": ("EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", 2019),
    "mixnet": ("MixConv: Mixed Depthwise Convolutional Kernels", 2019),
    "res2net": ("Res2Net: A New Multi-scale Backbone Architecture", 2019),
    "sknet": ("Selective Kernel Networks", 2019),
    "hrnet": ("Deep High-Resolution Representation Learning for Visual Recognition", 2019),
    "cspnet": ("CSPNet: A New Backbone that can Enhance Learning Capability of CNN", 2019),
    "vovnet": ("CenterMask: Real-Time Anchor-Free Instance Segmentation", 2019),
    "selecsls": ("XNect: Real-time Multi-Person 3D Motion Capture with a Single RGB Camera", 2019),
    "ghostnet": ("GhostNet: More Features from Cheap Operations", 2019),
    "regnet": ("Designing Network Design Spaces", 2020),
    "resnest": ("ResNeSt: Split-Attention Networks", 2020),
    "rexnet": ("Rethinking Channel Dimensions for Efficient Model Design", 2020),
    "tinynet": ("Model Rubik's Cube: Twisting Resolution, Depth and Width for TinyNets", 2020),
    "tresnet": ("TResNet: High Performance GPU-Dedicated Architecture", 2020),
    "vision_transformer": ("An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale", 2020),
    "deit": ("Training data-efficient image transformers & distillation through attention", 2020),
    "repvgg": ("RepVGG: Making VGG-style ConvNets Great Again", 2021),
    "efficientnetv2": ("EfficientNetV2: Smaller Models and Faster Training", 2021),
    "nfnet": ("High-Performance Large-Scale Image Recognition Without Normalization", 2021),
    "lcnet": ("PP-LCNet: A Lightweight CPU Convolutional Neural Network", 2021),
    "swin_transformer": ("Swin Transformer: Hierarchical Vision Transformer using Shifted Windows", 2021),
    "levit": ("LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference", 2021),
    "mobilevit": ("MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision Transformer", 2021),
    "convnext": ("A ConvNet for the 2020s", 2022),
    "convnextv2": ("ConvNeXt V2: Co-designing and Scaling ConvNets with Masked Autoencoders", 2023),
    "mobileone": ("MobileOne: An Improved One millisecond Mobile Backbone", 2022),
    "efficientformer": ("EfficientFormer: Vision Transformers at MobileNet Speed", 2022),
    "edgenext": ("EdgeNeXt: Efficiently Amalgamated CNN-Transformer Architecture for Mobile Vision Applications", 2022),
    "efficientvit": ("EfficientViT: Multi-Scale Linear Attention for High-Resolution Dense Prediction", 2022),
    "maxvit": ("MaxViT: Multi-Axis Vision Transformer", 2022),
    "repghost": ("RepGhost: A Hardware-Efficient Ghost Module via Re-parameterization", 2022),
    "fastvit": ("FastViT: A Fast Hybrid Vision Transformer using Structural Reparameterization", 2023),
    "mobilenetv4": ("MobileNetV4: Universal Models for the Mobile Ecosystem", 2024),
    "unet": ("U-Net: Convolutional Networks for Biomedical Image Segmentation", 2015),
    "deeplabv3plus": ("Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation", 2018),
    "fpn": ("Feature Pyramid Networks for Object Detection", 2016),
    "faster_rcnn": ("Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks", 2015),
    "ssd": ("SSD: Single Shot MultiBox Detector", 2015),
    "ssdlite": ("MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018),  # SSDLite is introduced there
    "retinanet": ("Focal Loss for Dense Object Detection", 2017),
    "fcos": ("FCOS: Fully Convolutional One-Stage Object Detection", 2019),
    "yolo": ("YOLOX: Exceeding YOLO Series in 2021", 2021),
    "resnet3d": ("Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?", 2017),
    "resnet1d": ("Deep Residual Learning for Image Recognition", 2015),
}

# Name patterns checked before the timm module name, first match wins.
_NAME_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^(tf_)?efficientnet_lite", "efficientnet_lite"),
    (r"^(tf_)?efficientnetv2|^efficientnet_v2", "efficientnetv2"),
    (r"^(tf_|gc_)?efficientnet", "efficientnet"),
    (r"^mobilenetv1", "mobilenetv1"),
    (r"^(tf_)?mobilenetv2|^mobilenet_v2", "mobilenetv2"),
    (r"^(tf_)?mobilenetv3|^mobilenet_v3", "mobilenetv3"),
    (r"^mobilenetv4", "mobilenetv4"),
    (r"^(tf_)?mixnet", "mixnet"),
    (r"^(tf_|sem)?mnasnet|^spnasnet", "mnasnet"),
    (r"^fbnet", "fbnet"),
    (r"^tinynet", "tinynet"),
    (r"^lcnet", "lcnet"),
    (r"^resnext|^ig_resnext|^swsl_resnext|^ssl_resnext", "resnext"),
    (r"^wide_resnet", "wide_resnet"),
    (r"^(legacy_)?se(resnet|resnext|net|_resnet)", "senet"),
    (r"^regnet", "regnet"),
    (r"^repvgg", "repvgg"),
    (r"^deit", "deit"),
    (r"^(cs|dark)", "cspnet"),
    (r"^(ese_)?vovnet", "vovnet"),
    (r"^(dm_)?nfnet|^nf_", "nfnet"),
    (r"^shufflenet", "shufflenet_v2"),
    (r"^squeezenet", "squeezenet"),
)

# timm module name -> family, where they differ
_MODULE_FAMILIES = {
    "vgg": "vgg",
    "inception_v3": "inception_v3",
    "inception_v4": "inception_v4",
    "inception_resnet_v2": "inception_v4",
    "byobnet": "byobnet",
    "convnext": "convnext",
}


def family_of(name: str, module: str | None = None) -> str:
    """The architecture family of a model name (timm module name as fallback)."""
    for pattern, family in _NAME_FAMILIES:
        if re.search(pattern, name):
            return family
    if module:
        return _MODULE_FAMILIES.get(module, module)
    return re.split(r"[_\d]", name, maxsplit=1)[0] or name


def paper_of(family: str) -> tuple[str | None, int | None]:
    title, year = PAPERS.get(family, (None, None))
    return title, year
