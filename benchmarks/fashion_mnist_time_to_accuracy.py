"""Time to a test-accuracy target on Fashion-MNIST: cnnlab's recipe against the textbook PyTorch loop
with the same architecture, in one process, one after the other.

    .venv/bin/python -m benchmarks.fashion_mnist_time_to_accuracy --model lenet      # target 90%
    .venv/bin/python -m benchmarks.fashion_mnist_time_to_accuracy --model resnet     # target 93%
    .venv/bin/python -m benchmarks.fashion_mnist_time_to_accuracy --model resnet --device cuda

The textbook loop: the official 60k training images as a TensorDataset (normalised once, in memory),
DataLoader(batch 64, shuffle), Adam(lr 1e-3), cross-entropy, NCHW, no augmentation, test accuracy
after every epoch (evaluation time excluded from its clock). Its time to the target is the training
time up to the first epoch whose test accuracy reaches it.

cnnlab: `train_model` with the recipe below for the given epochs; its clock is the run's training
time, which *includes* its per-epoch validation (so the comparison is conservative for cnnlab).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import save
from cnnlab.data import open_dataset
from cnnlab.registry import create_model
from cnnlab.train import train_model

SETUPS = {
    # architecture, options, input side, target, cnnlab recipe options, textbook max epochs
    "lenet": dict(
        model="lenet5",
        options={"act": "relu", "pool": "max"},
        side=32,
        target=0.90,
        cnnlab=dict(epochs=6, augment="none", batch_size=128),
        textbook_epochs=30,
    ),
    "resnet": dict(
        model="cifar_resnet20",
        options={},
        side=28,
        target=0.93,
        cnnlab=dict(epochs=12, batch_size=128, amp="bf16"),
        textbook_epochs=20,
    ),
}


def fashion_tensors(side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    bundle = open_dataset("builtin:fashion-mnist")
    x_train = torch.cat([bundle.splits["train"].as_tensors()[0], bundle.splits["val"].as_tensors()[0]])
    y_train = torch.cat([bundle.splits["train"].as_tensors()[1], bundle.splits["val"].as_tensors()[1]])
    x_test, y_test = bundle.splits["test"].as_tensors()

    def prep(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255.0 - 0.5) / 0.5
        pad = (side - x.shape[-1]) // 2
        return F.pad(x, (pad, pad, pad, pad), value=-1.0) if pad else x

    return prep(x_train), y_train, prep(x_test), y_test


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum().item() for i in range(0, len(y), 1000))
    return correct / len(y)


def textbook(setup: dict, epochs: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = fashion_tensors(setup["side"])
    x_test, y_test = x_test.to(device), y_test.to(device)
    model = create_model(setup["model"], num_classes=10, in_chans=1, **setup["options"]).to(device)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    clock, curve, reached = 0.0, [], None
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        clock += time.perf_counter() - start
        acc = accuracy(model, x_test, y_test)
        curve.append({"epoch": epoch, "train_s": round(clock, 1), "test_top1": acc})
        print(f"textbook epoch {epoch}: {acc:.4f} after {clock:.0f}s", flush=True)
        if reached is None and acc >= setup["target"]:
            reached = clock
            break
    return {"curve": curve, "time_to_target_s": reached, "best": max(c["test_top1"] for c in curve)}


def cnnlab_recipe(setup: dict, device: torch.device) -> dict:
    side = setup["side"]
    options = dict(setup["cnnlab"], device=device.type)
    if device.type == "cuda":
        options.pop("amp", None)  # its default on CUDA: bf16 where the GPU has it
    result = train_model(
        data="builtin:fashion-mnist",
        model=setup["model"],
        model_options=setup["options"],
        input_size=[side, side],
        out="runs/bench-fmnist-" + setup["model"],
        overwrite=True,
        progress=False,
        **options,
    )
    acc = result.metrics["top1"]
    print(f"cnnlab: {acc:.4f} after {result.state.elapsed_s:.0f}s", flush=True)
    return {
        "test_top1": acc,
        "train_s": round(result.state.elapsed_s, 1),
        "epochs": result.state.epoch,
        "recipe": result.plan.to_dict(),
        "reached": acc >= setup["target"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=SETUPS, default="lenet")
    parser.add_argument("--textbook-epochs", type=int)
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for both loops")
    args = parser.parse_args()
    setup, device = SETUPS[args.model], torch.device(args.device)
    ours = cnnlab_recipe(setup, device)
    theirs = textbook(setup, args.textbook_epochs or setup["textbook_epochs"], device)
    ratio = (theirs["time_to_target_s"] / ours["train_s"]) if theirs["time_to_target_s"] else None
    summary = {
        "model": setup["model"],
        "target": setup["target"],
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "cnnlab": ours,
        "textbook": theirs,
        "speedup_to_target": ratio,
    }
    if ratio:
        print(
            f"speed-up to {setup['target']:.0%}: {ratio:.2f}x (cnnlab {ours['train_s']:.0f}s, "
            f"textbook {theirs['time_to_target_s']:.0f}s)"
        )
    else:
        print(
            f"textbook did not reach {setup['target']:.0%} (best {theirs['best']:.4f}); cnnlab "
            f"{ours['test_top1']:.4f} in {ours['train_s']:.0f}s"
        )
    save(f"fashion_mnist_{args.model}" + ("" if device.type == "cpu" else f"_{device.type}"), summary)


if __name__ == "__main__":
    main()
