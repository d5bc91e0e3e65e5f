"""How long `cnnlab --help` and `import cnnlab` take, against `import torch` (each in a fresh process).

    .venv/bin/python benchmarks/startup.py [--runs 15]

Runs the contenders alternately so a noisy machine affects them alike; prints median and spread.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import save, spread

BIN = Path(sys.executable).parent

CONTENDERS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import torch": [sys.executable, "-c", "import torch"],
    "import cnnlab": [sys.executable, "-c", "import cnnlab"],
    "import cnnlab + create_model('lenet5')": [sys.executable, "-c", "import cnnlab; cnnlab.create_model('lenet5')"],
    "cnnlab --help": [str(BIN / "cnnlab"), "--help"],
    "import timm": [sys.executable, "-c", "import timm"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for cmd in CONTENDERS.values():  # warm the page cache
        subprocess.run(cmd, capture_output=True, check=True)
    for _ in range(args.runs):
        for name, cmd in CONTENDERS.items():
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    torch_median = statistics.median(times["import torch"])
    print(f"{'command':42s} {'median s':>9s} {'min':>7s} {'max':>7s} {'vs import torch':>16s}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:42s} {med:9.3f} {min(values):7.3f} {max(values):7.3f} {med - torch_median:+15.3f}s")
    save("startup", {"runs": args.runs, "seconds": {name: spread(values) for name, values in times.items()}})


if __name__ == "__main__":
    main()
