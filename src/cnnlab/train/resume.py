"""The resume checkpoint: model, optimizer, EMA, loss scaler, RNG and trainer state in one
safetensors file (tensors) whose metadata holds the rest as JSON. Written atomically, so a SIGKILL
at any moment leaves either the previous checkpoint or the new one, never a torn file."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CheckpointError
from cnnlab.runs import save_weights
from cnnlab.runs.statedict import load_state, read_state_dict

RESUME_FILE = "checkpoint.safetensors"
_META_KEY = "cnnlab_resume"


def _split_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_resume(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    ema: nn.Module | None,
    state: dict[str, Any],
    hooks: dict[str, Any],
    config: dict[str, Any],
) -> Path:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    optim_tensors, optim_meta = _split_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    numpy_state = np.random.get_state()
    meta = {
        "state": state,
        "hooks": hooks,
        "config": config,
        "optimizer": optim_meta,
        "scaler": scaler.state_dict(),
        "rng": {
            "python": _jsonable_random(random.getstate()),
            "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        },
    }
    return save_weights(path, tensors, {_META_KEY: json.dumps(meta)})


def _jsonable_random(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


@dataclass
class ResumeData:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    def _prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def restore(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, ema: nn.Module | None
    ) -> None:
        load_state(model, self._prefixed("model."))
        if ema is not None:
            ema_state = self._prefixed("ema.")
            load_state(ema, ema_state or self._prefixed("model."))
        optimizer.load_state_dict(_join_optimizer(self.tensors, self.meta["optimizer"]))
        if self.meta.get("scaler"):
            scaler.load_state_dict(self.meta["scaler"])
        torch.set_rng_state(self.tensors["rng.torch"])
        rng = self.meta.get("rng", {})
        if "python" in rng:
            version, internal, gauss = rng["python"]
            random.setstate((version, tuple(internal), gauss))
        if "numpy" in rng:
            name, keys, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def read_resume(path: Path) -> ResumeData:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist: this run has no resume checkpoint (it never finished an epoch or "
            "a timed checkpoint)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc}); it may be truncated") from None
    if not meta:
        raise CheckpointError(f"{path} is not a cnnlab resume checkpoint (no training state inside)")
    return ResumeData(read_state_dict(path), meta)
