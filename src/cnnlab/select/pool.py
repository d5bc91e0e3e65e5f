"""The candidates a selection starts from: architectures across the accuracy/cost spectrum, each at a
resolution that suits the data (a 28-pixel image is not blown up to 224 because ImageNet was)."""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import ConfigError

# Small images (the data's native side is at most 64): CIFAR-style networks at 32, and the mobile
# families at 32 and 64 (a stride-32 network sees a 1x1 map at 32; 64 keeps a 2x2 one).
SMALL_POOL = (
    "lenet5@32",
    "cifar_resnet20@32",
    "cifar_resnet56@32",
    "mobilenetv2_050@32",
    "mobilenetv2_100@32",
    "mobilenetv2_100@64",
    "mobilenetv3_small_100@64",
    "mobilenetv3_large_100@64",
    "tf_efficientnet_lite0@64",
    "efficientnet_b0@64",
    "ghostnet_100@64",
    "regnetx_002@64",
    "resnet18@32",
    "convnext_atto@64",
)

# Photographs: the ImageNet families at their native 224, plus lower-resolution variants.
LARGE_POOL = (
    "mobilenetv3_small_100@224",
    "mobilenetv2_050@224",
    "mobilenetv2_100@160",
    "mobilenetv2_100@224",
    "mobilenetv3_large_100@224",
    "tf_efficientnet_lite0@224",
    "efficientnet_b0@224",
    "ghostnet_100@224",
    "regnetx_002@224",
    "regnety_004@224",
    "shufflenet_v2_x1_0@224",
    "resnet18@160",
    "resnet50@224",
    "convnext_atto@224",
)

SMALL_IMAGE_SIDE = 64


@dataclass(frozen=True)
class Candidate:
    """One architecture at one input resolution."""

    model: str  # registry name or design spec path
    side: int | None  # input side in pixels; None: the architecture's default

    @property
    def label(self) -> str:
        return f"{self.model}@{self.side}" if self.side else self.model

    @property
    def slug(self) -> str:
        """A folder name for the candidate's runs."""
        stem = self.model.replace("\\", "/").rstrip("/").split("/")[-1].rsplit(".", 1)[0]
        return f"{stem}-{self.side}" if self.side else stem


def parse_candidate(text: str) -> Candidate:
    """'mobilenetv2_100', 'mobilenetv2_100@64' or 'my_spec.yaml@96'."""
    model, sep, side = text.strip().rpartition("@") if "@" in text else (text.strip(), "", "")
    if not model:
        raise ConfigError(f"candidate {text!r}: write NAME or NAME@SIDE, e.g. mobilenetv2_100@64")
    if sep:
        if not side.isdigit() or int(side) < 8:
            raise ConfigError(f"candidate {text!r}: the resolution after @ must be a side of at least 8 pixels")
        return Candidate(model, int(side))
    return Candidate(model, None)


def default_pool(native_size: tuple[int, int] | None) -> list[Candidate]:
    """The pool for data whose images are ``native_size`` (None: sizes differ, treated as photographs)."""
    small = native_size is not None and max(native_size) <= SMALL_IMAGE_SIDE
    return [parse_candidate(c) for c in (SMALL_POOL if small else LARGE_POOL)]


def resolve_pool(candidates: list[str] | None, native_size: tuple[int, int] | None) -> list[Candidate]:
    """The user's candidates when given (duplicates refused), else the default pool."""
    if not candidates:
        return default_pool(native_size)
    parsed = [parse_candidate(c) for c in candidates]
    seen: set[str] = set()
    for c in parsed:
        if c.label in seen:
            raise ConfigError(f"candidate {c.label} is listed twice")
        seen.add(c.label)
    return parsed
