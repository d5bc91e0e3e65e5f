"""cnnlab design show|check|scale"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnlab.cli.output import console, human_count, print_json

app = typer.Typer(help="Design networks from specs: inspect, check and scale them.", no_args_is_help=True)


@app.command("show", no_args_is_help=True)
def show(
    spec: Annotated[str, typer.Argument(help="A spec .yaml file or a spec name (e.g. spec_resnet50).")],
    input: Annotated[str | None, typer.Option(help="Input size, e.g. 3x224x224 or 1x3x224x224.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Per-layer output shape, parameters, MACs and receptive field, with totals.

    Example: cnnlab design show my_net.yaml --input 1x3x224x224
    """
    from cnnlab.design import summarize
    from cnnlab.design.resolve import parse_design_input, resolve_spec

    network = resolve_spec(spec)
    summary = summarize(network, parse_design_input(input, network) if input else None)
    if json_out:
        print_json(summary.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"{summary.name}  input {'x'.join(map(str, summary.input_size))}", title_justify="left")
    for column in ("layer", "block", "output", "params", "MACs", "receptive field"):
        table.add_column(column, justify="left" if column in ("layer", "block", "output") else "right")
    for row in summary.rows:
        table.add_row(
            row.label,
            row.block,
            "x".join(map(str, row.out_shape)),
            human_count(row.params),
            human_count(row.macs),
            str(row.receptive_field),
        )
    table.add_row(
        "head" if not summary.head_block else "decoder + head",
        summary.head_block,
        "x".join(map(str, summary.output_shape)),
        human_count(summary.head_params),
        human_count(summary.head_macs),
        "",
    )
    table.add_section()
    table.add_row("total", "", "", f"{summary.total_params:,}", f"{summary.total_macs / 1e9:.3f} G", "")
    console.print(table)


@app.command("check", no_args_is_help=True)
def check(
    spec: Annotated[str, typer.Argument(help="A spec .yaml file or a spec name.")],
    input: Annotated[str | None, typer.Option(help="Input size to check against.")] = None,
) -> None:
    """Check a spec's shapes without building it; errors name the stage, block and field.

    Example: cnnlab design check my_net.yaml --input 3x64x64
    """
    import dataclasses

    from cnnlab.design import infer
    from cnnlab.design.resolve import parse_design_input, resolve_spec

    network = resolve_spec(spec)
    if input:
        network = dataclasses.replace(network, input_size=parse_design_input(input, network))
    layers = infer(network)
    last = layers[-1]
    console.print(
        f"[green]ok[/] {network.name}: {len(layers)} blocks, {'x'.join(map(str, network.input_size))} -> "
        f"{'x'.join(map(str, last.out_shape))}, receptive field {last.receptive_field} px"
    )


@app.command("scale", no_args_is_help=True)
def scale(
    spec: Annotated[str, typer.Argument(help="A spec .yaml file or a spec name.")],
    width: Annotated[float, typer.Option(help="Channel multiplier (rounded to multiples of --divisor).")] = 1.0,
    depth: Annotated[float, typer.Option(help="Repeat multiplier (rounded up).")] = 1.0,
    resolution: Annotated[float, typer.Option(help="Input size multiplier.")] = 1.0,
    phi: Annotated[float | None, typer.Option(help="EfficientNet compound coefficient (sets all three).")] = None,
    divisor: Annotated[int, typer.Option(help="Round channels to multiples of this.")] = 8,
    name: Annotated[str | None, typer.Option(help="Name of the scaled spec.")] = None,
    out: Annotated[str | None, typer.Option(help="Write the scaled spec here (default: print it).")] = None,
) -> None:
    """Scale a spec's width, depth and resolution (compound scaling) into a new spec.

    Example: cnnlab design scale spec_efficientnet_b0 --phi 1 --out b1.yaml
    """
    from cnnlab.design import infer, scale_spec
    from cnnlab.design.resolve import resolve_spec
    from cnnlab.runs.atomic import atomic_write_text

    scaled = scale_spec(
        resolve_spec(spec), width=width, depth=depth, resolution=resolution, phi=phi, divisor=divisor, name=name
    )
    infer(scaled)
    if out:
        atomic_write_text(Path(out), scaled.to_yaml())
        console.print(f"wrote {out} ({scaled.name}, input {'x'.join(map(str, scaled.input_size))})")
    else:
        typer.echo(scaled.to_yaml(), nl=False)
