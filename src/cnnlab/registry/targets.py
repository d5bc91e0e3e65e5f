"""What a command's MODEL_OR_RUN argument names: a registry model, a design spec, or a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.errors import ConfigError


@dataclass
class Target:
    name: str
    kind: str  # "model" | "spec" | "run"
    model: nn.Module
    input_size: tuple[int, ...]
    card: Any = None  # ModelCard for runs
    path: Path | None = None


def parse_input_size(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224); also (C, L) and (C, D, H, W)."""
    try:
        dims = tuple(int(part) for part in text.lower().replace(",", "x").split("x") if part)
    except ValueError:
        raise ConfigError(f"--input {text!r}: write the input size as CxHxW, e.g. 3x224x224") from None
    if not 2 <= len(dims) <= 4 or any(d <= 0 for d in dims):
        raise ConfigError(f"--input {text!r}: expected CxL, CxHxW or CxDxHxW with positive sizes")
    return dims


def resolve_target(target: str | nn.Module, input_size: tuple[int, ...] | None = None) -> Target:
    """Build what ``target`` names, in eval mode, with the input size it expects (or ``input_size``)."""
    from cnnlab.registry import create_model, get_entry, is_spec_path

    if isinstance(target, nn.Module):
        if input_size is None:
            raise ConfigError("profiling an nn.Module needs input_size, e.g. (3, 224, 224)")
        return Target(type(target).__name__, "model", target.eval(), tuple(input_size))
    path = Path(target)
    if path.is_dir() or (path.is_file() and path.suffix == ".safetensors"):
        from cnnlab.runs import load_run

        run = load_run(path)
        size = tuple(input_size or run.card.input_size)
        return Target(str(path), "run", run.model, size, card=run.card, path=run.path)
    if is_spec_path(target):
        model = create_model(target)
        size = tuple(input_size or model.default_input_size)
        return Target(getattr(model, "spec_name", path.stem), "spec", model.eval(), size, path=path)
    entry = get_entry(target)
    model = create_model(target)
    size = tuple(input_size or entry.input_size)
    if input_size and entry.fixed_input_size and tuple(input_size) != tuple(entry.input_size):
        raise ConfigError(
            f"{target} only accepts input {'x'.join(map(str, entry.input_size))} (fixed-size positional "
            "embeddings); drop --input or choose another model"
        )
    return Target(target, "model", model.eval(), size)
