"""cnnlab: a workbench for convolutional neural network architectures.

`import cnnlab` is cheap: the public API below is resolved on first use, so the CLI can answer
`--help` without importing torch, and timm/torchvision load only when a model from them is asked for.
Verbs are named after what they act on (``profile_model``, ``train_model``): the bare verbs are the
names of their packages (``cnnlab.profile``, ``cnnlab.train``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "create_model": "cnnlab.registry",
    "list_models": "cnnlab.registry",
    "model_info": "cnnlab.registry",
    "register_model": "cnnlab.registry",
    "ModelCard": "cnnlab.runs",
    "load_run": "cnnlab.runs",
    "save_model": "cnnlab.runs",
    "profile_model": "cnnlab.profile",
    "train_model": "cnnlab.train",
    "TrainConfig": "cnnlab.train",
    "evaluate_run": "cnnlab.evaluate",
    "open_dataset": "cnnlab.data",
    "load_predictor": "cnnlab.runtime",
    "predict": "cnnlab.runtime",
    "export_run": "cnnlab.export",
    "check_exportability": "cnnlab.export",
    "benchmark": "cnnlab.runtime.benchmark",
    "compress_run": "cnnlab.compress",
    "write_report": "cnnlab.report",
    "select_architecture": "cnnlab.select",
    "fit_data": "cnnlab.fit",
    "compare_models": "cnnlab.compare",
}

__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # pragma: no cover
    from cnnlab.compare import compare_models  # noqa: F401
    from cnnlab.compress import compress_run  # noqa: F401
    from cnnlab.data import open_dataset  # noqa: F401
    from cnnlab.evaluate import evaluate_run  # noqa: F401
    from cnnlab.export import check_exportability, export_run  # noqa: F401
    from cnnlab.fit import fit_data  # noqa: F401
    from cnnlab.profile import profile_model  # noqa: F401
    from cnnlab.registry import create_model, list_models, model_info, register_model  # noqa: F401
    from cnnlab.report import write_report  # noqa: F401
    from cnnlab.runs import ModelCard, load_run, save_model  # noqa: F401
    from cnnlab.runtime import load_predictor, predict  # noqa: F401
    from cnnlab.runtime.benchmark import benchmark  # noqa: F401
    from cnnlab.select import select_architecture  # noqa: F401
    from cnnlab.train import TrainConfig, train_model  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
