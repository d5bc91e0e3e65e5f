"""The export formats: how each one is produced from a model in eval mode.

Every artifact takes the model's pre-processed float input (NCHW, normalised by the card) and
returns its raw outputs; pre- and post-processing stay in cnnlab's shared code.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import MissingDependencyError
from cnnlab.runs import ModelCard
from cnnlab.runtime.artifact_card import CARD_KEY, write_sidecar
from cnnlab.runtime.backends import STATIC_BATCH_FILE

DEFAULT_OPSET = 18


@dataclass
class ExportContext:
    model: nn.Module
    card: ModelCard
    example: torch.Tensor  # a batch of 2: shapes and dtypes to trace with
    out_dir: Path
    opset: int = DEFAULT_OPSET
    onnx_path: Path | None = None  # set once ONNX is exported (OpenVINO converts from it)

    @property
    def static_batch(self) -> int | None:
        """The batch a model's graph is fixed at, for models that trace one image at a time
        (torchvision's detectors take a list of images: the trace unrolls it); None: dynamic."""
        return getattr(self.model, "export_batch", None)


@dataclass(frozen=True)
class ExportFormat:
    name: str
    filename: str
    runtime: str
    dynamic_batch: bool
    export: Callable[[ExportContext], dict]
    needs: tuple[str, str] | None = None  # (package, extra) of an optional dependency


def _export_onnx(ctx: ExportContext) -> dict:
    import onnx

    path = ctx.out_dir / "model.onnx"
    if ctx.static_batch:
        details = _export_onnx_per_image(ctx, path)
    else:
        details = _export_onnx_dynamic(ctx, path)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, ctx.card.to_json()
    details["opset"] = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), ctx.opset)
    onnx.save(model, str(path))
    ctx.onnx_path = path
    return {"path": path, **details}


def _export_onnx_per_image(ctx: ExportContext, path: Path) -> dict:
    """The TorchScript-based exporter, batch fixed: it follows the detectors' data-dependent Python
    (per-image loops, NMS, a variable number of boxes) that torch.export cannot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ctx.model,
            (ctx.example[: ctx.static_batch],),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            opset_version=ctx.opset,
        )
    return {
        "opset": ctx.opset,
        "dynamic_batch": False,
        "batch": ctx.static_batch,
        "exporter": "torch.onnx (TorchScript-based), one image per run",
    }


def _export_onnx_dynamic(ctx: ExportContext, path: Path) -> dict:
    batch = torch.export.Dim.DYNAMIC
    details: dict = {"opset": ctx.opset, "dynamic_batch": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                ctx.model,
                (ctx.example,),
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: batch},),
                opset_version=ctx.opset,
                optimize=True,
                external_data=False,
                verbose=False,
            )
            program.save(str(path), external_data=False)
            details["exporter"] = "torch.export (dynamo)"
        except Exception as first:
            try:
                torch.onnx.export(
                    ctx.model,
                    (ctx.example,),
                    str(path),
                    dynamo=False,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                    opset_version=ctx.opset,
                )
            except Exception:
                raise first from None
            details["exporter"] = "torch.onnx (TorchScript-based)"
    return details


def _export_openvino(ctx: ExportContext) -> dict:
    try:
        import openvino as ov
    except ImportError:
        raise MissingDependencyError("openvino", "openvino", "OpenVINO export") from None
    source = ctx.onnx_path or _export_onnx(ctx)["path"]
    model = ov.convert_model(str(source))
    model.set_rt_info(ctx.card.to_json(), [CARD_KEY])
    path = ctx.out_dir / "model.xml"
    # fp32 weights: fp16 compression belongs to the compress step, where accuracy is measured.
    ov.save_model(model, str(path), compress_to_fp16=False)
    return {"path": path, "converted_from": "onnx", "weights": "fp32", "dynamic_batch": not ctx.static_batch}


def _export_torchscript(ctx: ExportContext) -> dict:
    path = ctx.out_dir / "model.ts.pt"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(ctx.model, ctx.example[: ctx.static_batch], check_trace=False)
        extra = {f"{CARD_KEY}.json": ctx.card.to_json()}
        if ctx.static_batch:
            extra[STATIC_BATCH_FILE] = str(ctx.static_batch)
        torch.jit.save(traced, str(path), _extra_files=extra)
    return {"path": path, "method": "trace", "dynamic_batch": not ctx.static_batch}


def _export_tflite(ctx: ExportContext) -> dict:
    from cnnlab.export.quiet import captured_output

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    path = ctx.out_dir / "model.tflite"
    with captured_output() as log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import litert_torch
        except ImportError:
            raise MissingDependencyError("litert-torch", "tflite", "TFLite export") from None
        try:
            edge = litert_torch.convert(ctx.model.eval(), (ctx.example[:1],))
            edge.export(str(path))
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{log.text[-2000:]}") from None
    return {"path": path, "converter": "litert-torch", "dynamic_batch": False, "batch": 1}


FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat("onnx", "model.onnx", "onnxruntime", True, _export_onnx),
    "openvino": ExportFormat("openvino", "model.xml", "openvino", True, _export_openvino, ("openvino", "openvino")),
    "torchscript": ExportFormat("torchscript", "model.ts.pt", "torchscript", True, _export_torchscript),
    "tflite": ExportFormat("tflite", "model.tflite", "tflite", False, _export_tflite, ("litert-torch", "tflite")),
}


def export_format(fmt: ExportFormat, ctx: ExportContext) -> dict:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    details = fmt.export(ctx)
    write_sidecar(details["path"], ctx.card)
    return details
