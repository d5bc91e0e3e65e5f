"""From measurements to a choice: the Pareto frontier, the recommendation, and its reasons in words."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cnnlab.select.halving import Trial
from cnnlab.select.measure import Cost


@dataclass
class Point:
    """A trained candidate: its best evidence (the latest round it reached) and what it costs."""

    candidate: str
    val_top1: float
    round: int
    latency_ms: float
    runtime: str
    size_bytes: int
    params: int
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def points(rounds: list[list[Trial]], costs: dict[str, Cost]) -> list[Point]:
    latest: dict[str, Trial] = {}
    for trials in rounds:
        for t in trials:
            if t.error is None and t.val_top1 is not None:
                latest[t.candidate] = t
    found = []
    for label, t in latest.items():
        cost = costs[label]
        found.append(
            Point(label, t.val_top1, t.round, cost.promised_ms or 0.0, cost.runtime or "", cost.size_bytes, cost.params)
        )
    mark_pareto(found)
    return sorted(found, key=lambda p: p.latency_ms)


def mark_pareto(found: list[Point]) -> None:
    """A point is on the frontier when no other is at least as accurate and at least as fast, and
    strictly better in one of the two."""
    for p in found:
        p.pareto = not any(
            q is not p
            and q.val_top1 >= p.val_top1
            and q.latency_ms <= p.latency_ms
            and (q.val_top1 > p.val_top1 or q.latency_ms < p.latency_ms)
            for q in found
        )


def recommend(finalists: list[Trial], costs: dict[str, Cost], tolerance: float) -> tuple[Trial, str | None]:
    """The most accurate finalist, unless a faster one is within ``tolerance`` points of it: equal
    accuracy within the noise of a proxy training is not worth paying latency for."""
    ranked = [t for t in finalists if t.error is None and t.val_top1 is not None]
    best = ranked[0]
    cheaper = [
        t
        for t in ranked[1:]
        if 100 * (best.val_top1 - t.val_top1) <= tolerance
        and (costs[t.candidate].promised_ms or 0) < (costs[best.candidate].promised_ms or 0)
    ]
    if not cheaper:
        return best, None
    pick = min(cheaper, key=lambda t: costs[t.candidate].promised_ms or 0)
    note = (
        f"{best.candidate} scored {100 * (best.val_top1 - pick.val_top1):.2f} points higher, within the "
        f"{tolerance:g}-point tolerance of a proxy training, at "
        f"{(costs[best.candidate].promised_ms or 0) / max(costs[pick.candidate].promised_ms or 1e-9, 1e-9):.1f}x "
        f"the latency; the faster model is recommended"
    )
    return pick, note


def rationale(
    pick: Trial,
    rounds: list[list[Trial]],
    costs: dict[str, Cost],
    excluded: dict[str, list[str]],
    budget_text: str,
    tie_note: str | None,
) -> list[str]:
    """Plain-language reasons: what the pick scored and costs, how it beat its neighbours, what it
    costs against the cheapest and the most accurate alternatives, and what the budget ruled out."""
    cost = costs[pick.candidate]
    lines = [
        f"{pick.candidate}: {pick.val_top1:.2%} validation top-1 after {pick.epochs} epochs ({pick.train_s:.0f}s) of "
        f"proxy training (round {pick.round + 1} of {len(rounds)}); {cost.promised_ms:.2f} ms at batch 1 on "
        f"{cost.runtime} ({budget_text}); {cost.size_bytes / 1e6:.1f} MB; {cost.params:,} parameters.",
    ]
    if tie_note:
        lines.append(tie_note + ".")
    final = rounds[-1]
    for other in final:
        if other.candidate == pick.candidate or other.error is not None or other.val_top1 is None:
            continue
        delta = 100 * (pick.val_top1 - other.val_top1)
        ratio = (costs[other.candidate].promised_ms or 0) / max(cost.promised_ms or 1e-9, 1e-9)
        if abs(delta) < 0.005:
            standing = f"It ties with {other.candidate} in the same final round"
        else:
            verb = "beats" if delta > 0 else "trails"
            standing = f"It {verb} {other.candidate} by {abs(delta):.2f} points in the same final round"
        lines.append(f"{standing}; {other.candidate} runs at {ratio:.2f}x its latency.")
    for i, trials in enumerate(rounds[:-1]):
        dropped = [t for t in trials if t.candidate not in {u.candidate for u in rounds[i + 1]}]
        if dropped:
            mine = next((t for t in trials if t.candidate == pick.candidate), None)
            best_dropped = next((t for t in dropped if t.error is None and t.val_top1 is not None), None)
            most = max(t.max_epochs for t in trials)
            text = f"Round {i + 1} (at most {most} epoch{'s' if most > 1 else ''} each) eliminated {len(dropped)}"
            if best_dropped is not None and mine is not None and mine.val_top1 is not None:
                text += (
                    f"; the best of them, {best_dropped.candidate}, reached {best_dropped.val_top1:.2%} "
                    f"against {mine.val_top1:.2%} for {pick.candidate}"
                )
            lines.append(text + ".")
    failed = [t for trials in rounds for t in trials if t.error]
    if failed:
        lines.append("Could not train: " + "; ".join(f"{t.candidate} ({t.error})" for t in failed) + ".")
    if excluded:
        shown = sorted(excluded.items(), key=lambda kv: kv[0])
        lines.append(
            f"Outside the budget, not trained ({len(excluded)}): "
            + "; ".join(f"{name} ({', '.join(why)})" for name, why in shown)
            + "."
        )
    return lines
