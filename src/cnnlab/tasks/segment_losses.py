"""Segmentation losses: cross-entropy, focal, soft Dice and their sums, for 2D and 3D.

Contract
    logits: float [B, K, *S] (S = (H, W) or (D, H, W)); target: int64 [B, *S] with class ids 0..K-1,
    and ``ignore_index`` (255) for pixels that count for nothing: they add nothing to any loss term and
    receive zero gradient.
    loss(logits, target) -> (total, parts): ``total`` is the scalar to backpropagate, ``parts`` maps
    each term's name ("ce", "focal", "dice") to its detached value, for logging.

Definitions
    ce: mean over valid pixels of -log p[target], weighted by ``class_weights[target]`` when given
        (sum of weighted terms / sum of weights, as ``F.cross_entropy`` with ``weight`` does).
    focal: the same weighted mean of -(1 - p[target])**gamma * log p[target] (gamma = 0 gives ce).
    dice: 1 - mean_k dice_k with dice_k = (2 * sum(p_k * g_k) + s) / (sum(p_k) + sum(g_k) + s), where
        p_k are softmax probabilities, g_k the one-hot target, the sums run over the whole batch and
        all valid pixels (a "batch Dice": a class small in one image is still measured against all of
        its pixels in the batch), and s = ``dice_smooth`` (1e-5) only keeps 0/0 away. The mean runs
        over the classes present in the target batch or predicted (argmax) somewhere in it: a class
        absent from both would score dice_k = s/s = 1 and only dilute the mean. With ``dice_weighted``
        the mean is weighted by ``class_weights``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, suggest

IGNORE_INDEX = 255
LOSS_NAMES = ("ce", "dice", "focal", "ce+dice", "focal+dice")
DICE_SMOOTH = 1e-5

SegmentLossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class SegmentationLoss:
    """The sum of the named terms, each with weight 1; build it with `build_segment_loss`."""

    def __init__(
        self,
        terms: Sequence[str],
        num_classes: int,
        class_weights: torch.Tensor | None,
        ignore_index: int,
        focal_gamma: float,
        dice_smooth: float,
        dice_weighted: bool,
    ) -> None:
        self.terms = tuple(terms)
        self.num_classes = num_classes
        self.class_weights = class_weights
        self.ignore_index = ignore_index
        self.focal_gamma = focal_gamma
        self.dice_smooth = dice_smooth
        self.dice_weighted = dice_weighted

    def __repr__(self) -> str:
        return f"SegmentationLoss({'+'.join(self.terms)}, num_classes={self.num_classes})"

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self._check(logits, target)
        logits = logits.float()  # log-softmax and the Dice sums in float32 even under autocast
        valid = target != self.ignore_index
        label = torch.where(valid, target, torch.zeros_like(target))  # any class id; masked out below
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        log_probs = F.log_softmax(logits, dim=1)
        parts: dict[str, torch.Tensor] = {}
        for term in self.terms:
            if term == "dice":
                parts[term] = self._dice(log_probs.exp(), logits, label, valid, weight)
            else:
                gamma = self.focal_gamma if term == "focal" else 0.0
                parts[term] = _weighted_nll(log_probs, label, valid, weight, gamma)
        total = sum(parts.values(), logits.new_zeros(()))
        return total, {name: value.detach() for name, value in parts.items()}

    def _check(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        if logits.dim() != target.dim() + 1 or logits.shape[:1] + logits.shape[2:] != target.shape:
            raise ValueError(
                f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: "
                "expected logits [B, K, *S] and target [B, *S]"
            )
        if logits.shape[1] != self.num_classes:
            raise ConfigError(
                f"the model outputs {logits.shape[1]} channels but the loss was built for "
                f"num_classes={self.num_classes}; make the head's out_channels equal the number of classes"
            )
        if target.is_floating_point():
            raise ValueError(f"target must hold integer class ids, got {target.dtype}")

    def _dice(
        self,
        probs: torch.Tensor,
        logits: torch.Tensor,
        label: torch.Tensor,
        valid: torch.Tensor,
        weight: torch.Tensor | None,
    ) -> torch.Tensor:
        shape = (1, self.num_classes) + (1,) * (probs.dim() - 2)
        classes = torch.arange(self.num_classes, device=probs.device).view(shape)
        valid = valid.unsqueeze(1)
        truth = (label.unsqueeze(1) == classes) & valid  # one-hot by comparison: no scatter, deterministic
        dims = [0, *range(2, probs.dim())]
        probs = probs * valid
        intersection = (probs * truth).sum(dim=dims)
        dice = (2 * intersection + self.dice_smooth) / (probs.sum(dim=dims) + truth.sum(dim=dims) + self.dice_smooth)
        predicted = (logits.argmax(dim=1, keepdim=True) == classes) & valid
        present = truth.transpose(0, 1).flatten(1).any(dim=1) | predicted.transpose(0, 1).flatten(1).any(dim=1)
        active = present.to(dice.dtype)
        if self.dice_weighted and weight is not None:
            active = active * weight
        # No sync on active.sum(): a batch of only ignore pixels has no active class and gives 0 / eps = 0.
        return (active * (1.0 - dice)).sum() / active.sum().clamp(min=1e-12)


def _weighted_nll(
    log_probs: torch.Tensor, label: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor | None, gamma: float
) -> torch.Tensor:
    """Cross-entropy (gamma = 0) or focal loss: a weighted mean over the valid pixels."""
    log_p = log_probs.gather(1, label.unsqueeze(1)).squeeze(1)
    loss = -log_p if gamma == 0 else -((1.0 - log_p.exp()).clamp(min=0.0) ** gamma) * log_p
    pixel_weight = valid.to(log_p.dtype)
    if weight is not None:
        pixel_weight = pixel_weight * weight[label]
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    # clamp: a batch of only ignore pixels gives 0 rather than 0/0
    return (loss * pixel_weight).sum() / pixel_weight.sum().clamp(min=1e-12)


def build_segment_loss(
    name: str = "ce+dice",
    *,
    num_classes: int,
    class_weights: Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    focal_gamma: float = 2.0,
    dice_smooth: float = DICE_SMOOTH,
    dice_weighted: bool = False,
) -> SegmentLossFn:
    """A segmentation loss ``loss(logits, target) -> (total, parts)``; see the module docstring.

    Args:
        name: One of "ce", "dice", "focal", "ce+dice", "focal+dice" (a sum, each term with weight 1).
        num_classes: K, the channels of the logits.
        class_weights: One non-negative weight per class for ce/focal (see `class_weights_from_pixels`).
        ignore_index: Target value of pixels that count for nothing.
        focal_gamma: Focusing exponent of the focal term (0 makes it cross-entropy).
        dice_smooth: Added to the Dice numerator and denominator.
        dice_weighted: Also weight the Dice class mean by ``class_weights``.

    Raises:
        ConfigError: An unknown name, or options that do not fit ``num_classes``.
    """
    if name not in LOSS_NAMES:
        raise ConfigError(
            f"unknown segmentation loss {name!r}{suggest(name, LOSS_NAMES)}; choose one of {', '.join(LOSS_NAMES)}"
        )
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    if not focal_gamma >= 0:
        raise ConfigError(f"focal_gamma must be >= 0, got {focal_gamma}")
    if not dice_smooth >= 0:
        raise ConfigError(f"dice_smooth must be >= 0, got {dice_smooth}")
    weights = None
    if class_weights is not None:
        values = [float(w) for w in class_weights]
        if len(values) != num_classes:
            raise ConfigError(
                f"class_weights has {len(values)} values for {num_classes} classes; give one weight per class"
            )
        if not all(math.isfinite(w) and w >= 0 for w in values):
            raise ConfigError(f"class_weights must be finite and >= 0, got {values}")
        weights = torch.tensor(values, dtype=torch.float32)
    return SegmentationLoss(
        name.split("+"), int(num_classes), weights, ignore_index, float(focal_gamma), float(dice_smooth), dice_weighted
    )


def class_weights_from_pixels(
    pixel_counts: Sequence[float] | np.ndarray | torch.Tensor, *, clip: tuple[float, float] = (0.1, 10.0)
) -> list[float]:
    """Median-frequency balancing: weight_k = median(freq) / freq_k, clipped to ``clip``.

    freq_k is class k's share of all counted pixels and the median runs over the classes that have
    pixels, so a class at the median frequency weighs 1, rarer ones more. The clip keeps a structure
    of a few voxels from dominating the loss (and a huge background from vanishing). A class with no
    pixels gets 1.0: it never appears as a target, so its weight changes nothing.

    Args:
        pixel_counts: Pixels (voxels) of each class over the training set, e.g. the row sums of a
            confusion matrix; ignore pixels excluded.
        clip: Lowest and highest weight.
    """
    counts = np.asarray(pixel_counts.cpu() if isinstance(pixel_counts, torch.Tensor) else pixel_counts, dtype=float)
    if counts.ndim != 1 or counts.size == 0 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ConfigError(f"pixel_counts must be one non-negative count per class, got {counts.tolist()}")
    if counts.sum() == 0:
        raise ConfigError("pixel_counts are all zero; count the pixels of each class in the training masks")
    low, high = clip
    if not 0 < low <= high:
        raise ConfigError(f"clip must be (low, high) with 0 < low <= high, got {clip}")
    present = counts > 0
    freq = counts / counts.sum()
    weights = np.ones_like(freq)
    weights[present] = np.clip(np.median(freq[present]) / freq[present], low, high)
    return [float(w) for w in weights]
