"""cnnlab report"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console


def report(
    runs: Annotated[list[str], typer.Argument(help="One or more run directories.")],
    out: Annotated[str | None, typer.Option(help="HTML file (default RUN/report.html, or ./report.html).")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the report.")] = None,
) -> None:
    """One self-contained HTML file for runs: curves, metrics, confusion matrix, parity, compression.

    Example: cnnlab report runs/digits runs/compress-1 --out comparison.html
    """
    from cnnlab.report import write_report

    path = write_report(runs, out=out, title=title)
    console.print(f"report written to {path}")
