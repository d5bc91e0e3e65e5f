"""Sliding-window inference: a dense predictor run over tiles of a large 2D image or 3D volume.

Contract
    predict(tiles [N, C, *window]) -> logits [N, K, *window], a torch tensor or a numpy array (an ONNX
    Runtime or OpenVINO wrapper); inputs [B, C, *S] -> result [B, K, *S], float32 (float64 if predict
    returns float64), on the inputs' device.

How
    1. The tile side is ``window`` rounded up to a multiple of ``size_divisor``. An input side shorter
       than the tile is padded at its end (zeros, or a mirror image with ``pad_mode="reflect"``) and the
       result cropped back, so the model always sees tiles of the size it was trained on.
    2. Along each axis, tiles start every ``floor(tile * (1 - overlap))`` voxels (at least 1), and the
       last tile ends exactly at the input's end (it may overlap its neighbour more).
    3. Each (image, tile) pair is one sample; ``batch_size`` of them go through ``predict`` at once.
    4. Tile outputs are blended with an importance map: a Gaussian (sigma = tile / 8 per axis, peak 1,
       clamped below at 1e-3 so that every voxel keeps a positive weight) which trusts tile centres over
       tile edges, where the receptive field is cut off; or a constant. Result = sum(weight * logits) /
       sum(weight), so a model that is the same everywhere (pointwise) gives the whole-image result.
    A single tile covering the (padded) input is returned as predicted, without any blending arithmetic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError

BLENDS = ("gaussian", "constant")
PAD_MODES = ("constant", "reflect")
GAUSSIAN_FLOOR = 1e-3


def _check(
    inputs: torch.Tensor,
    window: Sequence[int],
    overlap: float,
    blend: str,
    batch_size: int,
    size_divisor: int,
    pad_mode: str,
) -> list[int]:
    dims = inputs.dim() - 2
    if dims < 1 or inputs.shape[0] == 0 or 0 in inputs.shape[2:]:
        raise ConfigError(f"inputs must be a non-empty [B, C, *spatial], got shape {tuple(inputs.shape)}")
    window = list(window)
    if len(window) != dims or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) for w in window):
        raise ConfigError(
            f"window must be {dims} integers (one per spatial axis of {tuple(inputs.shape)}), got {window}"
        )
    if min(window) < 1:
        raise ConfigError(f"window sides must be positive, got {window}")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if blend not in BLENDS:
        raise ConfigError(f"unknown blend {blend!r}; choose one of {', '.join(BLENDS)}")
    if pad_mode not in PAD_MODES:
        raise ConfigError(f"unknown pad_mode {pad_mode!r}; choose one of {', '.join(PAD_MODES)}")
    if int(batch_size) < 1 or int(size_divisor) < 1:
        raise ConfigError(f"batch_size and size_divisor must be >= 1, got {batch_size} and {size_divisor}")
    return [int(w) for w in window]


def _reflect_index(size: int, length: int, device: torch.device) -> torch.Tensor:
    """Indices 0..length-1 into an axis of ``size`` that mirror it past its end (without repeating the
    edge), as often as needed: numpy's "reflect" for pads of any width."""
    index = torch.arange(length, device=device)
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index % period
    return torch.where(index < size, index, period - index)


def _pad_end(inputs: torch.Tensor, sizes: Sequence[int], mode: str) -> torch.Tensor:
    extra = [target - size for target, size in zip(sizes, inputs.shape[2:], strict=True)]
    if not any(extra):
        return inputs
    if mode == "constant":
        pads = [p for e in reversed(extra) for p in (0, e)]  # F.pad lists the last axis first
        return F.pad(inputs, pads)
    for axis, target in enumerate(sizes):
        if target > inputs.shape[axis + 2]:
            inputs = inputs.index_select(axis + 2, _reflect_index(inputs.shape[axis + 2], target, inputs.device))
    return inputs


def _starts(size: int, tile: int, overlap: float) -> list[int]:
    if size <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def importance_map(tile: Sequence[int], blend: str = "gaussian", device: Any = None) -> torch.Tensor:
    """Blending weights [*tile], float32: a Gaussian with sigma = tile / 8 and peak 1, clamped at
    ``GAUSSIAN_FLOOR``, or ones."""
    if blend == "constant":
        return torch.ones(tuple(tile), device=device)
    weight = torch.ones((), device=device)
    for side in tile:
        x = torch.arange(side, device=device, dtype=torch.float64)
        profile = torch.exp(-0.5 * ((x - (side - 1) / 2) / (side / 8)) ** 2)
        weight = weight[..., None] * (profile / profile.max())
    return weight.clamp(min=GAUSSIAN_FLOOR).float()


