"""Figures for evaluation results (matplotlib, headless)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from cnnlab.runs.atomic import atomic_write_bytes


def confusion_matrix_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix (recall per class on the diagonal), counts written in when legible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(class_names)
    side = min(14.0, max(4.5, 0.45 * k + 2.5))
    fig, ax = plt.subplots(figsize=(side, side * 0.9), dpi=110)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8 if k > 12 else 9)
    ax.set_yticks(range(k), class_names, fontsize=8 if k > 12 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{int(counts[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black",
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
