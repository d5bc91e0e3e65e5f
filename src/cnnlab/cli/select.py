"""cnnlab select"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, human_bytes, human_count, print_json, step_log


def _candidates(text: str | None) -> list[str] | None:
    return [c for c in (text or "").split(",") if c.strip()] or None


def select(
    data: Annotated[str, typer.Option(help="Data source: a folder, a CSV, or builtin:NAME.")],
    max_latency: Annotated[str | None, typer.Option(help="Batch-1 latency ceiling, e.g. 5ms.")] = None,
    max_size: Annotated[str | None, typer.Option(help="Model file ceiling, e.g. 20MB.")] = None,
    max_memory: Annotated[str | None, typer.Option(help="Activation memory ceiling at batch 1, e.g. 64MB.")] = None,
    runtime: Annotated[str, typer.Option(help="Deployment runtime: auto (fastest), onnxruntime or openvino.")] = "auto",
    budget: Annotated[str, typer.Option(help="Time for the whole selection, e.g. 30m.")] = "30m",
    candidates: Annotated[
        str | None, typer.Option(help="Comma-separated NAME[@SIDE] (default: a pool that suits the data).")
    ] = None,
    max_epochs: Annotated[int, typer.Option(help="Epoch cap of a last-round proxy training.")] = 30,
    tolerance: Annotated[float, typer.Option(help="Points within which the faster finalist wins.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed for splits and training.")] = 0,
    out: Annotated[str | None, typer.Option(help="Run directory (default runs/select-<n>).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out run.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Pick the architecture for your data that fits your latency/size/memory budget on this machine.

    Example: cnnlab select --data builtin:fashion-mnist --max-latency 5ms --budget 30m
    """
    from cnnlab.select import select_architecture
    from cnnlab.train import parse_duration

    report = select_architecture(
        data,
        max_latency=max_latency,
        max_size=max_size,
        max_memory=max_memory,
        runtime=runtime,
        budget_s=parse_duration(budget) or 0.0,
        candidates=_candidates(candidates),
        out=out,
        overwrite=overwrite,
        max_epochs=max_epochs,
        tolerance=tolerance,
        seed=seed,
        log=step_log(json_out),
    )
    if json_out:
        print_json(report.to_dict())
        return
    from rich.table import Table

    trained = {p.candidate: p for p in report.points}
    table = Table(title=f"{report.path}: candidates ({report.budget.describe()})", title_justify="left")
    for column in ("candidate", "latency ms", "runtime", "size", "params", "MACs", "val top-1", "outcome"):
        table.add_column(column, justify="left" if column in ("candidate", "runtime", "outcome") else "right")
    for c in sorted(report.costs, key=lambda c: c.promised_ms or float("inf")):
        point = trained.get(c.candidate)
        outcome = (
            ", ".join(report.excluded[c.candidate])
            if c.candidate in report.excluded
            else (f"round {point.round + 1}" + (", Pareto" if point.pareto else "") if point else "not trained")
        )
        table.add_row(
            ("★ " if c.candidate == report.recommended else "") + c.candidate,
            f"{c.promised_ms:.3f}" if c.promised_ms is not None else "-",
            c.runtime or "-",
            human_bytes(c.size_bytes),
            human_count(c.params),
            human_count(c.macs),
            f"{point.val_top1:.2%}" if point else "-",
            outcome,
        )
    console.print(table)
    console.print(f"[bold]recommended:[/] {report.recommended}", soft_wrap=True)
    for line in report.rationale:
        console.print(f"  {line}", soft_wrap=True)
    console.print(
        f"selection took {report.timing['total_s']:.0f}s ({report.timing['trials']} proxy trainings); "
        f"details {report.path}/select.json, plot {report.path}/pareto.png",
        soft_wrap=True,
    )
