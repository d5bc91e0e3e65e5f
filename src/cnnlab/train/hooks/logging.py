"""metrics.csv after every epoch (always), TensorBoard scalars when tensorboard is installed, and
progress for people: a live bar on a terminal, one line per epoch in logs."""

from __future__ import annotations

import sys
import time
from typing import Any

from cnnlab.runs import RunDir
from cnnlab.train.hooks.base import Hook


class CSVLoggerHook(Hook):
    priority = 50

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def after_epoch(self) -> None:
        self.run.write_metrics_csv(self.trainer.state.history)


class TensorBoardHook(Hook):
    priority = 51

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.writer: Any = None

    @staticmethod
    def available() -> bool:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return False
        return True

    def before_train(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run.file("tensorboard")))

    def after_epoch(self) -> None:
        row = self.trainer.state.history[-1]
        for key, value in row.items():
            if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressHook(Hook):
    """A rich progress bar with ETA on a terminal; plain lines otherwise (both on stderr)."""

    priority = 60

    def __init__(self, total_epochs: int | None, budget_s: float | None, live: bool | None = None) -> None:
        self.total_epochs = total_epochs
        self.budget_s = budget_s
        self.live = sys.stderr.isatty() if live is None else live
        self.progress: Any = None
        self.task_id: Any = None
        self._epoch_start = time.perf_counter()

    def _describe(self) -> str:
        t = self.trainer
        loss = f"{float(t.last_loss):.4f}" if t.last_loss is not None else "-"
        return f"epoch {t.state.epoch + 1}{'/' + str(self.total_epochs) if self.total_epochs else ''} loss {loss}"

    def before_train(self) -> None:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task_id = self.progress.add_task(self._describe(), total=1000)

    def before_epoch(self) -> None:
        self._epoch_start = time.perf_counter()

    def after_step(self) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task_id, completed=int(1000 * self.trainer.progress), description=self._describe()
            )

    def after_epoch(self) -> None:
        t = self.trainer
        row = t.state.history[-1] if t.state.history else {}
        shown = ("top1", "loss", "map", "map50")
        val = " ".join(f"{k[4:]} {v:.4f}" for k, v in row.items() if k.startswith("val_") and k[4:] in shown)
        seconds = time.perf_counter() - self._epoch_start
        line = (
            f"epoch {t.state.epoch}{'/' + str(self.total_epochs) if self.total_epochs else ''}  "
            f"train loss {row.get('train_loss', float('nan')):.4f}  {val}  lr {t.state.lr:.3g}  {seconds:.1f}s"
        )
        if self.progress is not None:
            self.progress.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def after_train(self) -> None:
        if self.progress is not None:
            self.progress.stop()
