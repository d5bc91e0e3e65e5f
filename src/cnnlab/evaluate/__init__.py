"""`evaluate_run`: a run's model on a data split -> metrics.json and a confusion matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.evaluate.core import evaluate_batches

__all__ = ["evaluate_batches", "evaluate_run"]


def evaluate_run(
    run: str | Path, *, data: str | None = None, split: str = "test", batch_size: int = 256, write: bool = True
) -> dict[str, Any]:
    """Evaluate the model saved in ``run`` on ``split`` of its own data (or of ``data``).

    Writes metrics.json (all metrics, per class, confusion matrix, calibration) and
    confusion_matrix.png into the run directory when ``write``.
    """
    from cnnlab.data import open_dataset
    from cnnlab.evaluate.plots import confusion_matrix_png
    from cnnlab.runs import RunDir, load_run
    from cnnlab.tasks import task_for_card
    from cnnlab.train.prepare import evaluation_batches

    loaded = load_run(run)
    record = RunDir(loaded.path).read_json("run.json")
    spec = record.get("data", {})
    source = data or spec.get("source")
    if not source:
        raise ConfigError(f"{loaded.path} does not record which data it was trained on; pass --data SRC")
    bundle = open_dataset(
        source,
        seed=spec.get("seed", 0),
        val_fraction=spec.get("val_fraction", 0.1),
        test_fraction=spec.get("test_fraction", 0.2),
        task=loaded.card.task,
    )
    card = loaded.card
    if card.class_names and list(bundle.class_names) != list(card.class_names):
        missing = sorted(set(card.class_names) ^ set(bundle.class_names))
        raise ConfigError(
            f"{source} has classes {bundle.class_names[:6]}… but the model was trained on {card.class_names[:6]}… "
            f"(differences: {missing[:6]}); evaluate on data with the same classes"
        )
    if split not in bundle.splits or len(bundle.splits[split]) == 0:
        raise ConfigError(
            f"{source} has no '{split}' split with images; choose one of "
            f"{', '.join(k for k, v in bundle.splits.items() if len(v))}"
        )
    task = task_for_card(card)
    memory = bundle.native_size is not None and max(bundle.native_size) <= 64
    batches = evaluation_batches(card, bundle.splits[split], batch_size=batch_size, memory=memory)
    metrics = evaluate_batches(loaded.model, batches(), task)
    metrics = {"split": split, "data": source, **metrics}
    if write:
        run_dir = RunDir(loaded.path)
        run_dir.write_json("metrics.json", metrics)
        if "confusion_matrix" in metrics:
            confusion_matrix_png(
                metrics["confusion_matrix"],
                card.class_names,
                run_dir.file("confusion_matrix.png"),
                title=f"{card.architecture} on {source} ({split}): top-1 {metrics['top1']:.2%}",
            )
    return metrics
