"""cnnlab profile"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, human_bytes, human_count, print_json


def _ints(text: str, option: str) -> list[int]:
    from cnnlab.errors import ConfigError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give comma-separated integers, e.g. 1,32") from None
    if not values:
        raise ConfigError(f"{option} is empty")
    return values


def profile(
    targets: Annotated[list[str], typer.Argument(help="Registry names, design specs (.yaml) or run directories.")],
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    input: Annotated[str | None, typer.Option(help="Input size CxHxW (default: the model's).")] = None,
    runtimes: Annotated[str, typer.Option(help="Latency runtimes, comma-separated.")] = "torch",
    threads: Annotated[int | None, typer.Option(help="Intra-op threads (default: torch's).")] = None,
    runs: Annotated[int | None, typer.Option(help="Timed runs (default: as many as fit ~1.5 s).")] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Counts and memory only.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Parameters, MACs, activation memory, size and latency on this machine.

    Example: cnnlab profile resnet50 mobilenetv2_100 --batch 1,32
    """
    from cnnlab.profile import profile_many
    from cnnlab.registry.targets import parse_input_size

    reports = profile_many(
        targets,
        batch_sizes=_ints(batch, "--batch"),
        input_size=parse_input_size(input) if input else None,
        runtimes=[r.strip() for r in runtimes.split(",") if r.strip()],
        threads=threads,
        runs=runs,
        latency=not no_latency,
    )
    if json_out:
        print_json([r.to_dict() for r in reports] if len(reports) > 1 else reports[0].to_dict())
        return
    from rich.table import Table

    table = Table(title="profile", title_justify="left", caption=reports[0].protocol, caption_justify="left")
    for column in ("model", "input", "params", "GMACs", "fp32 size", "int8 est.", "batch", "activations"):
        table.add_column(column, justify="left" if column in ("model", "input") else "right")
    runtime_names = sorted({rt for r in reports for b in r.batches for rt in b.latency})
    for rt in runtime_names:
        table.add_column(f"{rt} median (p95) ms", justify="right")
        table.add_column(f"{rt} img/s", justify="right")
    for report in reports:
        for i, b in enumerate(report.batches):
            first = i == 0
            row = [
                report.name if first else "",
                "x".join(map(str, report.input_size)) if first else "",
                human_count(report.params) if first else "",
                f"{report.macs / 1e9:.3f}" if first else "",
                human_bytes(report.size["fp32"]) if first else "",
                human_bytes(report.size["int8_estimate"]) if first else "",
                str(b.batch),
                human_bytes(b.activation_bytes),
            ]
            for rt in runtime_names:
                stats = b.latency.get(rt)
                row += (
                    [f"{stats.median_ms:.2f} ({stats.p95_ms:.2f})", f"{1000 * b.batch / stats.median_ms:.0f}"]
                    if stats
                    else ["-", "-"]
                )
            table.add_row(*row)
    console.print(table)
    hw = reports[0].hardware
    console.print(f"[dim]{hw['cpu']}, {hw['cores']} cores; torch {reports[0].versions.get('torch')}[/]")
