"""Structured channel pruning with Torch-Pruning, judged by measured latency, not MACs.

Torch-Pruning's dependency graph keeps coupled layers consistent (a residual sum, a depthwise conv
and the layers feeding them lose the same channels). Channel counts are rounded to the CPU's vector
block: ONNX Runtime and OpenVINO lay convolutions out in blocks of 16 channels on AVX-512 and 8 on
AVX2, and a count off the block falls back to slower kernels with layout reorders between them
(measured here on AVX-512: ResNet-20 pruned by a quarter to 8/24/48 channels ran 1.15x faster, to
16/48 channels 1.53x, with more MACs; benchmarks/compression_probes.py). Pruning proceeds in steps;
after each, a short recovery fine-tune, then the model is exported and timed on the target runtime.
It stops when a step no longer buys latency (pruned models that are not faster are the commonest
complaint).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.env import cpu_flags
from cnnlab.errors import ConfigError
from cnnlab.profile.counting import count_macs, count_params

IMPORTANCES = ("magnitude", "taylor")


@dataclass
class PruneStep:
    step: int
    target_ratio: float
    params: int
    macs: int
    val_top1: float
    latency_ms: float
    improved: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _importance(kind: str) -> Any:
    import torch_pruning as tp

    if kind == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise ConfigError(f"--importance {kind!r}: choose magnitude or taylor")


def cpu_channel_multiple() -> int:
    """The channel block of this CPU's convolution kernels: 16 floats per AVX-512 register, else 8."""
    return 16 if "avx512f" in cpu_flags() else 8


def check_channel_multiple(multiple: int | None) -> None:
    if multiple is not None and (not isinstance(multiple, int) or multiple < 1):
        raise ConfigError(
            f"--channel-multiple {multiple!r}: pruned layers keep a whole multiple of this many channels "
            "(16 for AVX-512 CPUs, 8 for AVX2 and most GPUs, 1 for none)"
        )


def check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"--prune {ratio}: the share of channels to remove must be between 0 and 1 (e.g. 0.5)")


def prune_iteratively(
    model: nn.Module,
    example: torch.Tensor,
    *,
    ratio: float,
    steps: int,
    importance: str,
    recover: Callable[[nn.Module, int], float],
    latency: Callable[[nn.Module, nn.Module], tuple[float, float]],
    gradients: Callable[[nn.Module], None] | None = None,
    round_to: int | None = None,
    min_gain: float = 0.03,
) -> tuple[list[PruneStep], str]:
    """Prune ``model`` in place toward ``ratio`` in ``steps`` steps; returns the steps and why it stopped.

    ``recover(model, step)`` fine-tunes and returns validation top-1; ``latency(before, after)`` measures
    the batch-1 latency of the model before and after a step on the deployment runtime, alternating
    (two measurements taken minutes apart differ by more than a step's gain on a shared machine);
    ``gradients(model)`` fills .grad for Taylor importance; ``round_to`` defaults to this CPU's
    ``cpu_channel_multiple()``. A step that removes no channel (rounding kept every layer) is not judged.
    """
    try:
        import torch_pruning as tp
    except ImportError:
        from cnnlab.errors import MissingDependencyError

        raise MissingDependencyError("torch-pruning", "compress", "structured pruning") from None
    check_ratio(ratio)
    check_channel_multiple(round_to)
    multiple = round_to or cpu_channel_multiple()
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=_importance(importance),
        pruning_ratio=ratio,
        iterative_steps=steps,
        round_to=multiple,
        ignored_layers=[classifier] if isinstance(classifier, nn.Module) else [],
    )
    history: list[PruneStep] = []
    reason = f"reached {ratio:.0%} of channels in {steps} steps (multiples of {multiple})"
    for step in range(1, steps + 1):
        if importance == "taylor" and gradients is not None:
            model.zero_grad()
            gradients(model)
        before = copy.deepcopy(model).eval()
        pruner.step()
        if count_params(model).total == count_params(before).total:
            continue  # rounding kept every layer whole: nothing to recover or time yet
        _check_still_runs(model, example)
        top1 = recover(model, step)
        previous, ms = latency(before, model)
        improved = ms < previous * (1 - min_gain)
        history.append(
            PruneStep(
                step, ratio * step / steps, count_params(model).total, count_macs(model, example)[0], top1, ms, improved
            )
        )
        if not improved:
            reason = (
                f"stopped after step {step}: latency {ms:.2f} ms is not {min_gain:.0%} better than "
                f"{previous:.2f} ms before it (measured alternating)"
            )
            break
    if not history:
        reason = (
            f"nothing pruned: keeping every layer a multiple of {multiple} channels left them all whole at "
            f"{ratio:.0%}; raise --prune or lower --channel-multiple"
        )
    return history, reason


def _check_still_runs(model: nn.Module, example: torch.Tensor) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    except RuntimeError as exc:
        raise ConfigError(
            "pruning broke the network: some layer couples channels in a way Torch-Pruning cannot follow "
            f"({str(exc).splitlines()[0][:160]}). Zero-padded shortcuts (CIFAR ResNet option A) are one; "
            "use projection shortcuts (option shortcut=B) for models you want to prune"
        ) from None
    finally:
        model.train(was_training)
