"""cnnlab compress"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, human_bytes, human_count, print_json


def compress(
    run: Annotated[str, typer.Argument(help="The trained run to compress.")],
    quantize: Annotated[str | None, typer.Option(help="int8: post-training quantization (QAT when needed).")] = None,
    prune: Annotated[float | None, typer.Option(help="Share of channels to remove, e.g. 0.5.")] = None,
    distill_from: Annotated[str | None, typer.Option(help="A teacher run supervising the recovery.")] = None,
    max_drop: Annotated[float, typer.Option(help="Largest top-1 loss accepted, in points (validation).")] = 1.0,
    calibration: Annotated[str, typer.Option(help="minmax, entropy or percentile.")] = "minmax",
    runtime: Annotated[str, typer.Option(help="Where latency decides: onnxruntime or openvino.")] = "onnxruntime",
    recover_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after each pruning step.")] = 2,
    prune_steps: Annotated[int, typer.Option(help="Pruning steps (prune, recover, measure).")] = 4,
    importance: Annotated[str, typer.Option(help="Channel importance: magnitude or taylor.")] = "magnitude",
    channel_multiple: Annotated[
        int | None,
        typer.Option(help="Pruned layers keep multiples of this many channels (default 16 on AVX-512, else 8)."),
    ] = None,
    qat_epochs: Annotated[int, typer.Option(help="Quantization-aware epochs if PTQ misses --max-drop (0: never).")] = 2,
    data: Annotated[str | None, typer.Option(help="Calibrate and evaluate on this data (default: the run's).")] = None,
    out: Annotated[str | None, typer.Option(help="New run directory (default runs/compress-<n>).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out run.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Make a trained model smaller or faster without losing accuracy; writes a new run and a report.

    Example: cnnlab compress runs/fmnist --quantize int8 --prune 0.5 --max-drop 1.0
    """
    from cnnlab.compress import compress_run

    report = compress_run(
        run,
        quantize=quantize,
        prune=prune,
        distill_from=distill_from,
        max_drop=max_drop,
        calibration=calibration,
        runtime=runtime,
        recover_epochs=recover_epochs,
        prune_steps=prune_steps,
        importance=importance,
        channel_multiple=channel_multiple,
        qat_epochs=qat_epochs,
        out=out,
        data=data,
        overwrite=overwrite,
        progress=None if not json_out else False,
    )
    if json_out:
        print_json(report.to_dict())
        return
    from rich.table import Table

    runtimes = sorted({r for s in report.steps for r in s.latency_ms})
    table = Table(title=f"{report.path}: compression of {run}", title_justify="left")
    for column in (
        "step",
        "val top-1",
        "test top-1",
        "params",
        "MACs",
        "size",
        *[f"{r} ms" for r in runtimes],
        "kept float",
    ):
        table.add_column(column, justify="left" if column in ("step", "kept float") else "right")
    for s in report.steps:
        table.add_row(
            s.name,
            f"{s.val_top1:.2%}",
            f"{s.test_top1:.2%}" if s.test_top1 is not None else "-",
            human_count(s.params) if s.params else "-",
            human_count(s.macs) if s.macs else "-",
            human_bytes(s.size_bytes),
            *[f"{s.latency_ms[r]:.3f}" if r in s.latency_ms else "-" for r in runtimes],
            ", ".join(f["group"] for f in s.float_layers) or "-",
        )
    console.print(table)
    console.print(
        f"[bold]verdict:[/] {report.verdict}\n[bold]deploy:[/] {report.recommended['artifact']} on "
        f"{report.recommended['runtime']}  (plot: {report.path}/compression.png)",
        soft_wrap=True,
    )
