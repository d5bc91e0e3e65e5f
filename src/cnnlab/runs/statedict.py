"""Reading and loading state dicts without ever running a pickle's code.

safetensors is read directly. A ``.pt/.pth/.bin`` pickle is an explicit import path through
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers; a file that
needs anything more is refused, because unpickling arbitrary objects can execute arbitrary code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from cnnlab.errors import CheckpointError, UnsafeCheckpointError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")
# Wrappers that training scripts put around a state dict.
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "ema", "state_dict_ema")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, unwrapped from common containers, ``module.`` prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"weights file {path} is empty (0 bytes); the download or copy was interrupted")
    if path.suffix == ".safetensors":
        state = _read_safetensors(path)
    elif path.suffix in PICKLE_SUFFIXES:
        state = _read_pickle(path)
    else:
        raise CheckpointError(
            f"weights file {path} has suffix {path.suffix or '(none)'}; cnnlab reads .safetensors and, "
            f"as an explicit import, {', '.join(PICKLE_SUFFIXES)}"
        )
    return _unwrap(state, path)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"weights file {path} is not a readable safetensors file ({exc}); it may be truncated or "
            "corrupt: copy it again"
        ) from None


def _read_pickle(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).split("\n")[0]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise UnsafeCheckpointError(
                f"{path} is a pickle that asks to build Python objects beyond tensors ({detail}). cnnlab "
                "refuses it because unpickling can run arbitrary code. If you trust the file, re-save its "
                "state dict with torch.save(model.state_dict(), ...) or convert it to .safetensors"
            ) from None
        raise CheckpointError(f"{path} is not a readable PyTorch file ({detail}); it may be corrupt") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        detail = str(exc).split("\n")[0]
        raise CheckpointError(
            f"{path} is not a readable PyTorch file ({detail}); it may be truncated or corrupt"
        ) from None


def _unwrap(state: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(state, dict) and not _is_tensor_dict(state):
            inner = next((state[k] for k in _CONTAINER_KEYS if isinstance(state.get(k), dict)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, dict) or not _is_tensor_dict(state):
        raise CheckpointError(
            f"{path} holds no state dict (a mapping of names to tensors); found {type(state).__name__}"
        )
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):  # saved from DataParallel/DDP
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _is_tensor_dict(d: dict) -> bool:
    values = list(d.values())
    return bool(values) and sum(isinstance(v, torch.Tensor) for v in values) >= max(1, len(values) // 2)


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> None:
    """``model.load_state_dict`` for a plain dict read from a file.

    Some modules check per-module version metadata that only ``state_dict()`` carries (torchvision's
    MNASNet refuses to load without it); a dict read from safetensors has none, so lend it the model's.
    """
    if not hasattr(state, "_metadata"):
        from collections import OrderedDict

        state = OrderedDict(state)
        state._metadata = getattr(model.state_dict(), "_metadata", None)  # type: ignore[attr-defined]
    model.load_state_dict(state, strict=strict)
