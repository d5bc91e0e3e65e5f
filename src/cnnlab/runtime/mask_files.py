"""Segmentation predictions written as files: a class-id mask per input (palette PNG for images,
NIfTI or .npz for volumes) and, for images, an overlay of the classes on the original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.runtime.draw import PALETTE

OVERLAY_ALPHA = 0.45  # enough colour to see the classes, enough image to see what they cover
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def palette_bytes(num_classes: int) -> list[int]:
    """A PNG palette: black background, then the drawing palette cycled over the classes."""
    colours = [(0, 0, 0)] + [PALETTE[(k - 1) % len(PALETTE)] for k in range(1, max(num_classes, 1))]
    flat = [v for colour in colours for v in colour]
    return flat + [255, 255, 255] * (256 - len(colours))


def save_masks(results: list[dict[str, Any]], folder: str | Path, num_classes: int) -> None:
    """Writes each result's ``mask`` under ``folder`` and replaces it by the file's path (so the
    results print as JSON); an image input also gets ``overlay``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for result in results:
        mask = result.get("mask")
        if mask is None:
            continue
        mask = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        source = Path(result["input"])
        stem = _stem(source)
        if mask.ndim == 3:
            result["mask"] = str(_save_volume(mask, source, out / stem))
            continue
        path = out / f"{stem}.mask.png"
        image = Image.fromarray(mask.astype(np.uint8), mode="P")
        image.putpalette(palette_bytes(num_classes))
        image.save(path)
        result["mask"] = str(path)
        if source.is_file():
            result["overlay"] = str(_save_overlay(source, mask, num_classes, out / f"{stem}.overlay.png"))


def strip_masks(results: list[dict[str, Any]]) -> None:
    """Without an output folder the arrays are left out; class shares and sizes stay."""
    for result in results:
        result.pop("mask", None)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", *(path.suffixes[-1:] if path.suffixes else [])):
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _save_overlay(source: Path, mask: np.ndarray, num_classes: int, path: Path) -> Path:
    from cnnlab.data.images import load_image

    image = load_image(source).numpy().transpose(1, 2, 0)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    colours = np.array(palette_bytes(num_classes)[: 3 * 256], dtype=np.float32).reshape(256, 3)[mask]
    painted = mask > 0
    blended = image.astype(np.float32)
    blended[painted] = (1 - OVERLAY_ALPHA) * blended[painted] + OVERLAY_ALPHA * colours[painted]
    Image.fromarray(blended.round().astype(np.uint8)).save(path)
    return path


def _save_volume(mask: np.ndarray, source: Path, base: Path) -> Path:
    """NIfTI with the input's own affine when the input was NIfTI (so viewers overlay it), else .npz."""
    if source.name.endswith(NIFTI_SUFFIXES):
        import nibabel as nib

        reference = nib.load(str(source))
        # the reader lays volumes out as [D, H, W] = the NIfTI's (z, y, x); back to (x, y, z)
        path = base.with_name(base.name + ".mask.nii.gz")
        nib.save(nib.Nifti1Image(mask.transpose(2, 1, 0).astype(np.uint8), reference.affine), str(path))
        return path
    path = base.with_name(base.name + ".mask.npz")
    np.savez_compressed(path, label=mask.astype(np.uint8))
    return path
