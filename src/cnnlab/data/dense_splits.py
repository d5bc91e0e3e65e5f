"""Splits for datasets whose items hold several classes each (boxes in an image, classes in a mask).

The policy is ``stratify.split_positions``'s: the source's own splits are kept; val and test that it
lacks are carved from train, seeded. Carving stratifies by the rarest class each item contains
(items without any form a group of their own; groups too small to be cut in the asked proportions
are pooled), so a rare class reaches val and test whenever it has enough items.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnnlab.data.stratify import SPLITS, SplitOptions, split_positions
from cnnlab.errors import DataError

ALL = "all"  # records a source read without a split of their own


def gather(splits: Mapping[str, Sequence[Any]]) -> tuple[list[Any], list[str | None]]:
    """The records of every split in one list (train, val, test, then those without a split), and the
    split each declared (None: not declared)."""
    records: list[Any] = []
    declared: list[str | None] = []
    for split in (*SPLITS, ALL):
        found = splits.get(split, [])
        records.extend(found)
        declared.extend([None if split == ALL else split] * len(found))
    return records, declared


def carve(
    records: Sequence[Any],
    declared: list[str | None],
    source_splits: Mapping[str, Sequence[Any]],
    options: SplitOptions,
    *,
    unit: str,
    refuse: str,
) -> tuple[dict[str, list[int]], str]:
    """Positions of each split and the policy in words.

    Args:
        records: every item; each has ``labels``, the classes it contains.
        declared: per record, the split the source put it in (None where it named none).
        source_splits: the source's splits, to tell which it declared.
        options: seed and fractions for the splits that are carved.
        unit: what an item is called in the policy ("images", "items").
        refuse: the start of the message for a declared train split left empty (name, format, skips).
    """
    declared_splits = [s for s in SPLITS if s in source_splits] or None
    if declared_splits is not None and "train" not in declared:
        raise DataError(
            f"{refuse}, the train split has 0 usable {unit} (splits found: {', '.join(declared_splits)}); "
            "training needs at least one"
        )
    strata = _pooled(rarest_class(records), options)
    positions, policy = split_positions(strata, declared, declared_splits, options)
    if "stratified" in policy:
        policy += f"; {unit} stratified by the rarest class they contain"
    return positions, policy


def _pooled(strata: np.ndarray, options: SplitOptions) -> np.ndarray:
    """Strata too small to be cut in the asked proportions, pooled into one group.

    Why: ``stratified_split`` gives a stratum smaller than the number of splits to train first, so
    a dataset of many rare classes would otherwise end up with (almost) no val and test items.
    """
    shares = (1 - options.val_fraction - options.test_fraction, options.val_fraction, options.test_fraction)
    smallest = math.ceil(1 / min(s for s in shares if s > 0) - 1e-9)  # e.g. 10 for a 10% split
    values, counts = np.unique(strata, return_counts=True)
    pooled = strata.copy()
    pooled[np.isin(strata, values[counts < smallest])] = -2
    return pooled


def rarest_class(records: Sequence[Any]) -> np.ndarray:
    """Per item, the class it contains that is rarest overall, counted over every item's ``labels``
    (boxes per class for detection, items holding the class for masks); -1 for an item with none."""
    totals = Counter(int(label) for r in records for label in r.labels)
    strata = np.full(len(records), -1, dtype=np.int64)
    for i, record in enumerate(records):
        if len(record.labels):
            strata[i] = min({int(c) for c in record.labels}, key=lambda c: (totals[c], c))
    return strata
