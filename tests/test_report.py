"""The HTML report: self-contained, built from run directories alone, rendered by a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError
from cnnlab.report import write_report
from tests.conftest import chromium, run_cli


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from cnnlab.export import export_run
    from cnnlab.train import train_model

    root = tmp_path_factory.mktemp("runs")
    runs = []
    for model, epochs in (("lenet5", 3), ("cifar_resnet20", 1)):
        out = root / model
        train_model(data="builtin:digits", model=model, epochs=epochs, out=out, progress=False)
        runs.append(out)
    export_run(runs[0], "onnx", data="builtin:digits")
    return runs


def test_report_of_one_run_is_self_contained(two_runs: list[Path]) -> None:
    path = write_report([two_runs[0]])
    assert path == two_runs[0] / "report.html"
    html = path.read_text()
    assert not re.search(r"""(src|href)=["']https?://""", html)  # nothing fetched from the network
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html)
    assert "learning curves" in images and "confusion matrix" in images
    assert "Export parity" in html and "onnxruntime" in html and "passed" in html
    assert "Per class (test)" in html and html.count("<tr>") > 10


def test_report_compares_runs(two_runs: list[Path], tmp_path: Path) -> None:
    path = write_report(two_runs, out=tmp_path / "compare.html", title="digits: lenet5 vs resnet20")
    html = path.read_text()
    assert "digits: lenet5 vs resnet20" in html and "lenet5" in html and "cifar_resnet20" in html
    overview = html[html.index('id="overview"') : html.index("</table>")]
    assert overview.count("<tr>") == 3  # header + one row per run
    assert "not exported" in overview  # the resnet run has no artifact, and says so


def test_bad_inputs_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_report([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no run.json"):
        write_report([tmp_path / "empty"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        write_report([tmp_path / "broken"])
    result = run_cli("report", str(tmp_path / "empty"))
    assert result.returncode == 2 and "no run.json" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (make test installs it)")
def test_report_renders_in_headless_chromium(two_runs: list[Path], artifacts: Path, tmp_path: Path) -> None:
    result = run_cli("report", *map(str, two_runs), "--out", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    screenshot = artifacts / "report.png"
    screenshot.unlink(missing_ok=True)
    url = (tmp_path / "report.html").as_uri()
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "CONSOLE" not in dom.stderr or "Uncaught" not in dom.stderr  # no script errors in the page
    rendered = re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom.stdout)
    assert len(rendered) >= 3  # learning curves + a confusion matrix per run, all in the rendered page
    shot = chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", url, profile=tmp_path / "profile")
    assert shot.returncode == 0 and screenshot.stat().st_size > 50_000, shot.stderr[-2000:]
