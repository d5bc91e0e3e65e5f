"""cnnlab predict"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json


def predict(
    target: Annotated[str, typer.Argument(help="Run directory, exported artifact, or registry model (pretrained).")],
    inputs: Annotated[list[str], typer.Argument(help="Image files and folders; video files for detectors.")],
    top_k: Annotated[int, typer.Option(help="How many classes to list per image.")] = 5,
    runtime: Annotated[str, typer.Option(help="auto (the export's pick), torch, onnxruntime, openvino, ...")] = "auto",
    cam: Annotated[
        bool, typer.Option("--cam", help="Also write a Grad-CAM overlay PNG per image (runs only).")
    ] = False,
    cam_dir: Annotated[str | None, typer.Option(help="Where --cam writes (default RUN/cam).")] = None,
    draw: Annotated[
        str | None,
        typer.Option(
            help="Write results here: detectors, copies with the boxes drawn (and annotated videos); "
            "segmenters, a mask per input (PNG, or NIfTI/.npz for volumes) and an overlay per image."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Top-k labels with probabilities (classifiers) or boxes (detectors) for images and videos;
    unreadable files are reported, not fatal.

    Example: cnnlab predict runs/digits samples/ --top-k 3 --cam

    A detector: cnnlab predict runs/shapes street.jpg clip.mp4 --draw out/

    A segmenter: cnnlab predict runs/seg scans/ --draw masks/
    """
    if cam:
        from pathlib import Path

        from cnnlab.explain import explain_images

        results = explain_images(target, inputs, cam_dir or Path(target) / "cam", top_k=top_k)
    else:
        from cnnlab.runtime import predict as run_predict

        results = run_predict(target, inputs, top_k=top_k, runtime=runtime, draw=draw)
    if json_out:
        print_json(results)
        return
    if any("detections" in r for r in results):
        _print_table(f"{target}: {len(results)} inputs", ("input", "objects", "found", "drawn / fps"), results, _boxes)
    elif any("class_share" in r for r in results):
        columns = ("input", "size", "classes found (share of pixels)", "mask / overlay")
        _print_table(f"{target}: {len(results)} inputs", columns, results, _masks)
    else:
        columns = ("input", "label", "probability", f"top-{top_k}", *(("Grad-CAM",) if cam else ()))
        _print_table(f"{target}: {len(results)} images", columns, results, lambda r: _labels(r, cam), error_at=3)


def _print_table(
    title: str, columns: Sequence[str], results: list[dict], row: Callable[[dict], list[str]], error_at: int = 2
) -> None:
    """One row per input; an input that could not be read says why in column ``error_at``."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column == "probability" else "left")
    for r in results:
        if "error" in r:
            cells = [r["input"], "[red]unreadable[/]", *[""] * (len(columns) - 2)]
            cells[error_at] = r["error"]
            table.add_row(*cells)
        else:
            table.add_row(*row(r))
    console.print(table)


def _labels(r: dict, cam: bool) -> list[str]:
    others = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top_k"][1:])
    return [r["input"], r["label"], f"{r['probability']:.1%}", others, *([r["cam"]] if cam else [])]


def _boxes(r: dict) -> list[str]:
    from collections import Counter

    if "frames" in r:  # a video: detections per frame
        counts = Counter(d["label"] for frame in r["detections"] for d in frame)
        found = ", ".join(f"{n} {label}" for label, n in counts.most_common())
        return [r["input"], f"{r['frames']} frames", found, f"{r['output'] or '-'}  {r['fps']} fps"]
    found = ", ".join(f"{d['label']} {d['score']:.2f}" for d in r["detections"][:8])
    more = len(r["detections"]) - 8
    return [r["input"], str(len(r["detections"])), found + (f" (+{more})" if more > 0 else ""), r.get("drawn", "")]


def _masks(r: dict) -> list[str]:
    found = ", ".join(f"{name} {share:.1%}" for name, share in r["class_share"].items())
    files = "  ".join(str(r[k]) for k in ("mask", "overlay") if r.get(k)) or "(add --draw DIR to write masks)"
    return [r["input"], "x".join(map(str, r["mask_size"])), found, files]
