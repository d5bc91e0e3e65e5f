"""cnnlab fit"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, print_json, step_log
from cnnlab.cli.select import _candidates


def fit(
    data: Annotated[str, typer.Option(help="Data source: a folder, a CSV, or builtin:NAME.")],
    max_latency: Annotated[str | None, typer.Option(help="Batch-1 latency ceiling, e.g. 5ms.")] = None,
    max_size: Annotated[str | None, typer.Option(help="Model file ceiling, e.g. 20MB.")] = None,
    max_memory: Annotated[str | None, typer.Option(help="Activation memory ceiling at batch 1, e.g. 64MB.")] = None,
    runtime: Annotated[str, typer.Option(help="Deployment runtime: auto (fastest), onnxruntime or openvino.")] = "auto",
    budget: Annotated[str, typer.Option(help="Time for the whole job, e.g. 1h (half goes to selection).")] = "1h",
    max_drop: Annotated[float, typer.Option(help="Largest top-1 loss accepted from int8, in points.")] = 1.0,
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize", help="Try int8 for deployment.")] = True,
    candidates: Annotated[
        str | None, typer.Option(help="Comma-separated NAME[@SIDE] (default: a pool that suits the data).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for splits and training.")] = 0,
    out: Annotated[str | None, typer.Option(help="Run directory (default runs/fit-<n>).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out run.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """The main job: select for your budget, train, compress, export with parity proof, report.

    Example: cnnlab fit --data builtin:digits --max-latency 2ms --budget 4m --out runs/fit-digits
    """
    from cnnlab.fit import fit_data
    from cnnlab.train import parse_duration

    report = fit_data(
        data,
        max_latency=max_latency,
        max_size=max_size,
        max_memory=max_memory,
        runtime=runtime,
        budget_s=parse_duration(budget) or 0.0,
        max_drop=max_drop,
        quantize=quantize,
        candidates=_candidates(candidates),
        out=out,
        overwrite=overwrite,
        seed=seed,
        log=step_log(json_out),
    )
    if json_out:
        print_json(report.to_dict())
        return
    d, p = report.deployed, report.promise
    console.print(
        f"[bold]{report.path}[/]: {report.recommended['candidate']}, test top-1 "
        f"[bold]{(d.get('test_top1') or 0):.2%}[/] ({d['precision']} on {d['runtime']})\n"
        f"  latency: promised {p['promised_ms']:.3f} ms, measured {p['measured_ms']:.3f} ms ({p['ratio']:.2f}x)"
        f"{'' if p['within_budget'] else '  [red]over the budget[/]'}\n"
        f"  deploy {d['file']}\n  report {report.path}/report.html  details {report.path}/fit.json",
        soft_wrap=True,
    )
    for note in report.notes:
        console.print(f"  note: {note}", soft_wrap=True)
