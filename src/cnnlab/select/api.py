"""`cnnlab select`: which architecture, for this data, on this machine, within this budget, and why."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.env import hardware, versions
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.runs import RunDir
from cnnlab.select.budget import Budget
from cnnlab.select.explain import Point, points, rationale, recommend
from cnnlab.select.halving import Trial, planned_cost, round_sizes, successive_halving
from cnnlab.select.measure import Cost, measure_cost, runtimes_for
from cnnlab.select.pool import Candidate, resolve_pool

SELECT_FILE = "select.json"


class InfeasibleBudget(ConfigError):
    """No candidate fits the deployment budget."""


@dataclass
class SelectionReport:
    path: Path
    recommended: str  # candidate label, e.g. mobilenetv2_100@64
    model: str
    input_size: list[int]
    runtime: str
    promised_ms: float
    val_top1: float
    seconds_per_epoch: float | None  # of the recommended candidate's last proxy training
    run: str  # the recommended candidate's last proxy-training run
    rationale: list[str]
    budget: Budget
    costs: list[Cost]
    rounds: list[list[Trial]]
    points: list[Point]
    excluded: dict[str, list[str]]
    timing: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.path),
            "recommended": {
                "candidate": self.recommended,
                "model": self.model,
                "input_size": self.input_size,
                "runtime": self.runtime,
                "promised_ms": self.promised_ms,
                "val_top1": self.val_top1,
                "seconds_per_epoch": self.seconds_per_epoch,
                "run": self.run,
            },
            "rationale": self.rationale,
            "budget": self.budget.to_dict(),
            "candidates": [c.to_dict() for c in self.costs],
            "excluded": self.excluded,
            "rounds": [[t.to_dict() for t in trials] for trials in self.rounds],
            "pareto": [p.to_dict() for p in self.points],
            "timing": self.timing,
        }


def _trainer(
    data: str, by_label: dict[str, Candidate], folder: Path, seed: int, batch_size: int
) -> Callable[[str, int, float, int], Trial]:
    """A proxy training of one candidate: the auto recipe, time-boxed, ranked on the validation split."""
    from cnnlab.train import TrainConfig, train_model

    def train(label: str, round_index: int, budget_s: float, max_epochs: int) -> Trial:
        candidate = by_label[label]
        out = folder / f"{candidate.slug}-r{round_index + 1}"
        trial = Trial(label, round_index, round(budget_s, 2), max_epochs, run=str(out))
        try:
            config = TrainConfig(
                data=data,
                model=candidate.model,
                epochs=max_epochs,
                budget_s=budget_s,
                seed=seed,
                batch_size=batch_size,
                input_size=[candidate.side, candidate.side] if candidate.side else None,
                checkpoint_every_s=1e9,
            )
            result = train_model(config, out=out, overwrite=True, progress="quiet", evaluate_test=False)
        except CnnlabError as exc:
            trial.error = str(exc).splitlines()[0][:240]
            return trial
        except Exception as exc:
            trial.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return trial
        trial.epochs = result.state.epoch
        trial.train_s = round(result.state.elapsed_s, 2)
        trial.val_top1 = result.state.best_metric
        if trial.val_top1 is None:
            trial.error = "stopped before its first validation (budget too short for one epoch)"
        return trial

    return train


def _infeasible(costs: list[Cost], budget: Budget) -> InfeasibleBudget:
    measured = sorted((c for c in costs if c.error is None), key=budget.overshoot)
    if not measured:
        reasons = "; ".join(f"{c.candidate}: {c.error}" for c in costs[:5])
        return InfeasibleBudget(f"no candidate could be measured ({reasons}); check --candidates and --runtime")
    closest = "; ".join(
        f"{c.candidate} ({c.promised_ms:.2f} ms on {c.runtime}, {c.size_bytes / 1e6:.1f} MB, "
        f"{c.memory_bytes / 1e6:.1f} MB activations)"
        for c in measured[:3]
    )
    return InfeasibleBudget(
        f"no candidate fits {budget.describe()} on this machine; closest: {closest}. Relax the budget "
        f"(e.g. --max-latency {measured[0].promised_ms * 1.1:.2f}ms) or add smaller candidates with --candidates"
    )


def select_architecture(
    data: str,
    *,
    max_latency: str | float | None = None,
    max_size: str | float | None = None,
    max_memory: str | float | None = None,
    runtime: str = "auto",
    budget_s: float = 1800.0,
    candidates: list[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    max_epochs: int = 30,
    tolerance: float = 0.3,
    seed: int = 0,
    batch_size: int = 64,
    log: Callable[[str], None] | None = None,
) -> SelectionReport:
    """Pick an architecture for ``data`` that fits the deployment budget, on this machine.

    Stage 1 exports every candidate to ONNX and times it on the deployment runtime(s), with memory and
    size, and drops those outside the budget. Stage 2 ranks the survivors by short proxy trainings
    on the data (successive halving within ``budget_s``, minus what stage 1 took), on the validation
    split. The most accurate finalist is recommended, unless a faster one is within ``tolerance``
    points. Writes select.json, pareto.png and one run directory per proxy training under ``out``.

    Raises InfeasibleBudget (after writing select.json) when nothing fits, naming the closest.
    """
    from cnnlab.data import open_dataset
    from cnnlab.select.budget import parse_bytes, parse_latency_ms
    from cnnlab.select.figure import pareto_png

    say = log or (lambda _: None)
    budget = Budget(parse_latency_ms(max_latency), parse_bytes(max_size), parse_bytes(max_memory, "--max-memory"))
    runtimes_for(runtime)
    if budget_s <= 0:
        raise ConfigError(f"--budget must be positive, got {budget_s}s")
    if max_epochs < 1:
        raise ConfigError(f"--max-epochs must be at least 1, got {max_epochs}")
    if tolerance < 0:
        raise ConfigError(f"--tolerance is in accuracy points and cannot be negative, got {tolerance}")
    started = time.monotonic()
    bundle = open_dataset(data, seed=seed)
    pool = resolve_pool(candidates, bundle.native_size)
    run = RunDir.create(out, "select", overwrite=overwrite)
    run.update_run_json(
        command="select",
        data={"source": data, "seed": seed, "classes": len(bundle.class_names), "channels": bundle.channels},
        budget=budget.to_dict(),
        options={
            "runtime": runtime,
            "budget_s": budget_s,
            "candidates": [c.label for c in pool],
            "max_epochs": max_epochs,
            "tolerance": tolerance,
            "batch_size": batch_size,
        },
        versions=versions(),
        hardware=hardware(),
        status="running",
    )

    costs: dict[str, Cost] = {}
    excluded: dict[str, list[str]] = {}
    for i, candidate in enumerate(pool, 1):
        cost = measure_cost(candidate, len(bundle.class_names), bundle.channels, runtime)
        costs[candidate.label] = cost
        if cost.error:
            excluded[candidate.label] = [f"could not be measured: {cost.error}"]
        elif budget.violations(cost):
            excluded[candidate.label] = budget.violations(cost)
        state = "out: " + ", ".join(excluded[candidate.label]) if candidate.label in excluded else "fits"
        say(
            f"[{i}/{len(pool)}] {candidate.label}: {cost.promised_ms or 0:.2f} ms on {cost.runtime or '-'}, "
            f"{cost.size_bytes / 1e6:.1f} MB — {state}"
        )
    stage1_s = time.monotonic() - started
    survivors = sorted((c for c in costs if c not in excluded), key=lambda c: costs[c].promised_ms or 0.0)
    partial = {"candidates": [c.to_dict() for c in costs.values()], "excluded": excluded, "budget": budget.to_dict()}
    if not survivors:
        error = _infeasible(list(costs.values()), budget)
        run.write_json(SELECT_FILE, {**partial, "error": str(error)})
        run.update_run_json(status="infeasible", error=str(error))
        raise error

    say(f"stage 2: successive halving of {len(survivors)} candidates within {max(0.0, budget_s - stage1_s):.0f}s")
    by_label = {c.label: c for c in pool}
    train = _trainer(data, by_label, run.path / "trials", seed, batch_size)

    def logged(label: str, round_index: int, trial_s: float, epochs: int) -> Trial:
        trial = train(label, round_index, trial_s, epochs)
        result = f"{trial.val_top1:.2%}" if trial.val_top1 is not None else f"failed: {trial.error}"
        say(f"round {round_index + 1}: {label} ({trial.epochs} epochs, {trial.train_s:.0f}s) -> {result}")
        return trial

    latency = {c: costs[c].promised_ms or 0.0 for c in survivors}
    rounds = successive_halving(
        survivors, logged, max(0.0, budget_s - stage1_s), latency=latency, max_epochs=max_epochs
    )
    finalists = [t for t in rounds[-1] if t.error is None]
    if not finalists:
        reasons = "; ".join(f"{t.candidate}: {t.error}" for t in rounds[-1])
        run.write_json(SELECT_FILE, {**partial, "rounds": [[t.to_dict() for t in r] for r in rounds], "error": reasons})
        run.update_run_json(status="failed", error=reasons)
        raise CnnlabError(f"no candidate finished a proxy training ({reasons}); see {run.path}/trials")
    planned_rounds = len(round_sizes(len(survivors)))
    pick, tie_note = recommend(finalists, costs, tolerance)
    final_s = max(t.train_s for t in finalists)
    cost = costs[pick.candidate]
    found = points(rounds, costs)
    report = SelectionReport(
        path=run.path,
        recommended=pick.candidate,
        model=by_label[pick.candidate].model,
        input_size=cost.input_size,
        runtime=cost.runtime or "",
        promised_ms=cost.promised_ms or 0.0,
        val_top1=float(pick.val_top1 or 0.0),
        seconds_per_epoch=round(pick.train_s / pick.epochs, 3) if pick.epochs else None,
        run=pick.run or "",
        rationale=rationale(pick, rounds, costs, excluded, budget.describe(), tie_note)
        + (
            [
                f"The time budget ran out after round {len(rounds)} of {planned_rounds}: its ranking decided "
                "(a longer --budget trains the finalists longer)."
            ]
            if len(rounds) < planned_rounds
            else []
        ),
        budget=budget,
        costs=list(costs.values()),
        rounds=rounds,
        points=found,
        excluded=excluded,
        timing={
            "stage1_s": round(stage1_s, 1),
            "stage2_s": round(time.monotonic() - started - stage1_s, 1),
            "total_s": round(time.monotonic() - started, 1),
            "trials": sum(len(r) for r in rounds),
            # what training every survivor as long as a finalist would have cost, against the schedule
            "train_everyone_equivalent_s": round(len(survivors) * final_s, 1),
            "planned_s": round(planned_cost(len(survivors), final_s), 1),
        },
    )
    run.write_json(SELECT_FILE, report.to_dict())
    pareto_png(found, pick.candidate, budget.max_latency_ms, run.file("pareto.png"))
    run.update_run_json(status="completed", recommended=report.to_dict()["recommended"], timing=report.timing)
    return report
