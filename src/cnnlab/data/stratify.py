"""Seeded stratified splitting: every class is divided in the same proportions.

``split_positions`` is the policy every reader shares: splits the source defines are kept, val and
test that it lacks are carved from train, and a source without splits is cut 70/10/20 (by the
fractions given). ``stratified_split`` does the cutting.

Per class, indices are shuffled with a ``numpy.random.Generator`` seeded once for the whole call
(classes taken in label order, so the result depends only on the labels, the fractions and the seed)
and cut by largest remainders, so the split sizes of a class sum exactly to its count.

Small classes: a class with at least as many images as there are splits with a positive fraction
gets at least one image in each of them (taken from the largest part). A smaller class fills splits
one image each, train first, then the others in order of decreasing fraction: with 70/10/20, a class
of 1 image goes to train, a class of 2 to train and test. Train therefore never lacks a class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "val", "test")
# Names a source may use for a split (folder names, CSV values), matched case-insensitively.
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class SplitOptions:
    """How to carve splits a source does not define."""

    seed: int = 0
    val_fraction: float = 0.1  # of everything, or of train when the source has a train split
    test_fraction: float = 0.2


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Positions into ``labels`` for each part, sorted, disjoint and covering every position.

    Args:
        labels: integer class of each item.
        fractions: share of each part (train first by convention); they must sum to 1.
        seed: the same seed and labels give the same parts.
    """
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.ndim != 1 or len(shares) == 0 or (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in shares]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        counts = _allocate(len(members), shares)
        for part, chunk in zip(parts, np.split(members, np.cumsum(counts)[:-1]), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=np.int64) for p in parts]


def _allocate(n: int, shares: np.ndarray) -> np.ndarray:
    """How many of ``n`` items each part gets (sums to ``n``)."""
    wanted = np.flatnonzero(shares > 0)
    counts = np.zeros(len(shares), dtype=np.int64)
    if n < len(wanted):
        others = wanted[wanted != 0]
        order = [0, *others[np.argsort(-shares[others], kind="stable")]] if shares[0] > 0 else others
        counts[np.asarray(order[:n], dtype=np.int64)] = 1
        return counts
    exact = n * shares
    counts = np.floor(exact).astype(np.int64)
    leftover = n - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    for part in wanted:
        if counts[part] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[part] = 1
    return counts


def split_positions(
    labels: np.ndarray,
    declared: Sequence[str | None],
    declared_splits: Sequence[str] | None,
    options: SplitOptions,
) -> tuple[dict[str, np.ndarray], str]:
    """Positions of each split, and the policy in words.

    Args:
        labels: label of each item.
        declared: the split each item belongs to, per the source (ignored when ``declared_splits`` is None).
        declared_splits: which splits the source defines; those it lacks are carved from train.
        options: seed and fractions.
    """
    seed, val, test = options.seed, options.val_fraction, options.test_fraction
    if declared_splits is None:
        parts = stratified_split(labels, [1 - val - test, val, test], seed)
        policy = f"stratified {_pct(1 - val - test)}/{_pct(val)}/{_pct(test)} (seed {seed})"
        return dict(zip(SPLITS, parts, strict=True)), policy

    declared_array = np.asarray([d or "" for d in declared], dtype=str)
    positions = {s: np.flatnonzero(declared_array == s) for s in SPLITS}
    missing = [s for s in ("val", "test") if s not in declared_splits]
    given = "/".join(s for s in SPLITS if s in declared_splits)
    if not missing:
        return positions, f"dataset ({given})"
    shares = {"val": val, "test": test}
    train = positions["train"]
    parts = stratified_split(labels[train], [1 - sum(shares[s] for s in missing), *(shares[s] for s in missing)], seed)
    positions["train"] = train[parts[0]]
    for split, part in zip(missing, parts[1:], strict=True):
        positions[split] = train[part]
    carved = " / ".join(f"{split} {_pct(shares[split])}%" for split in missing)
    return positions, f"dataset ({given}) + stratified {carved} of train (seed {seed})"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4g}".rstrip(".")
