"""Classification task: loss variants, metrics against scikit-learn and hand computation, mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, top_k_accuracy_score

from cnnlab.errors import ConfigError
from cnnlab.tasks import build_task
from cnnlab.tasks.classify import MixBatch


def _random_batch(n: int = 200, k: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g) + 2.0 * F.one_hot(labels, k) * (torch.rand(n, 1, generator=g) > 0.3)
    return logits, labels


def test_metrics_match_scikit_learn() -> None:
    logits, labels = _random_batch()
    task = build_task("classify", num_classes=6)
    metrics = task.new_metrics()
    for chunk in range(0, 200, 64):  # accumulation over batches must equal the whole
        metrics.update(logits[chunk : chunk + 64], labels[chunk : chunk + 64])
    result = metrics.compute()
    predicted = logits.argmax(1).numpy()
    assert result["top1"] == pytest.approx((predicted == labels.numpy()).mean())
    assert result["top5"] == pytest.approx(top_k_accuracy_score(labels.numpy(), logits.numpy(), k=5))
    assert result["confusion_matrix"] == confusion_matrix(labels.numpy(), predicted, labels=range(6)).tolist()
    p, r, f, s = precision_recall_fscore_support(labels.numpy(), predicted, labels=range(6), zero_division=0)
    for i in range(6):
        row = result["per_class"][str(i)]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    assert result["macro_f1"] == pytest.approx(f.mean())
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)


def test_expected_calibration_error_by_hand() -> None:
    # Two confident right answers (p=0.95) and two confident wrong ones (p=0.95): bin [0.93, 1) has
    # confidence 0.95 and accuracy 0.5, so ECE = 0.45.
    p = 0.95
    logit = np.log(p / (1 - p))
    logits = torch.tensor([[logit, 0.0], [logit, 0.0], [logit, 0.0], [logit, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    metrics = build_task("classify", num_classes=2).new_metrics()
    metrics.update(logits, labels)
    assert metrics.compute()["ece"] == pytest.approx(0.45, abs=1e-6)


def test_loss_options() -> None:
    logits, labels = _random_batch()
    plain = build_task("classify", num_classes=6).loss(logits, labels)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    smooth = build_task("classify", num_classes=6, label_smoothing=0.1).loss(logits, labels)
    assert smooth.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item())
    soft = F.one_hot(labels, 6).float()
    assert build_task("classify", num_classes=6).loss(logits, soft).item() == pytest.approx(plain.item(), rel=1e-5)
    weights = [1.0, 2.0, 1.0, 1.0, 1.0, 3.0]
    weighted = build_task("classify", num_classes=6, class_weights=weights).loss(logits, labels)
    assert weighted.item() == pytest.approx(F.cross_entropy(logits, labels, weight=torch.tensor(weights)).item())


def test_bad_task_options() -> None:
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_task("classify", num_classes=1)
    with pytest.raises(ConfigError, match="label_smoothing"):
        build_task("classify", num_classes=3, label_smoothing=1.5)
    with pytest.raises(ConfigError, match="not available yet"):
        build_task("embed", num_classes=3)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_task("segment", num_classes=1)
    with pytest.raises(ConfigError, match="at least 1 class"):
        build_task("detect", num_classes=0)


def test_mixup_and_cutmix_make_valid_soft_targets() -> None:
    images = torch.randn(16, 3, 8, 8)
    labels = torch.arange(16) % 4
    for mix in (MixBatch(4, 0.4, 0.0), MixBatch(4, 0.0, 1.0)):
        a = mix(images, labels, torch.Generator().manual_seed(1))
        b = mix(images, labels, torch.Generator().manual_seed(1))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # seeded: reproducible
        assert a[1].shape == (16, 4) and torch.allclose(a[1].sum(1), torch.ones(16))


def test_predict_top_k() -> None:
    task = build_task("classify", num_classes=3, class_names=["cat", "dog", "fox"])
    out = task.predict(torch.tensor([[0.0, 3.0, 1.0]]), top_k=2)[0]
    assert out["label"] == "dog" and [t["label"] for t in out["top_k"]] == ["dog", "fox"]
    assert out["probability"] == pytest.approx(torch.tensor([0.0, 3.0, 1.0]).softmax(0)[1].item())
