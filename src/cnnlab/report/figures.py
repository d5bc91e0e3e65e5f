"""The report's figures, drawn with matplotlib and inlined as base64 PNG."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from cnnlab.report.collect import RunSummary


def inline_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_to_data(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def learning_curves(runs: list[RunSummary]) -> str | None:
    """Training loss, validation loss and top-1 (detectors: validation mAP and mAP@.5) per epoch; one line per run."""
    runs = [r for r in runs if r.history]
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    detection = any("val_map50" in row for run in runs for row in run.history)
    segmentation = any("val_miou" in row for run in runs for row in run.history)
    score = ("val_map50", "validation mAP@.5") if detection else ("val_top1", "validation top-1")
    second = ("val_map", "validation mAP@[.5:.95]") if detection else ("val_loss", "validation loss")
    if segmentation:
        score, second = ("val_miou", "validation mIoU"), ("val_mdice", "validation mean Dice")
    panels = [("train_loss", "training loss"), second, score]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for axis, (key, title) in zip(axes, panels, strict=True):
        for run in runs:
            points = [(row["epoch"], row[key]) for row in run.history if isinstance(row.get(key), float)]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", markersize=3, label=run.name)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _figure_to_data(fig)


def accuracy_vs_latency(rows: list[dict[str, Any]]) -> str | None:
    """Test top-1 against batch-1 latency for runs that have both (a comparison's scatter)."""
    points = [r for r in rows if r.get("test_top1") is not None and r.get("latency_ms")]
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 4))
    for row in points:
        axis.scatter(row["latency_ms"], 100 * row["test_top1"], s=40)
        axis.annotate(
            row["name"],
            (row["latency_ms"], 100 * row["test_top1"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    axis.set_xlabel("batch-1 latency, ms (recommended runtime)")
    axis.set_ylabel("test top-1, %")
    axis.grid(alpha=0.3)
    return _figure_to_data(fig)
