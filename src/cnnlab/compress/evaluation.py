"""Accuracy and latency of every compression step, measured the same way for torch and artifacts."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.runs import ModelCard


class EvalSet:
    """A split of the run's data, pre-processed once with the card's pipeline, held in memory."""

    def __init__(self, bundle: Any, card: ModelCard, split: str, limit: int | None = None) -> None:
        from cnnlab.tasks import task_for_card
        from cnnlab.train import setup

        self.task = task_for_card(card)
        source = bundle.splits[split]
        if limit and len(source) > limit:
            step = len(source) // limit
            source = source.subset(list(range(0, step * limit, step)))
        memory = bundle.native_size is not None and max(bundle.native_size) <= 64
        self.batches = list(
            setup.eval_batches(source, card, memory=memory, collate=self.task.collate, batch_size=128)()
        )
        self.split = split
        self.size = sum(len(y) for _, y in self.batches)

    def numpy_batches(self, count: int) -> list[np.ndarray]:
        """Up to ``count`` images as numpy batches (calibration data)."""
        out, seen = [], 0
        for x, _ in self.batches:
            out.append(x[: count - seen].numpy())
            seen += len(out[-1])
            if seen >= count:
                break
        return out

    def labelled_numpy(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(x.numpy(), y.numpy()) for x, y in self.batches]

    def top1(self, run: Callable[[torch.Tensor], torch.Tensor]) -> float:
        metrics = self.task.new_metrics()
        with torch.inference_mode():
            for x, y in self.batches:
                metrics.update(run(x), y)
        return float(metrics.compute()["top1"])

    def torch_top1(self, model: nn.Module) -> float:
        model.eval()
        return self.top1(model)

    def onnx_top1(self, path: Path) -> float:
        session = ort_session(path)
        name = session.get_inputs()[0].name
        return self.top1(lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]))


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    from cnnlab.runtime.backends import physical_cores

    options = ort.SessionOptions()
    options.intra_op_num_threads = physical_cores()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_fp32(model: nn.Module, card: ModelCard, folder: Path) -> Path:
    from cnnlab.export.formats import FORMATS, ExportContext, export_format

    example = torch.randn(2, *card.input_size)
    # a model fresh from channels_last training would trace its flatten as strided gathers
    model = model.eval().to(memory_format=torch.contiguous_format)
    return export_format(FORMATS["onnx"], ExportContext(model, card, example, folder))["path"]


def runtime_callables(onnx_path: Path, card: ModelCard, single: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Batch-1 runners of an ONNX model on ONNX Runtime, and on OpenVINO when it is installed (an
    OpenVINO IR runs on OpenVINO alone)."""
    data = single.numpy()
    runners: dict[str, Callable[[], object]] = {}
    if onnx_path.suffix == ".onnx":
        session = ort_session(onnx_path)
        name = session.get_inputs()[0].name
        runners["onnxruntime"] = lambda: session.run(None, {name: data})
    try:
        from cnnlab.runtime.backends import OpenVINOPredictor

        ov = OpenVINOPredictor(onnx_path, card)
        runners["openvino"] = lambda: ov.run_numpy(data)
    except Exception:
        pass
    return runners


def paired_latency_ms(
    before: nn.Module, after: nn.Module, card: ModelCard, runtime: str = "onnxruntime"
) -> tuple[float, float]:
    """Batch-1 median latency of two models exported and run on ``runtime``, timed in alternating rounds
    in one call, so the ratio holds on a noisy machine (a pruning step's yardstick)."""
    from cnnlab.profile.latency import alternating_medians

    single = torch.randn(1, *card.input_size)
    with tempfile.TemporaryDirectory() as folder:
        runners = {}
        for name, model in (("before", before), ("after", after)):
            path = export_fp32(model, card, Path(folder) / name)
            runners[name] = runtime_callables(path, card, single)[runtime]
        medians = alternating_medians(runners, rounds=15, runs=10, warmup=5)
    return medians["before"].median_ms, medians["after"].median_ms
