"""The command line as a user meets it: fast help, one JSON document, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_help_imports_no_torch() -> None:
    # what keeps --help fast; its time (0.17 s) is measured in benchmarks/startup.py, never asserted
    result = run_cli("--help")
    assert result.returncode == 0 and "models" in result.stdout and "profile" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cnnlab.cli import app; app.app(['--help'], "
            "standalone_mode=False); print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip().endswith("False")


def test_version() -> None:
    import cnnlab

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cnnlab {cnnlab.__version__}"


@pytest.mark.parametrize(
    "command", [["models", "list"], ["models", "info"], ["profile"], ["models"], ["train"], ["evaluate"], ["predict"]]
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    if command not in (["models"],):
        assert "Example: cnnlab" in result.stdout


def test_models_list_json_is_one_document() -> None:
    result = run_cli("models", "list", "--source", "cnnlab", "--json")
    assert result.returncode == 0
    names = [m["name"] for m in json.loads(result.stdout)]
    assert "lenet5" in names and "cifar_resnet56" in names


def test_models_info() -> None:
    result = run_cli("models", "info", "mobilenetv2_100", "--json")
    data = json.loads(result.stdout)
    assert data["family"] == "mobilenetv2" and data["year"] == 2018


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "info", "resnet5O"], "unknown model 'resnet5O'; did you mean"),
        (["profile", "lenet5", "--batch", "x"], "--batch 'x'"),
        (["profile", "lenet5", "--input", "3xabc"], "--input '3xabc'"),
        (["models", "list", "--task", "segmentation"], "unknown task"),
    ],
)
def test_user_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_train_evaluate_predict_through_the_cli(tmp_path) -> None:
    from PIL import Image

    out = tmp_path / "run"
    trained = run_cli(
        "train", "--data", "builtin:digits", "--model", "lenet5", "--epochs", "3", "--out", str(out), "--json"
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["run"] == str(out) and summary["test"]["top1"] > 0.5 and summary["recipe"] == "scratch"
    evaluated = run_cli("evaluate", str(out), "--split", "val", "--json")
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["split"] == "val"
    table = run_cli("evaluate", str(out))
    assert "macro-F1" in table.stdout and "precision" in table.stdout
    (tmp_path / "imgs").mkdir()
    Image.new("L", (8, 8), 0).save(tmp_path / "imgs" / "blank.png")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"nope")
    predicted = run_cli("predict", str(out), str(tmp_path / "imgs"), "--top-k", "2", "--json")
    assert predicted.returncode == 0, predicted.stderr
    results = {Path(r["input"]).name: r for r in json.loads(predicted.stdout)}
    assert len(results["blank.png"]["top_k"]) == 2 and "error" in results["broken.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "builtin:digits"], "needs --data and --model"),
        (["train", "--data", "builtin:digits", "--model", "lenet5", "--recipe", "fast"], "--recipe 'fast'"),
        (["train", "--data", "builtin:nope", "--model", "lenet5"], "builtin:nope"),
        (["train", "--data", "builtin:digits", "--model", "lenet5", "--budget", "soon"], "--budget 'soon'"),
        (["train", "--resume", "/nowhere"], "does not exist"),
        (["evaluate", "/nowhere"], "does not exist"),
        (["predict", "no_such_model", "x.png"], "unknown model"),
    ],
)
def test_train_user_errors(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["train", "--bogus"], ["profile", "lenet5", "--input-size", "3x32x32"], ["nosuch"]])
def test_usage_mistakes_print_usage_not_a_traceback(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and (
        "No such option" in result.stderr or "No such command" in result.stderr
    )
