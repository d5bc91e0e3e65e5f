"""cnnlab export"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, err_console, print_json


def export(
    target: Annotated[str, typer.Argument(help="Run directory (or, with --check, a model name or spec).")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx, openvino, torchscript, tflite or all.")] = "onnx",
    check: Annotated[
        bool, typer.Option("--check", help="Pre-flight: which formats will this architecture convert to?")
    ] = False,
    data: Annotated[str | None, typer.Option(help="Also compare the task metric on this data's test split.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 18,
    tolerance: Annotated[float, typer.Option(help="Parity tolerance, relative to the largest output.")] = 1e-3,
    samples: Annotated[int, typer.Option(help="Images in the parity batch.")] = 32,
    precision: Annotated[
        str,
        typer.Option(
            help="Served precision: auto (bf16 only where verified), f32, or bf16 (OpenVINO bf16 even where it "
            "moved the outputs past the tolerance; reported unverified)."
        ),
    ] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Export a run to deployable formats; every export is checked against the trained model (parity).

    Example: cnnlab export runs/digits --format onnx,openvino --data builtin:digits

    Serve OpenVINO's bf16 even where it changes outputs: cnnlab export runs/digits -f onnx,openvino --precision bf16
    """
    from cnnlab.export import check_exportability, export_run, parse_formats

    formats = parse_formats(format if not (check and format == "onnx") else "all")
    if check:
        results = check_exportability(target, formats)
        if json_out:
            print_json(results)
            return
        for name, r in results.items():
            mark = "[green]ok[/]" if r["ok"] else "[red]no[/]"
            ops = f" — blocked by {', '.join(r['blocking_ops'])}" if r["blocking_ops"] else ""
            console.print(f"{mark} {name:12s} {r['reason']}{ops}", soft_wrap=True)
        return
    from cnnlab.export.api import ExportError

    try:
        report = export_run(
            target, formats, opset=opset, rtol=tolerance, samples=samples, data=data, precision=precision
        )
    except ExportError as exc:
        if json_out:
            from pathlib import Path

            from cnnlab.runtime.artifact_card import load_json

            parity = Path(target) / "export" / "parity.json"
            print_json(load_json(parity) if parity.is_file() else {"error": str(exc)})
        raise
    if json_out:
        print_json(report.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"{report.path}  (parity on {next(iter(report.parity.values())).data})", title_justify="left")
    # Dense tasks compare what they draw: detection the boxes, segmentation the argmax masks.
    boxes = any(p.task_agreement for p in report.parity.values())
    masks = any("pixel_agreement" in (p.task_agreement or {}) for p in report.parity.values())
    agree = "pixels agree" if masks else "boxes (same count, min IoU)" if boxes else "top-1 agree"
    for column in ("format", "artifact", "max |diff|", "mean |diff|", agree, "verdict"):
        table.add_column(column, justify="left" if column in ("format", "artifact", "verdict") else "right")
    for name, p in report.parity.items():
        info = report.artifacts[name]
        task = p.task_agreement
        table.add_row(
            name,
            str(info["path"].name),
            f"{p.max_abs_diff:.2e}",
            f"{p.mean_abs_diff:.2e}",
            _agreement(task) if task else f"{p.top1_agreement:.1%}",
            "[green]pass[/]" if p.passed else "[red]FAIL[/]",
        )
    console.print(table)
    if report.runtime_candidates:
        runtimes = Table(title="runtime choice (batch 1, alternating rounds)", title_justify="left")
        columns = ("runtime", "precision", "max |diff|", agree, "verified", "median ms")
        for column in columns:
            runtimes.add_column(column, justify="left" if column in ("runtime", "precision", "verified") else "right")
        for c in report.runtime_candidates:
            chosen = c["runtime"] == report.recommended_runtime and c["precision"] == report.recommended_precision
            runtimes.add_row(
                ("[bold]" if chosen else "") + c["runtime"],
                c["precision"],
                f"{c['max_abs_diff']:.2e}",
                _agreement(c["task_agreement"]) if c.get("task_agreement") else f"{c['top1_agreement']:.1%}",
                "yes" if c["passed"] else ("no, taken (--precision)" if c.get("accepted") else "no"),
                f"{c['median_ms']:.2f}" if c["median_ms"] else "-",
            )
        console.print(runtimes)
        err_console.print(
            f"recommended: [bold]{report.recommended_runtime} ({report.recommended_precision})[/], "
            f"used by `cnnlab predict {target}`"
        )


def _agreement(task: dict) -> str:
    if "pixel_agreement" in task:
        return f"{task['pixel_agreement']:.4%}"
    return f"{task['images_with_same_count']}, {task['min_matched_iou']:.4f}"
