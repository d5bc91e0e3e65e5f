"""cnnlab evaluate"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json


def evaluate(
    run: Annotated[str, typer.Argument(help="Run directory.")],
    data: Annotated[str | None, typer.Option(help="Data source (default: the run's own).")] = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 256,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Evaluate a run's model: top-1/top-5, per-class precision/recall/F1, confusion matrix, calibration
    (ECE); detectors COCO mAP; segmenters mIoU, IoU and Dice per class, and HD95 in mm for volumes.

    Example: cnnlab evaluate runs/digits --split test
    """
    from cnnlab.evaluate import evaluate_run

    metrics = evaluate_run(run, data=data, split=split, batch_size=batch_size)
    if json_out:
        print_json(metrics)
        return
    from rich.table import Table

    if "map" in metrics:
        _detection(run, split, metrics)
        return
    if "miou" in metrics:
        _segmentation(run, split, metrics)
        return
    table = Table(title=f"{run}: {metrics['data']} ({split}, {metrics['samples']} images)", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    top_k = next(k for k in metrics if k.startswith("top") and k != "top1")
    console.print(
        f"top-1 [bold]{metrics['top1']:.2%}[/]  {top_k} {metrics[top_k]:.2%}  macro-F1 {metrics['macro_f1']:.3f}  "
        f"ECE {metrics['ece']:.3f}  loss {metrics['loss']:.4f}\n"
        f"metrics: {run}/metrics.json  confusion matrix: {run}/confusion_matrix.png"
    )


def _detection(run: str, split: str, metrics: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{run}: {metrics['data']} ({split}, {metrics['images']} images)", title_justify="left")
    for column in ("class", "AP@[.5:.95]", "AP@.5"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, ap in metrics["ap_per_class"].items():
        ap50 = metrics["ap50_per_class"][name]
        table.add_row(name, "-" if ap is None else f"{ap:.3f}", "-" if ap50 is None else f"{ap50:.3f}")
    console.print(table)

    def size(key: str) -> str:
        return "-" if metrics[key] < 0 else f"{metrics[key]:.3f}"  # -1: no object of that size

    console.print(
        f"mAP@[.5:.95] [bold]{metrics['map']:.3f}[/]  mAP@.5 {metrics['map50']:.3f}  mAP@.75 {metrics['map75']:.3f}  "
        f"small/medium/large {size('map_small')}/{size('map_medium')}/{size('map_large')}  "
        f"mAR@100 {metrics['mar_100']:.3f}\nmetrics: {run}/metrics.json"
    )


def _segmentation(run: str, split: str, metrics: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{run}: {metrics['data']} ({split})", title_justify="left")
    hd95 = metrics.get("hd95_per_class")
    for column in ("class", "IoU", "Dice", *(["HD95 (mm)"] if hd95 else [])):
        table.add_column(column, justify="left" if column == "class" else "right")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"  # -: the class is in neither mask nor prediction

    for name, iou in metrics["iou_per_class"].items():
        extra = [cell(hd95.get(name))] if hd95 else []
        table.add_row(name, cell(iou), cell(metrics["dice_per_class"][name]), *extra)
    console.print(table)
    line = f"mIoU [bold]{metrics['miou']:.3f}[/]  mDice {metrics['mdice']:.3f}  "
    line += f"foreground mIoU {cell(metrics.get('miou_foreground'))}  mDice {cell(metrics.get('mdice_foreground'))}  "
    line += f"pixel accuracy {metrics['pixel_accuracy']:.3f}"
    if metrics.get("hd95_mm") is not None:
        line += f"  HD95 {metrics['hd95_mm']:.2f} mm"
    console.print(f"{line}\nmetrics: {run}/metrics.json")
