from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The suite loads torch, ONNX Runtime, OpenVINO and LiteRT into one long-lived process and then
# spawns the CLI. Spawned with vfork (CPython's default), the parent died with SIGSEGV (SI_KERNEL)
# right after a spawn, twice in the interpreter loop and once in time.sleep, never when the test
# files ran apart; with fork+exec it does not. CPython keeps this switch for exactly such cases.
subprocess._USE_VFORK = False  # type: ignore[attr-defined]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own directory, so default run paths (runs/...) never collide."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real `cnnlab` entry point in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def chromium(*args: str, profile: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Debian's headless Chromium, as the report tests drive it (console messages on stderr)."""
    browser = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([*browser, *args], capture_output=True, text=True, timeout=timeout)
