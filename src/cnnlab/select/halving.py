"""Stage 2 of selection: successive halving. Every survivor of stage 1 gets a short proxy training; the
best third go on with three times the budget, and so on, until the last round holds two or three.

With R the budget of a last-round trial and n candidates, every round costs about eta * R and there
are about log_eta(n) rounds, instead of the n * R of training everyone as long: selection time grows
with the logarithm of the pool, not with its size (27 candidates: 9 R instead of 27 R). Each round
retrains its candidates from scratch with the longer budget (its own complete learning-rate
schedule), so a score never depends on a warm start.

Budgets are given in time but trained in epochs: once a candidate's seconds per epoch are known (from
its first round), its share of time becomes a number of epochs, with a time limit of 1.5 times the
share as a safety net only. An epoch-driven schedule does not shrink when the machine stalls for a
few seconds, so a hiccup does not decide which architecture wins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

ETA = 3
SAFETY = 1.5  # time limit of a trial, as a multiple of its fair share


@dataclass
class Trial:
    candidate: str
    round: int
    budget_s: float
    max_epochs: int
    val_top1: float | None = None
    epochs: int = 0
    train_s: float = 0.0  # training time (the trainer's clock), without set-up and evaluation
    wall_s: float = 0.0
    run: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# (candidate label, round, training budget in seconds, epoch cap) -> the finished trial
TrainFn = Callable[[str, int, float, int], Trial]


def round_sizes(n: int, eta: int = ETA) -> list[int]:
    """How many candidates each round trains: [n, ceil(n/eta), ...] down to at most eta."""
    if n < 1:
        return []
    sizes = [n]
    while sizes[-1] > eta:
        sizes.append(math.ceil(sizes[-1] / eta))
    return sizes


def planned_cost(n: int, final_budget_s: float, eta: int = ETA) -> float:
    """Training seconds the schedule spends on n candidates when a last-round trial gets final_budget_s."""
    sizes = round_sizes(n, eta)
    last = len(sizes) - 1
    return sum(size * final_budget_s * eta ** (i - last) for i, size in enumerate(sizes))


def _rank_key(trial: Trial, latency: dict[str, float]) -> tuple[float, float]:
    accuracy = trial.val_top1 if trial.val_top1 is not None and trial.error is None else -1.0
    return (-accuracy, latency.get(trial.candidate, math.inf))


def successive_halving(
    candidates: list[str],
    train: TrainFn,
    budget_s: float,
    *,
    latency: dict[str, float] | None = None,
    max_epochs: int = 30,
    min_trial_s: float = 2.0,
    eta: int = ETA,
    clock: Callable[[], float] = time.monotonic,
) -> list[list[Trial]]:
    """Run the rounds; returns the trials of each round, best first.

    ``budget_s`` is the wall-clock time for all rounds. Before each round the remaining time is shared
    again, so set-up and evaluation overheads of earlier rounds are paid for by the later ones instead
    of overrunning. ``max_epochs`` caps a last-round trial (earlier rounds: eta times fewer per round),
    so on a tiny dataset a trial ends when its epochs are done, not when its time is up. From the
    second round on, a candidate's fair share of time is turned into epochs using its measured seconds
    per epoch, never fewer than it trained in the round before; when the remaining time cannot pay for
    that, the schedule stops and the last full round decides. Ties in accuracy go to the faster
    candidate (``latency``).
    """
    latency = latency or {}
    sizes = round_sizes(len(candidates), eta)
    last = len(sizes) - 1
    alive = list(candidates)
    start = clock()
    rounds: list[list[Trial]] = []
    per_epoch: dict[str, float] = {}
    trained: dict[str, int] = {}  # epochs each candidate had in its latest round
    for i, size in enumerate(sizes):
        alive = alive[:size]
        remaining = max(0.0, budget_s - (clock() - start))
        if i > 0 and remaining < sum(trained.get(label, 0) * per_epoch.get(label, 0.0) for label in alive):
            break  # a later round must not train less than the one before; the last full round decides
        weight = sum(s * eta ** (j - last) for j, s in enumerate(sizes) if j >= i)
        share_s = remaining / weight * eta ** (i - last)
        cap = max(1, math.ceil(max_epochs * eta ** (i - last)))
        trials = []
        for label in alive:
            epochs = cap
            if label in per_epoch:
                epochs = max(trained[label], min(cap, math.floor(share_s / per_epoch[label])))
            limit_s = max(min_trial_s, SAFETY * max(share_s, epochs * per_epoch.get(label, 0.0)))
            began = clock()
            trial = train(label, i, limit_s, epochs)
            trial.wall_s = round(clock() - began, 2)
            if trial.epochs and trial.train_s:
                per_epoch[label] = trial.train_s / trial.epochs
                trained[label] = trial.epochs
            trials.append(trial)
        trials.sort(key=lambda t: _rank_key(t, latency))
        rounds.append(trials)
        alive = [t.candidate for t in trials if t.error is None]
        if not alive:
            break
    return rounds
