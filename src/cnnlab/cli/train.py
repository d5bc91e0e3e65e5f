"""cnnlab train"""

from __future__ import annotations

from typing import Annotated

import typer

from cnnlab.cli.output import console, err_console, print_json

# `--pretrained` may stand alone (best weights available) or take a value (hub, or a file path).
OPTIONAL_VALUES = {"--pretrained": "auto"}


def _model_options(pairs: list[str]) -> dict[str, object]:
    import yaml

    from cnnlab.errors import ConfigError

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r}: write KEY=VALUE, e.g. --option drop_rate=0.2")
        options[key.strip()] = yaml.safe_load(value)
    return options


def _input_size(text: str | None) -> list[int] | None:
    if not text:
        return None
    from cnnlab.registry.targets import parse_input_size

    return list(parse_input_size(text if "x" in text else f"{text}x{text}"))


def train(
    data: Annotated[str | None, typer.Option(help="Data source: a folder, a CSV, or builtin:NAME.")] = None,
    model: Annotated[str | None, typer.Option(help="Registry name or a design spec (.yaml).")] = None,
    task: Annotated[str | None, typer.Option(help="Task (default: what the data says).")] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            help="Pretrained weights: alone for the best available (offline set, else hub), 'hub', or a file."
        ),
    ] = None,
    recipe: Annotated[str, typer.Option(help="auto, scratch, linear-probe, finetune, gradual or recover.")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 10 unless --budget).")] = None,
    budget: Annotated[str | None, typer.Option(help="Time budget, e.g. 10m, 90s, 1h30m.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the recipe's).")] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd or adamw (default: the recipe's).")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay (never on norms and biases).")] = None,
    schedule: Annotated[str, typer.Option(help="cosine, onecycle or constant.")] = "cosine",
    warmup_epochs: Annotated[float | None, typer.Option(help="Warm-up length in epochs.")] = None,
    layer_decay: Annotated[float | None, typer.Option(help="Layer-wise LR decay for fine-tuning, in (0, 1].")] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing.")] = None,
    mixup: Annotated[float, typer.Option(help="Mixup alpha (0 = off).")] = 0.0,
    cutmix: Annotated[float, typer.Option(help="CutMix alpha (0 = off).")] = 0.0,
    augment: Annotated[str, typer.Option(help="none, light, randaugment or trivialaugment.")] = "light",
    hflip: Annotated[
        bool | None, typer.Option("--hflip/--no-hflip", help="Horizontal flips (default: on, off for digits).")
    ] = None,
    random_erasing: Annotated[float, typer.Option(help="RandomErasing probability.")] = 0.0,
    ema: Annotated[bool, typer.Option("--ema", help="Keep an exponential moving average of the weights.")] = False,
    grad_clip: Annotated[float | None, typer.Option(help="Clip the gradient norm to this.")] = None,
    grad_accum: Annotated[int, typer.Option(help="Accumulate gradients over N batches.")] = 1,
    channels_last: Annotated[
        bool | None, typer.Option("--channels-last/--no-channels-last", help="Memory format (default: on for 2D).")
    ] = None,
    amp: Annotated[str, typer.Option(help="Mixed precision: auto, off, bf16, fp16.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for splits, order and augmentation.")] = 0,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic kernels (slower).")] = False,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers.")] = None,
    data_path: Annotated[str, typer.Option(help="auto, memory (whole-batch augmentation) or loader.")] = "auto",
    imbalance: Annotated[str, typer.Option(help="auto, none, weighted-loss or balanced-sampler.")] = "auto",
    early_stop: Annotated[int | None, typer.Option(help="Stop after N epochs without a better val metric.")] = None,
    distill_from: Annotated[str | None, typer.Option(help="A teacher run: knowledge distillation.")] = None,
    distill_temperature: Annotated[float, typer.Option(help="Distillation temperature.")] = 4.0,
    distill_alpha: Annotated[float, typer.Option(help="Weight of the teacher's term, in [0, 1].")] = 0.7,
    train_per_class: Annotated[int | None, typer.Option(help="Few-shot: at most N training images per class.")] = None,
    checkpoint_every: Annotated[str, typer.Option(help="Also checkpoint within epochs this often, e.g. 5m.")] = "5m",
    input_size: Annotated[
        str | None, typer.Option(help="Input size: a side (64), HxW, or DxHxW for volumes (training crops).")
    ] = None,
    loss: Annotated[
        str | None, typer.Option(help="Segmentation loss: ce, dice, focal, ce+dice (default), focal+dice.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    nonfinite: Annotated[str, typer.Option(help="On a NaN/inf loss: stop or rollback.")] = "stop",
    option: Annotated[list[str] | None, typer.Option(help="Model option KEY=VALUE (repeatable).")] = None,
    out: Annotated[str | None, typer.Option(help="Run directory (default runs/train-<n>).")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue a run directory from its last checkpoint.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out run.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Train or fine-tune a model; evaluates it on the test split when done.

    Example: cnnlab train --data builtin:digits --model lenet5 --epochs 8 --out runs/digits
    """
    from cnnlab.errors import ConfigError
    from cnnlab.train import TrainConfig, parse_duration, train_model

    budget_s = parse_duration(budget)
    if resume:
        result = train_model(resume=resume, epochs=epochs, budget_s=budget_s, progress=None if not json_out else False)
    else:
        if not data or not model:
            raise ConfigError("cnnlab train needs --data and --model (or --resume RUN)")
        config = TrainConfig(
            data=data,
            model=model,
            task=task,
            pretrained=pretrained or False,
            recipe=recipe,
            epochs=epochs,
            budget_s=budget_s,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            schedule=schedule,
            warmup_epochs=warmup_epochs,
            layer_decay=layer_decay,
            label_smoothing=label_smoothing,
            mixup=mixup,
            cutmix=cutmix,
            augment=augment,
            hflip=hflip,
            random_erasing=random_erasing,
            ema=ema,
            grad_clip=grad_clip,
            grad_accum=grad_accum,
            channels_last=channels_last,
            amp=amp,
            seed=seed,
            deterministic=deterministic,
            workers=workers,
            data_path=data_path,
            imbalance=imbalance,
            early_stop=early_stop,
            input_size=_input_size(input_size),
            device=device,
            nonfinite=nonfinite,
            model_options=_model_options(option or []),
            loss=loss,
            train_per_class=train_per_class,
            checkpoint_every_s=parse_duration(checkpoint_every),
            distill_from=distill_from,
            distill_temperature=distill_temperature,
            distill_alpha=distill_alpha,
        )
        result = train_model(config, out=out, overwrite=overwrite, progress=None if not json_out else False)
    if not result.main:
        return
    summary = result.summary()
    if json_out:
        print_json({**summary, "plan": result.plan.to_dict(), "skipped": result.skipped})
        return
    for line in result.plan.reasoning:
        err_console.print(f"[dim]recipe:[/] {line}")
    if result.skipped.get("total"):
        err_console.print(f"[yellow]skipped {result.skipped['total']} files:[/] {result.skipped.get('counts')}")
    test = summary["test"]
    if "map" in test:
        scores = f"test mAP@[.5:.95] [bold]{test['map']:.3f}[/]  mAP@.5 {test.get('map50', 0):.3f}  "
        scores += f"mAR@100 {test.get('mar_100', 0):.3f}  ({test.get('images', 0)} images)"
        files = ""
    elif "miou" in test:
        scores = f"test mIoU [bold]{test['miou']:.3f}[/]  mDice {test.get('mdice', 0):.3f}  "
        scores += f"foreground mDice {test.get('mdice_foreground', 0):.3f}"
        if test.get("hd95_mm") is not None:
            scores += f"  HD95 {test['hd95_mm']:.2f} mm"
        files = ""
    else:
        scores = f"test top-1 [bold]{test.get('top1', 0):.2%}[/]  top-5 {test.get('top5', 0):.2%}  "
        scores += f"macro-F1 {test.get('macro_f1', 0):.3f}  ECE {test.get('ece', 0):.3f}"
        files = f"  confusion {summary['run']}/confusion_matrix.png"
    console.print(
        f"[bold]{summary['run']}[/]  {summary['recipe']}, {summary['epochs']} epochs ({summary['stop_reason']}), "
        f"{summary['elapsed_s']}s\n  {scores}\n"
        f"  model {summary['run']}/model.safetensors  metrics {summary['run']}/metrics.json{files}"
    )
