"""Semantic segmentation through the task seam, for images (2D) and volumes (3D).

The contract with a segmentation model (models/segment): ``model(x)`` with x float [B, C, *S] returns
logits [B, K, *S] at the input's size, in train and eval mode, and its sides must be multiples of
``model.size_divisor``. The exported graph returns the same logits, so the argmax, the metrics and the
mask files are the same code for torch and for every runtime.

Targets are what ``segmentation_collate`` yields: {"masks": int64 [B, *S] (255 = ignore),
"spacing": float [B, dims] in mm, "index": int64 [B]}.

Training sees fixed crops (the card's input size); evaluation and prediction see whole images and
volumes, tiled by a sliding window of that size with Gaussian blending where they are larger
(``infer``, ``tasks.sliding_window``), so a model trained on 128 px crops segments a 1024 px image
without being resized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from cnnlab.errors import ConfigError
from cnnlab.tasks.segment_losses import IGNORE_INDEX

OVERLAP = 0.5  # sliding-window overlap: each pixel is seen by up to 2 tiles per axis
MIN_PIXEL_AGREEMENT = 0.999  # exported model vs torch: identical argmax on at least this share of pixels


class SegmentTask:
    name = "segment"
    primary_metric = "miou"
    greater_is_better = True

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        *,
        input_size: Sequence[int] | None = None,
        loss: str = "ce+dice",
        class_weights: Sequence[float] | None = None,
        size_divisor: int = 1,
    ) -> None:
        if num_classes < 2:
            raise ConfigError(
                f"segmentation needs at least 2 classes (background and one structure), the data has {num_classes}"
            )
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.window = [int(s) for s in input_size[1:]] if input_size else None
        self.spatial_dims = len(self.window) if self.window else 2
        self.loss_name = loss
        self.class_weights = list(class_weights) if class_weights is not None else None
        self.size_divisor = size_divisor
        self.last_parts: dict[str, float] = {}
        self._criterion: Callable[..., Any] | None = None

    def loss(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._criterion is None:
            from cnnlab.tasks.segment_losses import build_segment_loss

            self._criterion = build_segment_loss(
                self.loss_name,
                num_classes=self.num_classes,
                class_weights=self.class_weights,
                ignore_index=IGNORE_INDEX,
            )
        total, parts = self._criterion(outputs, targets["masks"].to(outputs.device))
        self.last_parts = {k: float(v) for k, v in parts.items()}
        return total

    def new_metrics(self) -> Any:
        from cnnlab.tasks.segment_metrics import SegmentationMetrics

        return SegmentationMetrics(
            self.num_classes, self.class_names, ignore_index=IGNORE_INDEX, hausdorff=self.spatial_dims == 3
        )

    def collate(self, samples: Sequence[Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from cnnlab.data.mask_transforms import segmentation_collate

        return segmentation_collate(samples)

    def batch_transform(self) -> None:
        return None  # mixup/cutmix would blend masks into soft labels the Dice loss does not take

    def infer(self, run: Callable[[torch.Tensor], Any], inputs: torch.Tensor) -> torch.Tensor:
        """Logits for whole images or volumes: one call when they have the training size, else a
        Gaussian-blended sliding window of that size (inputs smaller than it are padded)."""
        if self.window is None or list(inputs.shape[2:]) == self.window:
            return _as_tensor(run(inputs))
        from cnnlab.tasks.sliding_window import sliding_window_inference

        return sliding_window_inference(
            run, inputs, self.window, overlap=OVERLAP, blend="gaussian", size_divisor=self.size_divisor
        )

    def predict(self, outputs: torch.Tensor, top_k: int = 5) -> list[dict[str, Any]]:
        """Per item: the class-id mask (uint8 [*S]) and the share of pixels (voxels) of each class found."""
        masks = outputs.argmax(dim=1).to(torch.uint8).cpu()
        found = []
        for mask in masks:
            counts = torch.bincount(mask.flatten().long(), minlength=self.num_classes)
            share = {self.class_names[k]: round(float(c) / mask.numel(), 5) for k, c in enumerate(counts) if c > 0}
            found.append({"mask": mask, "class_share": share, "mask_size": list(mask.shape)})
        return found

    def agreement(self, reference: torch.Tensor, candidate: torch.Tensor) -> dict[str, Any]:
        """Do two runtimes draw the same masks? The share of pixels whose argmax class is identical."""
        same = reference.argmax(dim=1) == torch.as_tensor(candidate).argmax(dim=1)
        share = float(same.float().mean())
        return {
            "pixels_compared": same.numel(),
            "pixel_agreement": round(share, 6),
            "required": MIN_PIXEL_AGREEMENT,
            "passed": share >= MIN_PIXEL_AGREEMENT,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "num_classes": self.num_classes,
            "spatial_dims": self.spatial_dims,
            "loss": self.loss_name,
            "class_weights": self.class_weights,
            "ignore_index": IGNORE_INDEX,
            "inference": (
                f"whole {'volumes' if self.spatial_dims == 3 else 'images'}; larger than the training size "
                f"{self.window} -> sliding window, overlap {OVERLAP}, Gaussian blending"
            ),
        }


def _as_tensor(outputs: Any) -> torch.Tensor:
    return outputs if isinstance(outputs, torch.Tensor) else torch.as_tensor(outputs)
