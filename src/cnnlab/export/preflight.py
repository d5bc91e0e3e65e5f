"""Pre-flight: before a long training, which formats will this architecture convert to?

Each format is tried on the untrained architecture at its default input, and its artifact run once.
A failure names the operators that block the format, read from the converter's message.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError

_OP_PATTERNS = (
    r"aten[.:]{1,2}[A-Za-z_0-9]+(?:\.[A-Za-z_0-9]+)?",
    r"No conversion rule (?:found )?for (?:operation |operator )?['\"]?([A-Za-z_:.0-9]+)",
    r"[Uu]nsupported (?:op|operator|operation)s?[: ]+['\"]?([A-Za-z_:.0-9]+)",
)


def clean_message(message: str) -> str:
    """A converter's message without terminal colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m|\[[0-9;]*m", "", message)


def blocking_ops(message: str) -> list[str]:
    """Operator names mentioned in a converter's error, in order, once each (``aten.x.default`` is ``aten.x``)."""
    found: list[str] = []
    for pattern in _OP_PATTERNS:
        for match in re.finditer(pattern, clean_message(message)):
            op = match.group(1) if match.groups() else match.group(0)
            op = re.sub(r"\.default$", "", op)
            if op not in found:
                found.append(op)
    return found


def check_exportability(
    target: str | torch.nn.Module,
    formats: Sequence[str] = ("onnx", "openvino", "torchscript", "tflite"),
    input_size: Sequence[int] | None = None,
) -> dict[str, dict[str, Any]]:
    """{format: {"ok": bool, "reason": str, "blocking_ops": [...]}} for an untrained architecture."""
    from cnnlab.export.formats import FORMATS, ExportContext, export_format
    from cnnlab.export.parity import compare
    from cnnlab.registry.targets import resolve_target
    from cnnlab.runs import ModelCard
    from cnnlab.runtime.backends import artifact_predictor

    resolved = resolve_target(target, tuple(input_size) if input_size else None)
    size = list(resolved.input_size)
    example = torch.randn(2, *size)
    with torch.inference_mode():
        outputs = resolved.model.eval()(example).shape[1]
    card = ModelCard(
        architecture=resolved.name,
        num_classes=max(2, int(outputs)),
        in_chans=size[0],
        input_size=size,
        mean=[0.5] * size[0],
        std=[0.5] * size[0],
    )
    results: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="cnnlab-preflight-"))
    ctx = ExportContext(resolved.model.eval(), card, example, work)
    try:
        for name in formats:
            try:
                details = export_format(FORMATS[name], ctx)
                predictor = artifact_predictor(details["path"], card)
                with torch.inference_mode():
                    max_diff, _, _, tolerance = compare(resolved.model(example), predictor.run(example), 1e-3)
                ok = max_diff <= tolerance
                results[name] = {
                    "ok": ok,
                    "blocking_ops": [],
                    "reason": "converts and runs" if ok else f"converts, but outputs differ by {max_diff:.3g}",
                }
            except CnnlabError as exc:
                results[name] = {"ok": False, "reason": str(exc), "blocking_ops": []}
            except Exception as exc:
                message = clean_message(str(exc))
                ops = blocking_ops(message)
                reason = f"unsupported op(s): {', '.join(ops)}" if ops else message.splitlines()[0][:300]
                results[name] = {"ok": False, "reason": reason, "blocking_ops": ops}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results
