"""The root command and its verbs (see DESIGN.md for the vocabulary)."""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab import __version__
from cnnlab.cli import benchmark as benchmark_cmd
from cnnlab.cli import compare as compare_cmd
from cnnlab.cli import compress as compress_cmd
from cnnlab.cli import data as data_cmd
from cnnlab.cli import design as design_cmd
from cnnlab.cli import evaluate as evaluate_cmd
from cnnlab.cli import export as export_cmd
from cnnlab.cli import fit as fit_cmd
from cnnlab.cli import models as models_cmd
from cnnlab.cli import predict as predict_cmd
from cnnlab.cli import profile as profile_cmd
from cnnlab.cli import report as report_cmd
from cnnlab.cli import select as select_cmd
from cnnlab.cli import train as train_cmd

app = typer.Typer(
    name="cnnlab",
    help="A workbench for CNN architectures: select, train, design, compress, export, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnlab {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """A workbench for CNN architectures: select, train, design, compress, export, report."""


app.add_typer(models_cmd.app, name="models")
app.add_typer(data_cmd.app, name="data")
app.add_typer(design_cmd.app, name="design")
app.command("profile", no_args_is_help=True)(profile_cmd.profile)
app.command("train", no_args_is_help=True)(train_cmd.train)
app.command("evaluate", no_args_is_help=True)(evaluate_cmd.evaluate)
app.command("predict", no_args_is_help=True)(predict_cmd.predict)
app.command("export", no_args_is_help=True)(export_cmd.export)
app.command("benchmark", no_args_is_help=True)(benchmark_cmd.benchmark)
app.command("compress", no_args_is_help=True)(compress_cmd.compress)
app.command("report", no_args_is_help=True)(report_cmd.report)
app.command("select", no_args_is_help=True)(select_cmd.select)
app.command("fit", no_args_is_help=True)(fit_cmd.fit)
app.command("compare", no_args_is_help=True)(compare_cmd.compare)
