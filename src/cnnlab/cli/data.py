"""cnnlab data info | make | convert"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json

app = typer.Typer(
    help="Inspect, generate and convert datasets: formats, classes, splits, boxes, skipped files.", no_args_is_help=True
)


@app.command("info", no_args_is_help=True)
def info(
    source: Annotated[str, typer.Argument(help="A folder, a CSV, a COCO/YOLO/VOC detection set, or builtin:NAME.")],
    seed: Annotated[int, typer.Option(help="Seed of the splits cnnlab carves.")] = 0,
    task: Annotated[
        str | None, typer.Option(help="segment: read a COCO .json's polygons as masks (default: its boxes).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Classes, split sizes and per-class counts, and every file that was skipped and why.

    Example: cnnlab data info builtin:fashion-mnist
    """
    from cnnlab.data import open_dataset

    described = open_dataset(source, seed=seed, task=task).describe()
    if json_out:
        print_json(described)
        return
    from rich.table import Table

    splits = described["splits"]
    size = described["native_size"]
    table = Table(
        title=f"{described['name']}: {described['num_classes']} classes, {described['channels']} channel(s)"
        + (f", {'x'.join(map(str, size))} {'voxels' if len(size) == 3 else 'px'}" if size else ""),
        title_justify="left",
        caption=described["split_policy"],
        caption_justify="left",
    )
    table.add_column("class" + (" (images containing it)" if described["task"] == "segment" else ""))
    for name in splits:
        table.add_column(f"{name} ({splits[name]['size']})", justify="right")
    for i, cls in enumerate(described["classes"]):
        table.add_row(cls, *[str(splits[name]["class_counts"][i]) for name in splits])
    console.print(table)
    for name, split in splits.items():
        stats = split.get("box_stats")
        if stats and stats.get("boxes"):
            side, sizes, per = stats["sqrt_area_px"], stats["by_size"], stats["per_image"]
            console.print(
                f"{name}: {stats['boxes']} boxes, {per['mean']} per image (max {per['max']}), "
                f"{stats['images_without_boxes']} images without boxes; box side (sqrt area) median "
                f"{side['median']} px (5-95%: {side['p5']}-{side['p95']}); "
                f"small/medium/large {sizes['small']}/{sizes['medium']}/{sizes['large']}"
            )
    for name, split in splits.items():
        share = split.get("pixel_share")
        if share:
            found = ", ".join(f"{cls} {s:.1%}" for cls, s in zip(described["classes"], share, strict=True))
            console.print(f"{name}: share of pixels per class: {found}")
        if split.get("empty_masks"):
            console.print(f"{name}: {split['empty_masks']} masks without foreground (kept: they teach 'nothing here')")
        if split.get("spacing") and len(split["spacing"][0]) == 3:
            console.print(f"{name}: voxel spacing (z, y, x) mm: {', '.join(map(str, split['spacing']))}")
    skipped = described["skipped"]
    if skipped.get("total"):
        console.print(
            f"[yellow]skipped {skipped['total']} files[/]: "
            + ", ".join(f"{reason} {count}" for reason, count in skipped["counts"].items())
        )
        for example in skipped.get("examples", [])[:10]:
            console.print(f"  {example['file']}: {example['reason']} ({example['detail']})")


@app.command("make", no_args_is_help=True)
def make(
    kind: Annotated[str, typer.Argument(help="What to generate: shapes.")],
    out: Annotated[str, typer.Option(help="New folder to write.")],
    task: Annotated[str, typer.Option(help="detect (boxes) or segment (masks).")] = "detect",
    fmt: Annotated[
        str | None, typer.Option("--format", help="detect: coco, yolo or voc; segment 3D: npz or nifti.")
    ] = None,
    dims: Annotated[int, typer.Option(help="segment: 2 (images) or 3 (volumes).")] = 2,
    size: Annotated[
        int | None, typer.Option(help="Image (or volume) side (default 160 detect, 128 / 48 segment).")
    ] = None,
    train: Annotated[int, typer.Option(help="Training images.")] = 800,
    val: Annotated[int, typer.Option(help="Validation images.")] = 100,
    test: Annotated[int, typer.Option(help="Test images.")] = 100,
    seed: Annotated[int, typer.Option(help="The same seed writes the same images.")] = 0,
) -> None:
    """A procedural dataset with exact labels: circles, squares, triangles and stars on textured
    backgrounds (boxes or masks), or 3D volumes of solid shapes with voxel spacing, for trying a
    detector or a segmenter before real data is labelled.

    Example: cnnlab data make shapes --task detect --out data/shapes --format yolo

    Masks: cnnlab data make shapes --task segment --out data/seg; volumes: add --dims 3
    """
    from cnnlab.errors import ConfigError

    if kind != "shapes":
        raise ConfigError(f"cnnlab data make {kind!r}: cnnlab generates 'shapes'")
    if task == "segment":
        from cnnlab.data.segmentation import make_segment_shapes

        sizes = {} if size is None else {"size": size}
        path = make_segment_shapes(out, dims=dims, n_train=train, n_val=val, n_test=test, seed=seed, fmt=fmt, **sizes)
        what = "volumes" if dims == 3 else "images and masks"
        console.print(f"{path}: {train}/{val}/{test} train/val/test {what}")
        return
    if task != "detect":
        raise ConfigError(f"--task {task!r}: shapes are generated for detect or segment")
    from cnnlab.data.detection import make_shapes

    fmt = fmt or "coco"
    path = make_shapes(out, n_train=train, n_val=val, n_test=test, size=size or 160, fmt=fmt, seed=seed)
    console.print(f"{path}: {train}/{val}/{test} train/val/test images of {size or 160} px, {fmt.upper()} layout")


@app.command("convert", no_args_is_help=True)
def convert(
    source: Annotated[str, typer.Argument(help="A COCO, YOLO or VOC detection dataset.")],
    out: Annotated[str, typer.Argument(help="New folder to write.")],
    fmt: Annotated[str, typer.Option("--format", help="coco, yolo or voc.")] = "yolo",
) -> None:
    """Rewrite a detection dataset in another layout (images hard-linked where possible). Bad labels
    are cleaned on the way and counted.

    Example: cnnlab data convert data/voc data/as-yolo --format yolo
    """
    from cnnlab.data.detection import convert as convert_dataset

    skipped = convert_dataset(source, out, fmt)
    console.print(f"{out}: {fmt.upper()} layout written from {source}; {skipped.summary()}")
