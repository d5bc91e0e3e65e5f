"""cnnlab predict"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json


def predict(
    target: Annotated[str, typer.Argument(help="Run directory, exported artifact, or registry model (pretrained).")],
    inputs: Annotated[list[str], typer.Argument(help="Image files and folders.")],
    top_k: Annotated[int, typer.Option(help="How many classes to list per image.")] = 5,
    runtime: Annotated[str, typer.Option(help="auto (the export's pick), torch, onnxruntime, openvino, ...")] = "auto",
    cam: Annotated[
        bool, typer.Option("--cam", help="Also write a Grad-CAM overlay PNG per image (runs only).")
    ] = False,
    cam_dir: Annotated[str | None, typer.Option(help="Where --cam writes (default RUN/cam).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Top-k labels with probabilities for images; unreadable files are reported, not fatal.

    Example: cnnlab predict runs/digits samples/ --top-k 3 --cam
    """
    if cam:
        from pathlib import Path

        from cnnlab.explain import explain_images

        results = explain_images(target, inputs, cam_dir or Path(target) / "cam", top_k=top_k)
    else:
        from cnnlab.runtime import predict as run_predict

        results = run_predict(target, inputs, top_k=top_k, runtime=runtime)
    if json_out:
        print_json(results)
        return
    from rich.table import Table

    table = Table(title=f"{target}: {len(results)} images", title_justify="left")
    columns = ["input", "label", "probability", f"top-{top_k}"] + (["Grad-CAM"] if cam else [])
    for column in columns:
        table.add_column(column, justify="right" if column == "probability" else "left")
    for r in results:
        if "error" in r:
            table.add_row(r["input"], "[red]unreadable[/]", "", r["error"], *([""] if cam else []))
            continue
        others = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top_k"][1:])
        table.add_row(r["input"], r["label"], f"{r['probability']:.1%}", others, *([r["cam"]] if cam else []))
    console.print(table)
