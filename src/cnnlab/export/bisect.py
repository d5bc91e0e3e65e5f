"""When parity fails, find the first layer whose output diverges.

The torch side records each module's output with forward hooks. The ONNX side exposes the outputs
of the last node inside each module's name scope (the exporter records scopes in node metadata) as
extra graph outputs. Walking modules in execution order, the first whose outputs differ beyond the
tolerance is where the export went wrong.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SCOPE_KEY = "pkg.torch.onnx.name_scopes"


def _scopes(node: Any) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == SCOPE_KEY:
            try:
                return [s for s in ast.literal_eval(prop.value) if s]
            except (ValueError, SyntaxError):
                return []
    return []


def first_divergence(
    model: nn.Module, onnx_path: Path, batch: torch.Tensor, rtol: float = 1e-3, max_depth: int = 3
) -> dict[str, Any] | None:
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(onnx_path))
    last_output: dict[str, str] = {}
    for node in proto.graph.node:
        for scope in _scopes(node):
            if node.output:
                last_output[scope] = node.output[0]
    if not last_output:
        return None
    candidates = [
        name for name, _ in model.named_modules() if name and name.count(".") < max_depth and name in last_output
    ]
    recorded: dict[str, torch.Tensor] = {}
    order: list[str] = []
    hooks = []
    modules = dict(model.named_modules())
    for name in candidates:

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and name not in recorded:
                recorded[name] = out.detach().clone()
                order.append(name)

        hooks.append(modules[name].register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model.eval()(batch)
    finally:
        for h in hooks:
            h.remove()
    existing = {o.name for o in proto.graph.output}
    for name in order:
        value = last_output[name]
        if value not in existing:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(value))
            existing.add(value)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: batch.numpy()}), strict=True))
    checked = []
    for name in order:
        theirs = outputs.get(last_output[name])
        ours = recorded[name].numpy()
        if theirs is None or np.shape(theirs) != ours.shape:
            continue
        diff = float(np.abs(theirs - ours).max())
        tolerance = rtol * max(1.0, float(np.abs(ours).max()))
        checked.append({"module": name, "type": type(modules[name]).__name__, "max_abs_diff": diff})
        if diff > tolerance:
            return {
                "module": name,
                "type": type(modules[name]).__name__,
                "max_abs_diff": diff,
                "tolerance": tolerance,
                "checked_before": len(checked) - 1,
            }
    return {
        "module": None,
        "checked": len(checked),
        "note": "every checked module agrees; the divergence is in an op outside module scopes",
    }
