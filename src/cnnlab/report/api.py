"""`write_report`: one self-contained HTML file (styles and figures inlined) for one or more runs.

It reads run directories only (run.json, metrics.csv/json, export/parity.json, compression.json and
the figures the runs drew), so a report can be written for any run, at any time, without the data
or the model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.report.collect import RunSummary, collect
from cnnlab.report.figures import accuracy_vs_latency, inline_png, learning_curves
from cnnlab.runs.atomic import atomic_write_text

TEMPLATE = Path(__file__).with_name("report.html.j2")


def _recommended_latency(run: RunSummary) -> tuple[str | None, float | None]:
    runtime = run.parity.get("recommended_runtime")
    for candidate in run.parity.get("runtime_candidates", []):
        if (
            candidate.get("runtime") == runtime
            and candidate.get("accepted", candidate.get("passed"))
            and candidate.get("median_ms")
        ):
            label = runtime if candidate.get("precision", "f32") == "f32" else f"{runtime} {candidate['precision']}"
            return label, float(candidate["median_ms"])
    return runtime, None


def overview_row(run: RunSummary) -> dict[str, Any]:
    runtime, latency = _recommended_latency(run)
    # a detector's row shows mAP@.5, a segmenter's mIoU
    test = run.metrics.get("top1", run.metrics.get("map50", run.metrics.get("miou")))
    if test is None and run.compression:
        test = (run.compression.get("recommended") or {}).get("test_top1")
    size = run.profile.get("size_bytes")
    return {
        "name": run.name,
        "path": str(run.path),
        "params": run.profile.get("params"),
        "macs": run.profile.get("macs"),
        "size_bytes": size.get("fp32") if isinstance(size, dict) else size,
        "command": run.command,
        "architecture": run.card.get("architecture") or (run.record.get("config") or {}).get("model"),
        "input": "x".join(str(v) for v in run.card.get("input_size", [])),
        "epochs": run.record.get("epochs"),
        "elapsed_s": run.record.get("elapsed_s"),
        "best_val": run.record.get("best_val"),
        "test_top1": test,
        "macro_f1": run.metrics.get("macro_f1"),
        "runtime": runtime,
        "latency_ms": latency,
        "status": run.record.get("status"),
    }


def _per_class(run: RunSummary) -> list[dict[str, Any]]:
    return [{"name": name, **values} for name, values in (run.metrics.get("per_class") or {}).items()]


def _sections(run: RunSummary) -> dict[str, Any]:
    plan = run.record.get("plan") or {}
    return {
        "summary": run,
        "reasoning": plan.get("reasoning") or [],
        "recipe": {
            k: plan.get(k)
            for k in ("recipe", "optimizer", "lr", "weight_decay", "label_smoothing", "epochs")
            if plan.get(k) is not None
        },
        "per_class": _per_class(run),
        "confusion": inline_png(run.images["confusion_matrix"]) if "confusion_matrix" in run.images else None,
        "cam_samples": inline_png(run.images["cam_samples"]) if "cam_samples" in run.images else None,
        "compression_plot": inline_png(run.images["compression"]) if "compression" in run.images else None,
        "parity": run.parity.get("parity") or {},
        "candidates": run.parity.get("runtime_candidates") or [],
        "steps": run.compression.get("steps") or [],
        "verdict": run.compression.get("verdict"),
        "skipped": (run.record.get("skipped") or {}).get("total", 0),
        "selection": _selection(run),
    }


def _selection(run: RunSummary) -> dict[str, Any] | None:
    """The selection's recommendation, reasons, frontier and every measured candidate."""
    if not run.selection:
        return None
    return {
        "recommended": run.selection.get("recommended"),
        "rationale": run.selection.get("rationale") or [],
        "error": run.selection.get("error"),
        "candidates": run.selection.get("candidates") or [],
        "excluded": run.selection.get("excluded") or {},
        "pareto": {p["candidate"]: p for p in run.selection.get("pareto") or []},
        "figure": inline_png(run.images["pareto"]) if "pareto" in run.images else None,
    }


def write_report(runs: Sequence[str | Path], out: str | Path | None = None, title: str | None = None) -> Path:
    """Write the report; default path: RUN/report.html for one run, ./report.html for several."""
    if not runs:
        raise ConfigError("give at least one run directory to report on")
    summaries = [collect(r) for r in runs]
    names = [s.name for s in summaries]
    if len(set(names)) != len(names):
        names = [str(s.path) for s in summaries]
    target = Path(out) if out else (summaries[0].path / "report.html" if len(summaries) == 1 else Path("report.html"))
    if target.is_dir():
        target = target / "report.html"
    import jinja2

    import cnnlab

    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    environment.filters["pct"] = lambda v: "–" if v is None else f"{100 * float(v):.2f}%"
    environment.filters["num"] = lambda v, d=2: "–" if v is None else f"{float(v):,.{d}f}"
    environment.filters["count"] = lambda v: "–" if v is None else f"{int(v):,}"
    rows = [overview_row(s) for s in summaries]
    html = environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        title=title or ("cnnlab report: " + ", ".join(names[:4]) + ("…" if len(names) > 4 else "")),
        generated=time.strftime("%Y-%m-%d %H:%M"),
        version=cnnlab.__version__,
        rows=rows,
        curves=learning_curves(summaries),
        scatter=accuracy_vs_latency(rows),
        runs=[_sections(s) for s in summaries],
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(target, html)
