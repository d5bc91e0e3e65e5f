"""cnnlab models list|info"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json

app = typer.Typer(help="Browse the model registry (timm, torchvision and cnnlab's own).", no_args_is_help=True)


@app.command("list")
def list_(
    task: Annotated[str | None, typer.Option(help="classify, detect, segment or embed.")] = None,
    family: Annotated[str | None, typer.Option(help="Architecture family, e.g. mobilenetv3.")] = None,
    pattern: Annotated[str | None, typer.Option(help="Shell-style wildcard over names, e.g. '*lite*'.")] = None,
    source: Annotated[str | None, typer.Option(help="cnnlab, torchvision or timm.")] = None,
    pretrained: Annotated[bool, typer.Option("--pretrained", help="Only models with pretrained weights.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List registered architectures.

    Example: cnnlab models list --family mobilenetv3 --pretrained
    """
    from cnnlab.registry import list_models

    entries = list_models(task=task, family=family, pattern=pattern, source=source)
    if pretrained:
        entries = [e for e in entries if e.pretrained]
    if json_out:
        print_json([e.to_dict() for e in entries])
        return
    from rich.table import Table

    table = Table(title=f"{len(entries)} models", title_justify="left")
    for column in ("name", "source", "task", "family", "year", "input", "pretrained"):
        table.add_column(column)
    for e in entries:
        weights = (
            "offline+hub"
            if e.has_offline_weights and e.has_hub_weights
            else ("offline" if e.has_offline_weights else "hub" if e.has_hub_weights else "")
        )
        table.add_row(e.name, e.source, e.task, e.family, str(e.year or ""), "x".join(map(str, e.input_size)), weights)
    console.print(table)


@app.command("info", no_args_is_help=True)
def info(
    name: Annotated[str, typer.Argument(help="Registry name.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show what the registry knows about one architecture.

    Example: cnnlab models info mobilenetv2_100
    """
    from cnnlab.registry import model_info

    data = model_info(name)
    if json_out:
        print_json(data)
        return
    from rich.table import Table

    table = Table(show_header=False, title=data["name"], title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if key == "pretrained":
            value = "\n".join(value) if value else "none"
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) if value else "-"
        table.add_row(key, str(value if value not in (None, "") else "-"))
    console.print(table)
