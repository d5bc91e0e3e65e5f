"""cnnlab compare"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, human_bytes, human_count, print_json, step_log


def compare(
    targets: Annotated[list[str], typer.Argument(help="Registry names, design specs (.yaml) or run directories.")],
    data: Annotated[str, typer.Option(help="Data source: a folder, a CSV, or builtin:NAME.")],
    epochs: Annotated[int | None, typer.Option(help="Epochs for every model (default 10 unless --budget).")] = None,
    budget: Annotated[str | None, typer.Option(help="Time budget per model instead, e.g. 5m.")] = None,
    recipe: Annotated[str, typer.Option(help="The one recipe for all: auto, scratch, finetune...")] = "auto",
    formats: Annotated[str, typer.Option(help="Export formats whose runtimes are timed.")] = "onnx",
    cam_samples: Annotated[int, typer.Option(help="Grad-CAM samples per model (0: none).")] = 8,
    seed: Annotated[int, typer.Option(help="Seed for splits and training.")] = 0,
    out: Annotated[str | None, typer.Option(help="Run directory (default runs/compare-<n>).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out run.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Train several architectures with the same recipe and budget; one side-by-side report.

    Example: cnnlab compare lenet5 cifar_resnet20 mobilenetv2_050 --data builtin:digits --epochs 10
    """
    from cnnlab.compare import compare_models
    from cnnlab.train import parse_duration

    result = compare_models(
        targets,
        data,
        epochs=epochs,
        budget_s=parse_duration(budget),
        recipe=recipe,
        formats=formats,
        cam_samples=cam_samples,
        out=out,
        overwrite=overwrite,
        seed=seed,
        log=step_log(json_out),
    )
    if json_out:
        print_json(result.to_dict())
        return
    from rich.table import Table

    runtimes = sorted({r for row in result.rows for r in row["latency_ms"]})
    table = Table(title=f"{result.path}: same data, recipe and budget", title_justify="left")
    for column in (
        "model",
        "test top-1",
        "macro F1",
        "params",
        "MACs",
        "size",
        *[f"{r} ms" for r in runtimes],
        "train s",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in result.rows:
        table.add_row(
            row["name"],
            f"{row['test_top1']:.2%}" if row["test_top1"] is not None else "-",
            f"{row['macro_f1']:.3f}" if row["macro_f1"] is not None else "-",
            human_count(row["params"] or 0),
            human_count(row["macs"] or 0),
            human_bytes(row["size_bytes"] or 0),
            *[f"{row['latency_ms'][r]:.3f}" if r in row["latency_ms"] else "-" for r in runtimes],
            f"{row['train_s']:.0f}" if row["train_s"] is not None else "-",
        )
    console.print(table)
    for note in result.notes:
        console.print(f"  note: {note}", soft_wrap=True)
    console.print(f"report {result.report}", soft_wrap=True)
