"""The optimization report: baseline against every step, as a table (compression.json) and a plot."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.runs.atomic import atomic_write_bytes


@dataclass
class StepRecord:
    name: str
    val_top1: float
    test_top1: float | None
    params: int | None
    macs: int | None
    size_bytes: int
    latency_ms: dict[str, float] = field(default_factory=dict)
    float_layers: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plot(steps: list[StepRecord], runtime: str, path: Path) -> Path:
    """Accuracy against latency, one point per step, marker area proportional to size on disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    biggest = max(s.size_bytes for s in steps) or 1
    for s in steps:
        ms = s.latency_ms.get(runtime)
        accuracy = s.test_top1 if s.test_top1 is not None else s.val_top1
        if ms is None:
            continue
        ax.scatter([ms], [100 * accuracy], s=40 + 400 * s.size_bytes / biggest, alpha=0.6)
        ax.annotate(s.name, (ms, 100 * accuracy), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel(f"batch-1 latency on {runtime} (ms)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("compression steps (marker area: size on disk)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