def _as_tensor(output: Any, device: torch.device) -> torch.Tensor:
    if isinstance(output, np.ndarray):
        output = torch.from_numpy(np.ascontiguousarray(output))
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"predict must return a torch tensor or numpy array, got {type(output).__name__}")
    return output.to(device)


@torch.no_grad()
def sliding_window_inference(
    predict: Callable[[torch.Tensor], Any],
    inputs: torch.Tensor,
    window: Sequence[int],
    *,
    overlap: float = 0.5,
    blend: str = "gaussian",
    batch_size: int = 4,
    size_divisor: int = 1,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """Dense predictions for ``inputs`` assembled from overlapping tiles (module docstring).

    Args:
        predict: Maps a batch of tiles [N, C, *tile] to logits [N, K, *tile] (tensor or numpy array).
        inputs: [B, C, *S], 2D or 3D.
        window: Tile size per spatial axis.
        overlap: Fraction of a tile shared with its neighbour, in [0, 1).
        blend: "gaussian" or "constant" importance map.
        batch_size: Tiles per ``predict`` call.
        size_divisor: Round the tile size up to a multiple of this (e.g. 32 for a U-Net with 5 poolings).
        pad_mode: How inputs shorter than the tile are padded: "constant" (zeros) or "reflect".

    Returns:
        Blended logits [B, K, *S] on the inputs' device.

    Raises:
        ConfigError: A window that does not fit the inputs, or an option out of range.
    """
    window = _check(inputs, window, overlap, blend, batch_size, size_divisor, pad_mode)
    tile = [math.ceil(w / size_divisor) * size_divisor for w in window]
    spatial = list(inputs.shape[2:])
    padded_size = [max(s, t) for s, t in zip(spatial, tile, strict=True)]
    padded = _pad_end(inputs, padded_size, pad_mode)
    crop = (slice(None), slice(None), *(slice(0, s) for s in spatial))
    starts = [_starts(size, t, overlap) for size, t in zip(padded_size, tile, strict=True)]
    boxes = [tuple(slice(s, s + t) for s, t in zip(corner, tile, strict=True)) for corner in itertools.product(*starts)]
    if len(boxes) == 1:  # no blending arithmetic: exactly the whole-image result
        device = inputs.device
        chunks = padded.split(batch_size)
        logits = torch.cat([_checked(_as_tensor(predict(c), device), len(c), tile) for c in chunks])
        return logits.to(torch.promote_types(logits.dtype, torch.float32))[crop]

    weight = importance_map(tile, blend, inputs.device)
    out: torch.Tensor | None = None
    samples = [(image, box) for box in boxes for image in range(inputs.shape[0])]
    for first in range(0, len(samples), batch_size):
        chunk = samples[first : first + batch_size]
        batch = torch.cat([padded[(slice(image, image + 1), slice(None), *box)] for image, box in chunk])
        logits = _checked(_as_tensor(predict(batch), inputs.device), len(chunk), tile)
        if out is None:
            dtype = torch.promote_types(logits.dtype, torch.float32)
            out = torch.zeros((inputs.shape[0], logits.shape[1], *padded_size), dtype=dtype, device=inputs.device)
        for (image, box), tile_logits in zip(chunk, logits, strict=True):
            out[(image, slice(None), *box)] += tile_logits * weight
    total = torch.zeros(padded_size, dtype=out.dtype, device=inputs.device)
    for box in boxes:
        total[box] += weight
    return (out / total)[crop]


def _checked(logits: torch.Tensor, count: int, tile: Sequence[int]) -> torch.Tensor:
    if logits.dim() != len(tile) + 2 or logits.shape[0] != count or list(logits.shape[2:]) != list(tile):
        raise ValueError(
            f"predict returned {tuple(logits.shape)} for {count} tiles of {tuple(tile)}; it must return "
            f"[{count}, K, {', '.join(map(str, tile))}] (resize strided outputs to the tile size inside predict)"
        )
    return logits
