"""Training throughput, side by side: `cnnlab train` against timm's own reference `train.py` on the
same model, batch size, input size, data and CPU.

    .venv/bin/python -m benchmarks.train_throughput_timm                        # both models, 3 rounds
    .venv/bin/python -m benchmarks.train_throughput_timm --models resnet18 --images 256 --epochs 1 \
        --rounds 1 --name train_throughput_timm_smoke                            # a quick check

timm's train.py is not part of cnnlab and is not vendored: pass its path with --timm-train (default
/work/timm-ref/train.py). Get it from the pytorch-image-models repository at the installed timm
version, e.g. `git clone --depth 1 --branch v$(python -c "import timm; print(timm.__version__)")
https://github.com/huggingface/pytorch-image-models`. The result records its sha256 (and the text of
a SOURCE.txt next to it, if there is one, saying which commit it came from).

Data: the first --images Fashion-MNIST training images (default 3000), written once as 28x28 RGB PNGs
(grey repeated to 3 channels) to runs/bench-throughput/fmnist-folder/{train,val,test}/<class>/; val
and test hold --val-images each. Both tools read these same files; timm trains on train/ and
validates on val/, cnnlab trains on train/, validates on val/ and tests on test/ (its split folders
are used as they are, nothing is carved from train/).

Settings (per model): resnet18 at 64x64 with batch 64, mobilenetv3_small_100 at 224x224 with batch
32; from scratch, fp32 (--precision bf16 autocasts in both), --device (default cpu), --workers for
both (default 2), --epochs (default 2), seed 0, label smoothing 0.1 and nesterov SGD in both (each
tool's default). Augmentation, chosen to cost about the same: one random geometric crop resized to
the input, a horizontal flip, normalisation; nothing else.
    cnnlab  its default `light` augment: resize to the input, random crop with reflect padding of 1/8
            of the side, flip. Small images (<= 64 px) take its default in-memory path: the training
            set is decoded once, cached at the input size, and whole batches are augmented with
            tensor ops, so no DataLoader workers run (--cnnlab-data-path loader forces its
            per-sample DataLoader path instead). --checkpoint-every 1h, so no time-based checkpoint
            falls inside an epoch (timm has none either).
    timm    RandomResizedCrop (its default scale 0.08-1) with bilinear interpolation, flip 0.5,
            --color-jitter 0 (its default 0.4 has no counterpart in cnnlab's light augment), its
            default prefetcher (uint8 batches normalised in the main process), PNG decoding in
            --workers DataLoader workers. --timm-arg passes anything else through, after the
            settings above, so it wins (e.g. --timm-arg=--channels-last: cnnlab uses channels-last
            for 2D models by default, timm does not).
The asymmetry that remains is the data path: timm decodes and augments every image in --workers
DataLoader processes each epoch (the result records its per-epoch wait for data, timm's "Data");
cnnlab's in-memory path decodes once and runs no workers. Memory format is left to each tool's
default (cnnlab channels-last, timm contiguous); on this CPU a mobilenetv3_small_100 step at 224,
batch 32, took 0.29 s channels-last against 0.44 s contiguous in plain PyTorch, so for that model
part of any difference is this default (compare with --timm-arg=--channels-last).

Other work on this shared 2-core machine matters more than anything above: another engineer's
training slowed 2-thread resnet18 steps from ~0.4 s to ~4 s. Each run records `other_cpu_share`, the
CPU time used by processes other than the benchmark's during the whole run (start-up and validation
included) over (wall time x cores), from /proc/stat; rounds well above ~0.05 may have been disturbed
and should be rerun on a quiet machine.

What is timed, the same for both: training images per second over the training loop of epochs 2..E
(epoch 1 is warm-up; with --epochs 1 it is measured too and the result says so); validation,
checkpoints and process start-up are outside the clock. Each epoch's clock starts before its first
batch is fetched and stops after its last optimizer step.
    cnnlab  `train_img_per_s` per epoch from RUN/metrics.csv (epoch images / epoch training time).
    timm    train.py run with --log-interval 1 prints, per optimizer update, the update's time and
            rate (images/s, 2 decimals) measured from the end of the previous update; an epoch's time
            is the sum of batch/rate over its updates (the first one starts before the loader's
            iterator is created), its rate is its images over that time.
Several measured epochs combine as total images over total time. The contenders alternate in one
invocation (cnnlab, timm, cnnlab, timm, ... for --rounds rounds, each a fresh process); the result
has per contender the median and spread over rounds, the ratio cnnlab/timm of the medians, and the
per-round paired ratios. Alternation spreads slow periods of the machine over both contenders; it
does not remove them (see other_cpu_share above).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import save, spread

SETUPS = {
    "resnet18": dict(side=64, batch_size=64),
    "mobilenetv3_small_100": dict(side=224, batch_size=32),
}
ROOT = Path("runs/bench-throughput")
DEFAULT_TIMM_TRAIN = Path("/work/timm-ref/train.py")
# timm's per-update log line:
# "Train: 1 [   3/46 (  9%)]  Loss: ...  Time: 0.412s,  155.34/s  (...)  LR: ...  Data: 0.002 (0.031)"
TIMM_LINE = re.compile(r"Train: (\d+) \[\s*(\d+)/(\d+).*?Time: [\d.]+s,\s*([\d.]+)/s.*?Data: ([\d.]+)")


def write_folder(images: int, val_images: int) -> Path:
    """The Fashion-MNIST image folder both tools read; rebuilt only when its sizes change."""
    from PIL import Image

    from cnnlab.data import open_dataset

    folder = ROOT / "fmnist-folder"
    wanted = {"train": images, "val": val_images, "test": val_images}
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    bundle = open_dataset("builtin:fashion-mnist")
    # Class folders sort in label order, so both tools map them to the same indices.
    classes = [f"{i}-{re.sub(r'[^a-z0-9]+', '-', name.lower())}" for i, name in enumerate(bundle.class_names)]
    for split, count in wanted.items():
        x, y = bundle.splits[split].as_tensors()
        if count > len(y):
            raise SystemExit(f"--images/--val-images: the {split} split has only {len(y)} images")
        for i in range(count):
            target = folder / split / classes[int(y[i])]
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i, 0].numpy()).convert("RGB").save(target / f"{i:06d}.png")
    manifest.write_text(json.dumps(wanted))
    return folder


def combined_rate(per_epoch: list[dict[str, float]], epochs: int) -> float:
    measured = per_epoch[1:] if epochs > 1 else per_epoch
    return sum(e["images"] for e in measured) / sum(e["seconds"] for e in measured)


def busy_cpu_s() -> float:
    """CPU seconds every process on the machine has used since boot (Linux /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the training process and its loader workers
    return usage.ru_utime + usage.ru_stime


def run_logged(label: str, command: list[str], log: Path, timeout_s: float) -> dict[str, Any]:
    """Runs one training process: its wall time, and the share of the CPUs that other processes used
    meanwhile (other work can slow a 2-thread training several-fold on a 2-core machine)."""
    busy, ours, start = busy_cpu_s(), children_cpu_s(), time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise SystemExit(f"{label} failed (exit {done.returncode}); log {log}:\n{tail}")
    wall = time.perf_counter() - start
    other = (busy_cpu_s() - busy) - (children_cpu_s() - ours)
    return {"wall_s": round(wall, 1), "other_cpu_share": round(max(0.0, other) / (wall * (os.cpu_count() or 1)), 3)}


def run_cnnlab(folder: Path, model: str, setup: dict, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [
        *(sys.executable, "-m", "cnnlab", "train", "--data", str(folder), "--model", model),
        *("--input-size", str(setup["side"]), "--batch-size", str(setup["batch_size"])),
        *("--epochs", str(args.epochs), "--workers", str(args.workers), "--device", args.device),
        *("--amp", "bf16" if args.precision == "bf16" else "off"),
        *("--data-path", args.cnnlab_data_path, "--checkpoint-every", "1h", "--seed", "0"),
        *("--out", str(out), "--overwrite", "--json"),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"{out.name}.log"
    timing = run_logged("cnnlab train", command, log, args.timeout)
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    record = json.loads((out / "run.json").read_text())
    images = (args.images // setup["batch_size"]) * setup["batch_size"]
    per_epoch = [
        {"images": images, "seconds": images / float(r["train_img_per_s"]), "img_per_s": float(r["train_img_per_s"])}
        for r in rows
    ]
    return {
        "img_per_s": round(combined_rate(per_epoch, args.epochs), 2),
        "per_epoch": per_epoch,
        **timing,
        "data_path": record["data"].get("data_path"),
        "channels_last": record.get("channels_last"),
        "run": str(out),
    }


def run_timm(folder: Path, model: str, setup: dict, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    batch = setup["batch_size"]
    command = [
        *(sys.executable, str(args.timm_train), "--data-dir", str(folder), "--train-split", "train"),
        *("--val-split", "val", "--model", model, "--num-classes", "10", "--img-size", str(setup["side"])),
        *("--batch-size", str(batch), "--epochs", str(args.epochs), "--workers", str(args.workers)),
        *("--device", args.device, "--color-jitter", "0", "--train-interpolation", "bilinear", "--seed", "0"),
        *(("--amp", "--amp-dtype", "bfloat16") if args.precision == "bf16" else ()),
        *("--log-interval", "1", "--checkpoint-hist", "1", "--output", str(out.parent), "--experiment", out.name),
        *args.timm_arg,
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"{out.name}.log"
    timing = run_logged("timm's train.py", command, log, args.timeout)
    for checkpoint in out.glob("*.pth.tar"):  # ~45 MB each for resnet18; the benchmark needs only the log
        checkpoint.unlink()
    times: dict[int, list[float]] = {}
    waits: dict[int, float] = {}  # time the loop waited for the loader (timm's "Data"), for the record
    updates = args.images // batch
    for line in log.read_text().splitlines():
        match = TIMM_LINE.search(line)
        if match:
            epoch, total, rate = int(match[1]), int(match[3]), float(match[4])
            if total != updates:
                raise SystemExit(f"{log}: timm ran {total} updates per epoch, expected {updates}")
            times.setdefault(epoch, []).append(batch / rate)
            waits[epoch] = waits.get(epoch, 0.0) + float(match[5])
    if sorted(times) != list(range(args.epochs)) or any(len(t) != updates for t in times.values()):
        raise SystemExit(f"{log}: expected {args.epochs} epochs of {updates} logged updates from timm's train.py")
    per_epoch = [
        {
            "images": updates * batch,
            "seconds": sum(times[e]),
            "img_per_s": round(updates * batch / sum(times[e]), 1),
            "data_wait_s": round(waits[e], 3),
        }
        for e in sorted(times)
    ]
    return {
        "img_per_s": round(combined_rate(per_epoch, args.epochs), 2),
        "per_epoch": per_epoch,
        **timing,
        "run": str(out),
    }


def gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_name(0)


def timm_train_record(path: Path) -> dict[str, Any]:
    source = path.parent / "SOURCE.txt"
    return {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "source": source.read_text().strip() if source.is_file() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--images", type=int, default=3000, help="training images")
    parser.add_argument("--val-images", type=int, default=200, help="images in val/ and in test/")
    parser.add_argument("--epochs", type=int, default=2, help="per run; epoch 1 is warm-up when there are more")
    parser.add_argument("--rounds", type=int, default=3, help="alternating cnnlab/timm pairs per model")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cnnlab-data-path", choices=("auto", "memory", "loader"), default="auto")
    parser.add_argument("--timm-train", type=Path, default=DEFAULT_TIMM_TRAIN)
    parser.add_argument("--timm-arg", action="append", default=[], help="extra argument for timm's train.py")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per training run")
    parser.add_argument("--name", default="train_throughput_timm", help="results file name")
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for both tools")
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast in both (timm --amp)"
    )
    args = parser.parse_args()
    if not args.timm_train.is_file():
        import timm

        raise SystemExit(
            f"timm's reference train.py not found at {args.timm_train}. Clone pytorch-image-models at the "
            f"installed timm version ({timm.__version__}): git clone --depth 1 --branch v{timm.__version__} "
            "https://github.com/huggingface/pytorch-image-models /work/timm-ref-repo, then pass "
            "--timm-train /work/timm-ref-repo/train.py"
        )
    folder = write_folder(args.images, args.val_images)
    results: dict[str, Any] = {}
    for model in args.models:
        setup = SETUPS[model]
        runs: dict[str, list[dict[str, Any]]] = {"cnnlab": [], "timm": []}
        for r in range(1, args.rounds + 1):
            for name, contender in (("cnnlab", run_cnnlab), ("timm", run_timm)):
                result = contender(folder, model, setup, args, ROOT / f"{name}-{model}-r{r}")
                runs[name].append(result)
                print(
                    f"{model} round {r} {name}: {result['img_per_s']:.1f} img/s "
                    f"(epochs {[e['img_per_s'] for e in result['per_epoch']]}, wall {result['wall_s']}s, "
                    f"other processes {result['other_cpu_share']:.0%} of the CPUs)",
                    flush=True,
                )
        ours = [x["img_per_s"] for x in runs["cnnlab"]]
        theirs = [x["img_per_s"] for x in runs["timm"]]
        ratio = statistics.median(ours) / statistics.median(theirs)
        disturbed = max(x["other_cpu_share"] for x in runs["cnnlab"] + runs["timm"])
        results[model] = {
            **setup,
            "cnnlab": {"img_per_s": spread(ours), "runs": runs["cnnlab"]},
            "timm": {"img_per_s": spread(theirs), "runs": runs["timm"]},
            "ratio_cnnlab_over_timm": round(ratio, 3),
            "paired_ratios": spread([round(a / b, 3) for a, b in zip(ours, theirs, strict=True)]),
            "max_other_cpu_share": disturbed,
        }
        print(
            f"{model} at {setup['side']}px, batch {setup['batch_size']}: cnnlab {statistics.median(ours):.1f} "
            f"[{min(ours):.1f}-{max(ours):.1f}] img/s, timm {statistics.median(theirs):.1f} "
            f"[{min(theirs):.1f}-{max(theirs):.1f}] img/s, cnnlab/timm {ratio:.2f}x",
            flush=True,
        )
        if disturbed > 0.05:
            print(f"  other processes used up to {disturbed:.0%} of the CPUs during a run: rerun on a quiet machine")
    summary = {
        "protocol": {
            "images": args.images,
            "val_images": args.val_images,
            "epochs": args.epochs,
            "measured_epochs": f"2..{args.epochs}" if args.epochs > 1 else "1 (warm-up included)",
            "rounds": args.rounds,
            "workers": args.workers,
            "cnnlab_data_path": args.cnnlab_data_path,
            "timm_extra_args": args.timm_arg,
            "device": args.device,
            "gpu": gpu_name(args.device),
            "precision": args.precision,
        },
        "timm_train": timm_train_record(args.timm_train),
        "models": results,
    }
    save(args.name, summary)


if __name__ == "__main__":
    main()
