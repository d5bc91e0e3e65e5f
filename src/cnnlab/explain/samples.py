"""A page of Grad-CAM evidence for a run: the first test images, where the model looked, and whether
it was right. Used by `cnnlab compare` and shown in the report."""

from __future__ import annotations

import io
from pathlib import Path

from cnnlab.errors import ConfigError
from cnnlab.runs.atomic import atomic_write_bytes

CAM_SAMPLES_FILE = "cam_samples.png"


def cam_samples_png(run: str | Path, count: int = 8, split: str = "test") -> Path:
    """Write RUN/cam_samples.png: ``count`` images of ``split`` with their Grad-CAM overlay, titled
    with the true and the predicted class (red when wrong)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnlab.data import open_dataset
    from cnnlab.explain.gradcam import _unnormalise, grad_cam, overlay
    from cnnlab.runs import RunDir, load_run
    from cnnlab.tasks import task_for_card
    from cnnlab.train import setup

    loaded = load_run(run)
    spec = RunDir(loaded.path).read_json("run.json").get("data") or {}
    if not spec.get("source"):
        raise ConfigError(f"{loaded.path} does not record its data; Grad-CAM samples need its {split} images")
    bundle = open_dataset(
        spec["source"],
        seed=spec.get("seed", 0),
        val_fraction=spec.get("val_fraction", 0.1),
        test_fraction=spec.get("test_fraction", 0.2),
    )
    card = loaded.card
    task = task_for_card(card)
    source = bundle.splits[split]
    step = max(1, len(source) // count)
    subset = source.subset(list(range(0, step * count, step))[:count])
    memory = bundle.native_size is not None and max(bundle.native_size) <= 64
    x, y = next(iter(setup.eval_batches(subset, card, memory=memory, collate=task.collate, batch_size=count)()))
    cams, predicted = grad_cam(loaded.model, x)
    names = card.class_names or [str(i) for i in range(card.num_classes)]
    columns = min(count, 8)
    rows = -(-len(x) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.9 * rows), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[: len(x)]):
        ax.imshow(overlay(_unnormalise(x[i], card), cams[i].numpy()))
        right = int(y[i]) == predicted[i]
        ax.set_title(f"{names[int(y[i])]}→{names[predicted[i]]}", fontsize=7, color="black" if right else "red")
    fig.suptitle(f"{card.architecture}: Grad-CAM on {split} images (true→predicted)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(loaded.path / CAM_SAMPLES_FILE, buffer.getvalue())
