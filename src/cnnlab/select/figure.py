"""The selection's picture: validation accuracy against deployed latency, the frontier, the budget."""

from __future__ import annotations

import io
from pathlib import Path

from cnnlab.runs.atomic import atomic_write_bytes
from cnnlab.select.explain import Point


def pareto_png(found: list[Point], recommended: str, max_latency_ms: float | None, path: Path) -> Path:
    """One marker per trained candidate (area: size on disk; hollow: eliminated before the last round),
    the Pareto frontier as a line, the latency ceiling as a dashed line, the recommendation starred.
    Points near the lowest accuracy (untrained-looking ones) are not labelled; the table has them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 5.0), dpi=110)
    biggest = max((p.size_bytes for p in found), default=1) or 1
    last_round = max((p.round for p in found), default=0)
    floor = min((p.val_top1 for p in found), default=0.0)
    for p in found:
        area = 30 + 400 * p.size_bytes / biggest
        final = p.round == last_round
        ax.scatter(
            [p.latency_ms],
            [100 * p.val_top1],
            s=area,
            alpha=0.7,
            facecolors="tab:blue" if final else "none",
            edgecolors="tab:blue",
        )
        if final or p.pareto or p.val_top1 > floor + 0.05:  # a cluster at chance level is left to the table
            ax.annotate(
                p.candidate, (p.latency_ms, 100 * p.val_top1), textcoords="offset points", xytext=(6, 4), fontsize=7
            )
    front = sorted((p for p in found if p.pareto), key=lambda p: p.latency_ms)
    if len(front) > 1:
        ax.plot(
            [p.latency_ms for p in front],
            [100 * p.val_top1 for p in front],
            color="tab:orange",
            lw=1.2,
            label="Pareto frontier",
        )
    pick = next((p for p in found if p.candidate == recommended), None)
    if pick is not None:
        ax.scatter(
            [pick.latency_ms],
            [100 * pick.val_top1],
            marker="*",
            s=260,
            color="tab:red",
            zorder=5,
            label=f"recommended: {pick.candidate}",
        )
    if max_latency_ms is not None:
        ax.axvline(max_latency_ms, color="grey", ls="--", lw=1, label=f"budget {max_latency_ms:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, deployed runtime (ms, log scale)")
    ax.set_ylabel("validation top-1 (%) after proxy training")
    ax.set_title("selection: filled = last round, hollow = eliminated earlier; area = size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
