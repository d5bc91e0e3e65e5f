"""Augmenting whole batches of in-memory images at once (the fast path for small datasets).

Per-sample transforms in DataLoader workers cost more than the model itself for 28x28 images on
a CPU. When a dataset fits in memory, it is resized and channel-matched once (``prepare_images``),
then every batch is cropped, flipped, erased and normalised with a handful of tensor operations
drawn from one seeded generator, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnlab.data.transforms import MatchChannels


def prepare_images(images: torch.Tensor, input_size: Sequence[int], chunk: int = 4096) -> torch.Tensor:
    """uint8 [N, C, h, w] -> uint8 [N, channels, H, W] at the model's input size (done once)."""
    channels, height, width = input_size[0], input_size[-2], input_size[-1]
    match = MatchChannels(channels)
    out = torch.empty((images.shape[0], channels, height, width), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        part = match(images[start : start + chunk])
        if part.shape[-2:] != (height, width):
            part = (
                F.interpolate(part.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
                .round_()
                .clamp_(0, 255)
                .to(torch.uint8)
            )
        out[start : start + chunk] = part
    return out


class BatchAugment:
    """Pad-and-crop, horizontal flip, random erasing and normalisation on a uint8 batch."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        crop_padding: int = 0,
        hflip: bool = False,
        random_erasing: float = 0.0,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.random_erasing = random_erasing

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.normalize(images)
        n = x.shape[0]
        if self.crop_padding:
            x = self._crop(x, generator)
        if self.hflip:
            flip = torch.rand(n, generator=generator) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.random_erasing > 0:
            self._erase_(x, generator)
        return x

    def _crop(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.crop_padding
        h, w = x.shape[-2:]
        padded = F.pad(x, (p, p, p, p), mode="reflect")
        offsets = torch.randint(0, 2 * p + 1, (x.shape[0], 2), generator=generator).tolist()
        return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])

    def _erase_(self, x: torch.Tensor, generator: torch.Generator | None) -> None:
        # RandomErasing (Zhong et al. 2017): area 2-33% of the image, aspect 0.3-3.3, filled with 0 (the mean).
        h, w = x.shape[-2:]
        chosen = (torch.rand(x.shape[0], generator=generator) < self.random_erasing).nonzero().flatten().tolist()
        for i in chosen:
            area = h * w * (0.02 + 0.31 * torch.rand((), generator=generator).item())
            aspect = torch.exp(torch.empty(()).uniform_(-1.2, 1.2, generator=generator)).item()
            eh, ew = min(h, round((area * aspect) ** 0.5)), min(w, round((area / aspect) ** 0.5))
            y = int(torch.randint(0, h - eh + 1, (), generator=generator))
            z = int(torch.randint(0, w - ew + 1, (), generator=generator))
            x[i, :, y : y + eh, z : z + ew] = 0.0
