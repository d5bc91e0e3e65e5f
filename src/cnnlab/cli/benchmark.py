"""cnnlab benchmark"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json
from cnnlab.cli.profile import _ints


def benchmark(
    target: Annotated[str, typer.Argument(help="Run directory (torch + every export) or one artifact file.")],
    runtimes: Annotated[str, typer.Option(help="Runtimes, comma-separated, or all.")] = "all",
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    threads: Annotated[int | None, typer.Option(help="Threads for every runtime (default: physical cores).")] = None,
    rounds: Annotated[int, typer.Option(help="Alternating rounds.")] = 5,
    no_e2e: Annotated[bool, typer.Option("--no-e2e", help="Skip the end-to-end (decode + pre + post) timing.")] = False,
    no_memory: Annotated[bool, typer.Option("--no-memory", help="Skip the per-runtime peak memory processes.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Latency of every runtime side by side (alternating), model-only and end-to-end, with the protocol stated.

    Example: cnnlab benchmark runs/digits --runtimes all --batch 1,32
    """
    from cnnlab.runtime.benchmark import benchmark as run_benchmark

    report = run_benchmark(
        target,
        runtimes=[r.strip() for r in runtimes.split(",") if r.strip()],
        batch_sizes=_ints(batch, "--batch"),
        threads=threads,
        rounds=rounds,
        end_to_end=not no_e2e,
        memory=not no_memory,
    )
    if json_out:
        print_json(report.to_dict())
        return
    from rich.table import Table

    table = Table(
        title=f"{target}  input {'x'.join(map(str, report.input_size))}",
        title_justify="left",
        caption=report.protocol,
        caption_justify="left",
    )
    for column in (
        "runtime",
        "batch",
        "median ms",
        "p95 ms",
        "min ms",
        "img/s",
        "end-to-end ms",
        "GFLOP/s",
        "% of peak",
        "memory",
        "vs torch",
    ):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    for r in report.results:
        speedup = report.speedups(r.batch).get(r.runtime)
        table.add_row(
            r.runtime,
            str(r.batch),
            f"{r.model.median_ms:.2f}",
            f"{r.model.p95_ms:.2f}",
            f"{r.model.min_ms:.2f}",
            f"{1000 * r.batch / r.model.median_ms:.0f}",
            f"{r.end_to_end.median_ms:.1f}" if r.end_to_end else "-",
            f"{r.gflops:.1f}" if r.gflops else "-",
            f"{100 * r.peak_fraction:.0f}%" if r.peak_fraction else "-",
            f"+{r.runtime_mb:.0f} MB" if r.runtime_mb is not None else "-",
            f"{speedup:.2f}x" if speedup else "-",
        )
    console.print(table)
    console.print(
        "[dim]memory: what loading the runtime and running the model adds to a process with torch "
        "imported (peak resident set, measured in a separate process per runtime)[/]"
    )
    for name, reason in report.skipped.items():
        console.print(f"[dim]skipped {name}: {reason}[/]")
