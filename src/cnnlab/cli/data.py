"""cnnlab data info"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json

app = typer.Typer(help="Inspect datasets: formats, classes, splits, skipped files.", no_args_is_help=True)


@app.command("info", no_args_is_help=True)
def info(
    source: Annotated[str, typer.Argument(help="A folder, a CSV, or builtin:NAME.")],
    seed: Annotated[int, typer.Option(help="Seed of the splits cnnlab carves.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Classes, split sizes and per-class counts, and every file that was skipped and why.

    Example: cnnlab data info builtin:fashion-mnist
    """
    from cnnlab.data import open_dataset

    described = open_dataset(source, seed=seed).describe()
    if json_out:
        print_json(described)
        return
    from rich.table import Table

    splits = described["splits"]
    table = Table(
        title=f"{described['name']}: {described['num_classes']} classes, {described['channels']} channel(s)"
        + (f", {described['native_size'][0]}x{described['native_size'][1]} px" if described["native_size"] else ""),
        title_justify="left",
        caption=described["split_policy"],
        caption_justify="left",
    )
    table.add_column("class")
    for name in splits:
        table.add_column(f"{name} ({splits[name]['size']})", justify="right")
    for i, cls in enumerate(described["classes"]):
        table.add_row(cls, *[str(splits[name]["class_counts"][i]) for name in splits])
    console.print(table)
    skipped = described["skipped"]
    if skipped.get("total"):
        console.print(
            f"[yellow]skipped {skipped['total']} files[/]: "
            + ", ".join(f"{reason} {count}" for reason, count in skipped["counts"].items())
        )
        for example in skipped.get("examples", [])[:10]:
            console.print(f"  {example['file']}: {example['reason']} ({example['detail']})")
