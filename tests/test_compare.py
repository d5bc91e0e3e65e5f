"""`cnnlab compare`: the same recipe and budget for each model, measured alike, one report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from cnnlab.train import train_model

    root = tmp_path_factory.mktemp("compare")
    existing = root / "earlier-lenet"
    train_model(data="builtin:digits", model="lenet5", epochs=2, out=existing, progress=False)
    result = run_cli(
        "compare",
        "cifar_resnet20",
        "mobilenetv2_050",
        str(existing),
        "--data",
        "builtin:digits",
        "--epochs",
        "2",
        "--cam-samples",
        "4",
        "--out",
        str(root / "cmp"),
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "cmp", json.loads(result.stdout)


def test_every_model_is_trained_alike_and_measured(compared: tuple[Path, dict]) -> None:
    out, summary = compared
    rows = {row["name"]: row for row in summary["rows"]}
    assert set(rows) == {"cifar_resnet20", "mobilenetv2_050", "earlier-lenet"}
    for name in ("cifar_resnet20", "mobilenetv2_050"):
        record = json.loads((out / name / "run.json").read_text())
        assert record["config"]["epochs"] == 2 and record["config"]["recipe"] == "auto"
    for row in rows.values():
        assert row["test_top1"] is not None and row["params"] > 0 and row["macs"] > 0 and row["size_bytes"] > 0
        assert "onnxruntime" in row["latency_ms"] and "torch" in row["latency_ms"]  # timed where verified
    assert rows["cifar_resnet20"]["params"] == 269_434  # ResNet-20, 10 classes, 1 input channel
    assert (out / "earlier-lenet").exists() is False  # an existing run is used in place, not copied


def test_the_report_shows_them_side_by_side_with_grad_cam(compared: tuple[Path, dict]) -> None:
    out, _ = compared
    html = (out / "report.html").read_text()
    overview = html[html.index('id="overview"') : html.index("</table>")]
    assert overview.count("<tr>") == 4 and "params" in overview and "MACs" in overview
    assert len(re.findall(r'<img alt="Grad-CAM samples" src="data:image/png;base64,', html)) == 3
    assert len(re.findall(r'<img alt="confusion matrix"', html)) == 3


def test_bad_requests_are_one_clear_error(tmp_path: Path) -> None:
    from cnnlab.compare import compare_models

    with pytest.raises(ConfigError, match="at least two"):
        compare_models(["lenet5"], "builtin:digits")
    with pytest.raises(ConfigError, match="same model twice"):
        compare_models(["lenet5", "lenet5"], "builtin:digits")
    result = run_cli("compare", "lenet5", "no_such_net", "--data", "builtin:digits", "--epochs", "1")
    assert result.returncode == 2 and "no_such_net" in result.stderr and "Traceback" not in result.stderr
    assert not list(Path("runs").glob("compare-*/lenet5"))  # refused before anything was trained
