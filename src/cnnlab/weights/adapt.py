"""Fitting a state dict from elsewhere onto a model: key matching, stem and head adaptation.

Matching is by name when the names agree, else by order: two implementations of the same
architecture usually register their tensors in the same order with the same shapes (torchvision's
MobileNetV2 and timm's mobilenetv2_100 do), so pairing them in order, shape by shape, is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from cnnlab.errors import CheckpointError

_SKIP_SUFFIX = "num_batches_tracked"


@dataclass
class KeyReport:
    """What a weight load did, tensor by tensor; stored in run.json and printed by `train`."""

    mapping: str = "by-name"
    loaded: int = 0
    total: int = 0
    missing: list[str] = field(default_factory=list)  # in the model, not in the file: left as initialised
    unexpected: list[str] = field(default_factory=list)  # in the file, unused
    head_reset: list[str] = field(default_factory=list)  # classifier tensors of another shape
    stem_adapted: list[str] = field(default_factory=list)  # first conv summed/repeated for in_chans

    def to_dict(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping,
            "loaded": self.loaded,
            "total": self.total,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "head_reset": self.head_reset,
            "stem_adapted": self.stem_adapted,
        }

    def summary(self) -> str:
        parts = [f"{self.loaded}/{self.total} tensors loaded ({self.mapping})"]
        if self.head_reset:
            parts.append(f"head reset: {', '.join(self.head_reset)}")
        if self.stem_adapted:
            parts.append(f"stem adapted: {', '.join(self.stem_adapted)}")
        if self.missing:
            parts.append(f"{len(self.missing)} left initialised")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unused")
        return "; ".join(parts)


def _keys(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in state if not k.endswith(_SKIP_SUFFIX)]


def match_state_dict(
    source: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    *,
    mapping: str = "auto",
    first_conv: str | None = None,
    classifier: str | tuple[str, ...] | None = None,
) -> tuple[dict[str, torch.Tensor], KeyReport]:
    """Rename and adapt ``source`` so it loads into a model whose state dict is ``target``.

    Args:
        mapping: ``by-name``, ``in-order`` or ``auto`` (by name when most names agree, else in order).
        first_conv: module path of the stem conv; its weight is adapted to the target's in_chans.
        classifier: module path(s) of the final layer; a shape mismatch there resets the head.
    """
    src_keys, dst_keys = _keys(source), _keys(target)
    if mapping == "auto":
        shared = len(set(src_keys) & set(dst_keys))
        mapping = "by-name" if shared >= 0.5 * len(dst_keys) else "in-order"
    if mapping == "by-name":
        pairs = [(k, k) for k in dst_keys if k in source]
    elif mapping == "in-order":
        if len(src_keys) != len(dst_keys):
            raise CheckpointError(
                f"cannot pair weights in order: the file has {len(src_keys)} tensors, the model "
                f"{len(dst_keys)}; they are different architectures"
            )
        pairs = list(zip(src_keys, dst_keys, strict=True))
    else:
        raise ValueError(f"unknown mapping {mapping!r}")

    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    report = KeyReport(mapping=mapping, total=len(dst_keys))
    out: dict[str, torch.Tensor] = {}
    for src_key, dst_key in pairs:
        tensor, want = source[src_key], target[dst_key]
        if tensor.shape != want.shape:
            if first_conv and dst_key == f"{first_conv}.weight" and tensor.dim() == want.dim():
                tensor = adapt_input_conv(tensor, want.shape[1])
                report.stem_adapted.append(dst_key)
            elif any(dst_key.startswith(f"{h}.") for h in heads):
                report.head_reset.append(dst_key)
                continue
            else:
                raise CheckpointError(
                    f"weights do not fit the model at {dst_key}: file has {src_key} {tuple(tensor.shape)}, "
                    f"model needs {tuple(want.shape)}"
                )
        out[dst_key] = tensor.to(want.dtype)
    report.loaded = len(out)
    used = {s for s, d in pairs if d in out}
    report.missing = [k for k in dst_keys if k not in out and k not in report.head_reset]
    report.unexpected = [k for k in src_keys if k not in used]
    return out, report


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A stem conv weight for ``in_chans`` inputs from one trained on RGB.

    One channel: the RGB filters summed, so a grey image gives the response a grey RGB image would.
    More channels: the RGB filters repeated and rescaled so the activation scale is unchanged.
    """
    have = weight.shape[1]
    if in_chans == have:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // have)
    return weight.repeat(1, repeats, *([1] * (weight.dim() - 2)))[:, :in_chans] * (have / in_chans)
