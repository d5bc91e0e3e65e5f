"""Predictors for exported artifacts: ONNX Runtime, OpenVINO, TorchScript, TFLite, and torch.compile.

Each backend only runs the model on a pre-processed float batch (NCHW, normalised): pre- and
post-processing are the shared ones of ``Predictor``. Optional runtimes are imported here, when
used, with an actionable message when missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CheckpointError, MissingDependencyError
from cnnlab.runs import ModelCard
from cnnlab.runtime.predictor import Predictor

STATIC_BATCH_FILE = "cnnlab_static_batch"  # TorchScript extra file: the batch a per-image trace was fixed at


def physical_cores() -> int:
    """Intra-op threads worth using: hyper-threads share the FPU, so physical cores (or the affinity mask)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 1
    return max(1, available)


def in_slices(run_numpy: Any, batch: np.ndarray, static_batch: int | None) -> np.ndarray:
    """Run a graph whose batch was fixed at export (TFLite's flattened graphs; detectors traced one
    image at a time) on any batch: slices of its own batch, the last one zero-padded."""
    if static_batch is None or batch.shape[0] == static_batch:
        return run_numpy(batch)
    outputs = []
    for start in range(0, batch.shape[0], static_batch):
        chunk = batch[start : start + static_batch]
        if chunk.shape[0] < static_batch:
            pad = np.zeros((static_batch - chunk.shape[0], *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        outputs.append(np.array(run_numpy(chunk)))
    return np.concatenate(outputs)[: batch.shape[0]]


class OnnxRuntimePredictor(Predictor):
    runtime = "onnxruntime"

    def __init__(self, path: Path, card: ModelCard, threads: int | None = None) -> None:
        super().__init__(card)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or physical_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CheckpointError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        self.static_batch = graph_input.shape[0] if isinstance(graph_input.shape[0], int) else None
        self.threads = options.intra_op_num_threads

    def run_numpy(self, batch: np.ndarray) -> np.ndarray:
        return in_slices(lambda b: self.session.run(None, {self.input_name: b})[0], batch, self.static_batch)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.run_numpy(batch.numpy().astype(np.float32, copy=False)))


class OpenVINOPredictor(Predictor):
    """OpenVINO on the CPU. The model is compiled for the static batch it is asked to run (and cached
    per batch size): with a dynamic batch dimension OpenVINO's CPU plugin is ~2x slower at batch 1
    (measured on mobilenetv2_100 here: 7.4 ms dynamic vs 3.9 ms static, f32).

    ``precision`` is the inference precision: ``f32`` (default: parity with the trained model) or
    ``bf16``, which cnnlab only selects after verifying agreement (see export's runtime choice).
    """

    runtime = "openvino"

    def __init__(self, path: Path, card: ModelCard, threads: int | None = None, precision: str = "f32") -> None:
        super().__init__(card)
        try:
            import openvino as ov
        except ImportError:
            raise MissingDependencyError("openvino", "openvino", "the OpenVINO runtime") from None
        self.core = ov.Core()
        try:
            self.model = self.core.read_model(str(path))
        except Exception as exc:
            raise CheckpointError(f"OpenVINO cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
        self.threads = threads or physical_cores()
        self.precision = precision
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": self.threads,
        }
        first = self.model.input(0).get_partial_shape()[0]
        self.static_batch = first.get_length() if first.is_static else None  # a graph traced per image
        self._compiled: dict[int, Any] = {}
        self._request(self.static_batch or 1)  # compile now, so a broken model fails at load, not at the first image

    def _request(self, batch: int) -> Any:
        if batch not in self._compiled:
            model = self.model.clone()
            model.reshape([batch, *self.card.input_size])
            compiled = self.core.compile_model(model, "CPU", self.config)
            self._compiled[batch] = (compiled, compiled.create_infer_request())
        return self._compiled[batch]

    def run_numpy(self, batch: np.ndarray) -> np.ndarray:
        return in_slices(self._infer, batch, self.static_batch)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        compiled, request = self._request(batch.shape[0])
        return request.infer({0: batch})[compiled.output(0)]

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(self.run_numpy(batch.numpy().astype(np.float32, copy=False))))


