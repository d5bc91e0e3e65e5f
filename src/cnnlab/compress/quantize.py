"""Post-training static int8 quantization through ONNX Runtime (QDQ, per-channel weights), with a
sensitivity analysis that keeps the layers that cost the most accuracy in float.

Calibration runs once, on real images from the run's data, and is cached; each variant after that
(one layer group quantized at a time, or everything but the most sensitive groups) reuses the
ranges, so the analysis costs one quantization per group, not one calibration.

Layer groups come from the exporter's module scopes (``stages.1.0``, ``layer2.0.conv1``): a group
is the deepest scope at most two levels below the network, so blocks (or single convolutions in
flat models) are kept float or quantized together.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.env import cpu_flags
from cnnlab.errors import ConfigError

CALIBRATIONS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


def has_vnni() -> bool:
    """AVX512-VNNI / AVX-VNNI: int8 dot products without the u8*s8 saturation of plain AVX2."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def layer_groups(onnx_path: Path) -> dict[str, list[str]]:
    """Quantizable nodes by module group, in graph order."""
    import onnx

    groups: dict[str, list[str]] = {}
    for node in onnx.load(str(onnx_path)).graph.node:
        if node.op_type not in QUANTIZED_OPS:
            continue
        scopes: list[str] = []
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                try:
                    scopes = [s for s in ast.literal_eval(prop.value) if s]
                except (ValueError, SyntaxError):
                    scopes = []
        # the last scope is the op itself ('linear', '_native_batch_norm…'); a convolution with a folded
        # norm is labelled with the norm's scope, so a trailing 'bn'/'norm' names its parent instead
        candidates = [_unfold(s) for s in scopes[:-1] if s.count(".") <= 2]
        groups.setdefault(candidates[-1] if candidates else node.name, []).append(node.name)
    return groups


def _unfold(scope: str) -> str:
    parent, _, leaf = scope.rpartition(".")
    return parent if parent and re.fullmatch(r"(bn|norm|batchnorm|batch_norm)\d*", leaf) else scope


class _Reader:
    """ORT calibration reader over pre-processed numpy batches."""

    def __init__(self, batches: Sequence[np.ndarray], input_name: str) -> None:
        self._items = iter([{input_name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # some ORT calibrators call it
        pass


@dataclass
class Quantizer:
    """Quantizes one fp32 ONNX model into int8 variants, calibrating once.

    Use it as a context manager: the scratch folder (a pre-processed copy of the model, the
    calibration cache, one model per sensitivity probe) is removed on exit."""

    fp32_path: Path
    calibration: list[np.ndarray]
    method: str = "minmax"
    per_channel: bool = True
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cnnlab-quant-")))

    def __post_init__(self) -> None:
        if self.method not in CALIBRATIONS:
            raise ConfigError(f"--calibration {self.method!r}: choose one of {', '.join(CALIBRATIONS)}")
        from onnxruntime.quantization import quant_pre_process

        self.prepared = self.workdir / "prepared.onnx"
        quant_pre_process(str(self.fp32_path), str(self.prepared), skip_symbolic_shape=True)
        self.cache = self.workdir / "calibration.json"
        import onnx

        self.input_name = onnx.load(str(self.prepared), load_external_data=False).graph.input[0].name

    def __enter__(self) -> Quantizer:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def quantize(self, out: Path, *, include: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> Path:
        """int8 QDQ model; only ``include`` nodes when given, never the ``exclude`` ones."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[self.method]
        extra: dict[str, Any] = {"WeightSymmetric": True, "ActivationSymmetric": False}
        if self.method == "percentile":
            extra["CalibPercentile"] = 99.999
        quantize_static(
            str(self.prepared),
            str(out),
            _Reader(self.calibration, self.input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=self.per_channel,
            # u8 activations x s8 weights is the fast x86 path; without VNNI it can saturate, so ORT's
            # advice is 7-bit weights there (reduce_range).
            reduce_range=not has_vnni(),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=list(include) if include is not None else None,
            nodes_to_exclude=list(exclude),
            calibrate_method=method,
            extra_options=extra,
            calibration_cache_path=str(self.cache),
        )
        return out


@dataclass
class Sensitivity:
    group: str
    nodes: int
    accuracy: float
    drop: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sensitivity_ranking(
    quantizer: Quantizer, groups: dict[str, list[str]], evaluate: Callable[[Path], float], baseline: float
) -> list[Sensitivity]:
    """Quantize one group at a time; most costly first (ties broken by graph order, so it is deterministic)."""
    results = []
    for i, (group, nodes) in enumerate(groups.items()):
        path = quantizer.quantize(quantizer.workdir / f"only-{i}.onnx", include=nodes)
        accuracy = evaluate(path)
        results.append((i, Sensitivity(group, len(nodes), accuracy, baseline - accuracy)))
    return [s for _, s in sorted(results, key=lambda item: (-round(item[1].drop, 6), item[0]))]


@dataclass
class PTQResult:
    path: Path
    accuracy: float
    drop: float
    float_groups: list[dict[str, Any]]  # kept in float, with the accuracy each cost when quantized alone
    sensitivity: list[Sensitivity]
    attempts: list[dict[str, Any]]
    within_budget: bool


def quantize_within_budget(
    quantizer: Quantizer,
    evaluate: Callable[[Path], float],
    baseline: float,
    max_drop: float,
    out: Path,
    max_float_fraction: float = 0.5,
) -> PTQResult:
    """Everything int8 if that is within ``max_drop``; else keep the most sensitive groups float, one
    more at a time, until it is (or half the groups are float: then QAT is the better tool)."""
    groups = layer_groups(quantizer.prepared)
    path = quantizer.quantize(out)
    accuracy = evaluate(path)
    attempts = [{"float_groups": 0, "accuracy": accuracy, "drop": baseline - accuracy}]
    if baseline - accuracy <= max_drop or not groups:
        return PTQResult(path, accuracy, baseline - accuracy, [], [], attempts, True)
    ranking = sensitivity_ranking(quantizer, groups, evaluate, baseline)
    limit = max(1, int(len(groups) * max_float_fraction))
    for k in range(1, limit + 1):
        keep = ranking[:k]
        excluded = [n for s in keep for n in groups[s.group]]
        path = quantizer.quantize(out, exclude=excluded)
        accuracy = evaluate(path)
        attempts.append({"float_groups": k, "accuracy": accuracy, "drop": baseline - accuracy})
        if baseline - accuracy <= max_drop:
            break
    float_groups = [
        {
            "group": s.group,
            "drop_when_quantized_alone": s.drop,
            "why": f"the most costly {k} of {len(groups)} groups to quantize",
        }
        for s in keep
    ]
    return PTQResult(
        path, accuracy, baseline - accuracy, float_groups, ranking, attempts, baseline - accuracy <= max_drop
    )