def openvino_has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX512-BF16 or AMX), as OpenVINO reports it."""
    try:
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False


class TorchScriptPredictor(Predictor):
    runtime = "torchscript"

    def __init__(self, path: Path, card: ModelCard, threads: int | None = None) -> None:
        super().__init__(card)
        import warnings

        try:
            with warnings.catch_warnings():  # torch marks TorchScript deprecated; the format is still what many deploy
                warnings.simplefilter("ignore", FutureWarning)
                extra = {STATIC_BATCH_FILE: ""}
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
        except RuntimeError as exc:
            raise CheckpointError(f"cannot load TorchScript {path}: {str(exc).splitlines()[0][:200]}") from None
        self.static_batch = int(extra[STATIC_BATCH_FILE]) if extra[STATIC_BATCH_FILE] else None
        self.threads = threads

    @torch.inference_mode()
    def run(self, batch: torch.Tensor) -> torch.Tensor:
        if self.static_batch is None:
            return self.module(batch)
        return torch.from_numpy(
            in_slices(lambda b: self.module(torch.from_numpy(b)).numpy(), batch.numpy(), self.static_batch)
        )


class TFLitePredictor(Predictor):
    runtime = "tflite"

    def __init__(self, path: Path, card: ModelCard, threads: int | None = None) -> None:
        super().__init__(card)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise MissingDependencyError("ai-edge-litert", "tflite", "the TFLite runtime") from None
        self.threads = threads or physical_cores()
        try:
            from cnnlab.export.quiet import captured_output

            with captured_output():  # LiteRT announces its XNNPACK delegate on stderr
                self.interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise CheckpointError(f"LiteRT cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
        details = self.interpreter.get_input_details()[0]
        self.input_index = details["index"]
        self.static_batch = int(details["shape"][0])
        self.output_index = self.interpreter.get_output_details()[0]["index"]

    def run_numpy(self, batch: np.ndarray) -> np.ndarray:
        # The converter fixes the batch (graphs flatten with static shapes, which XNNPACK cannot resize).
        return in_slices(self._invoke, batch, self.static_batch)

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_index, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).copy()

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(self.run_numpy(np.ascontiguousarray(batch.numpy(), dtype=np.float32))))


class CompiledTorchPredictor(Predictor):
    """torch.compile (inductor) of the eager model: compiles on the first call of each batch size."""

    runtime = "torch.compile"

    def __init__(self, model: torch.nn.Module, card: ModelCard, threads: int | None = None) -> None:
        super().__init__(card)
        import logging

        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPU hosts
        self.model = model.eval()
        self.compiled = torch.compile(self.model, dynamic=False)
        self.threads = threads

    @torch.inference_mode()
    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.compiled(batch)


ARTIFACT_RUNTIMES: dict[str, tuple[str, type[Predictor]]] = {
    ".onnx": ("onnxruntime", OnnxRuntimePredictor),
    ".xml": ("openvino", OpenVINOPredictor),
    ".tflite": ("tflite", TFLitePredictor),
    ".pt": ("torchscript", TorchScriptPredictor),
}


def artifact_predictor(path: Path, card: ModelCard, threads: int | None = None, precision: str = "f32") -> Predictor:
    suffix = ".pt" if path.name.endswith(".ts.pt") else path.suffix
    if suffix not in ARTIFACT_RUNTIMES:
        raise CheckpointError(f"{path}: not an exported model cnnlab runs (.onnx, .xml, .tflite, .ts.pt)")
    if suffix == ".xml":
        return OpenVINOPredictor(path, card, threads, precision)
    return ARTIFACT_RUNTIMES[suffix][1](path, card, threads)


def runtime_info(predictor: Any) -> dict[str, Any]:
    return {"runtime": predictor.runtime, "threads": getattr(predictor, "threads", None)}
