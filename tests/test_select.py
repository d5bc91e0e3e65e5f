"""Selection under a budget and `cnnlab fit`: the schedule, the budget, the choice and its reasons,
and the main job end to end on digits."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError
from cnnlab.select import Candidate, InfeasibleBudget, parse_bytes, parse_candidate, parse_latency_ms
from cnnlab.select.budget import Budget
from cnnlab.select.explain import Point, mark_pareto, rationale, recommend
from cnnlab.select.halving import Trial, planned_cost, round_sizes, successive_halving
from cnnlab.select.measure import Cost
from tests.conftest import chromium, run_cli

DIGITS_POOL = "lenet5@32,cifar_resnet20@32,mobilenetv2_050@32"


# --- the schedule -------------------------------------------------------------------------------


def test_rounds_shrink_by_eta_down_to_a_final_few() -> None:
    assert round_sizes(1) == [1]
    assert round_sizes(3) == [3]
    assert round_sizes(4) == [4, 2]
    assert round_sizes(14) == [14, 5, 2]
    assert round_sizes(27) == [27, 9, 3]


def test_cost_grows_with_the_log_of_the_pool_not_its_size() -> None:
    r = 60.0
    # training 27 candidates as long as a finalist would cost 27 R; halving: 3 rounds of 3 R each
    assert planned_cost(27, r) == pytest.approx(9 * r)
    assert planned_cost(27, r) / planned_cost(3, r) == pytest.approx(3.0)  # 9x the pool, 3x the time
    assert planned_cost(81, r) / planned_cost(9, r) < 9 / 3


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _scripted(scores: dict[str, float], seconds_per_epoch: dict[str, float], clock: _Clock, calls: list):
    """A training whose accuracy is known in advance and whose time is the epochs it was given."""

    def train(label: str, round_index: int, limit_s: float, epochs: int) -> Trial:
        calls.append((label, round_index, limit_s, epochs))
        if label == "broken":
            return Trial(label, round_index, limit_s, epochs, error="RuntimeError: shapes do not match")
        done = min(epochs, max(1, int(limit_s // seconds_per_epoch[label])))
        clock.now += done * seconds_per_epoch[label]
        return Trial(
            label,
            round_index,
            limit_s,
            epochs,
            val_top1=scores[label] + 0.001 * round_index,
            epochs=done,
            train_s=done * seconds_per_epoch[label],
        )

    return train


def test_halving_keeps_the_best_third_and_turns_time_into_epochs() -> None:
    names = [f"m{i}" for i in range(9)] + ["broken"]
    scores = {f"m{i}": 0.5 + 0.04 * i for i in range(9)}
    speed = {f"m{i}": 1.0 + i for i in range(9)}
    clock, calls = _Clock(), []
    rounds = successive_halving(names, _scripted(scores, speed, clock, calls), 600, max_epochs=30, clock=clock)
    assert [len(r) for r in rounds] == [10, 4, 2]
    assert rounds[0][-1].candidate == "broken" and rounds[0][-1].error  # a failure ranks last, is not promoted
    assert [t.candidate for t in rounds[1]] == ["m8", "m7", "m6", "m5"]
    assert [t.candidate for t in rounds[2]] == ["m8", "m7"]
    # later rounds get eta times the epochs cap, converted from each candidate's measured speed
    first = {label: epochs for label, r, _, epochs in calls if r == 0}
    last = {label: (limit, epochs) for label, r, limit, epochs in calls if r == 2}
    assert set(first.values()) == {4}  # ceil(30 / 9)
    assert last["m8"][1] <= 30 and last["m7"][1] >= last["m8"][1]  # the slower m8 gets fewer epochs
    assert clock.now <= 600 * 1.5  # the safety limit is the most a schedule can overrun


def test_a_later_round_never_trains_less_and_a_spent_budget_stops_the_schedule() -> None:
    names = [f"m{i}" for i in range(9)]
    scores = {n: 0.5 + 0.01 * i for i, n in enumerate(names)}
    speed = dict.fromkeys(names, 1.0)
    clock, calls = _Clock(), []
    rounds = successive_halving(names, _scripted(scores, speed, clock, calls), 200, max_epochs=30, clock=clock)
    epochs = {}
    for trials in rounds:
        for t in trials:
            assert t.epochs >= epochs.get(t.candidate, 0)
            epochs[t.candidate] = t.epochs
    clock, calls = _Clock(), []
    rounds = successive_halving(names, _scripted(scores, speed, clock, calls), 15, max_epochs=30, clock=clock)
    assert len(rounds) == 1 and len(calls) == 9  # 9 trials of 3 epochs spent the 15 s: round 1 decides


def test_accuracy_ties_go_to_the_faster_candidate() -> None:
    clock, calls = _Clock(), []
    train = _scripted({"slow": 0.9, "fast": 0.9}, {"slow": 1.0, "fast": 1.0}, clock, calls)
    rounds = successive_halving(["slow", "fast"], train, 60, latency={"slow": 5.0, "fast": 1.0}, clock=clock)
    assert rounds[-1][0].candidate == "fast"


# --- budget, candidates, choice -------------------------------------------------------------------


def test_budget_strings_parse_and_bad_ones_name_the_flag() -> None:
    assert parse_latency_ms("5ms") == 5 and parse_latency_ms("0.2s") == 200 and parse_latency_ms("800us") == 0.8
    assert parse_latency_ms(3) == 3 and parse_latency_ms(None) is None
    assert parse_bytes("20MB") == 20_000_000 and parse_bytes("512KiB") == 512 * 1024 and parse_bytes(4) == 4_000_000
    with pytest.raises(ConfigError, match="--max-latency '5 parsecs'"):
        parse_latency_ms("5 parsecs")
    with pytest.raises(ConfigError, match="--max-memory must be positive"):
        parse_bytes("0MB", "--max-memory")


def test_budget_violations_say_which_ceiling_and_by_how_much() -> None:
    cost = Cost(
        "a",
        "a",
        [1, 32, 32],
        size_bytes=30_000_000,
        memory_bytes=1_000_000,
        latency_ms={"onnxruntime": 7.5},
        runtime="onnxruntime",
    )
    budget = Budget(max_latency_ms=5, max_size_bytes=20_000_000)
    assert budget.violations(cost) == ["latency 7.50 ms > 5 ms", "size 30.0 MB > 20 MB"]
    assert budget.overshoot(cost) == pytest.approx(1.5)
    assert Budget().violations(cost) == []


def test_candidates_parse_with_resolution() -> None:
    assert parse_candidate("mobilenetv2_100@64") == Candidate("mobilenetv2_100", 64)
    assert parse_candidate("lenet5").side is None
    assert parse_candidate("specs/my_net.yaml@96").slug == "my_net-96"
    for bad in ("resnet18@", "resnet18@big", "@64", "resnet18@4"):
        with pytest.raises(ConfigError, match="candidate"):
            parse_candidate(bad)


def test_pareto_frontier_and_the_tolerance_rule() -> None:
    found = [
        Point("a", 0.90, 1, 1.0, "ort", 1, 1),
        Point("b", 0.95, 1, 2.0, "ort", 1, 1),
        Point("c", 0.93, 1, 3.0, "ort", 1, 1),
        Point("d", 0.95, 1, 2.5, "ort", 1, 1),
    ]
    mark_pareto(found)
    assert [p.candidate for p in found if p.pareto] == ["a", "b"]  # c and d are beaten by b
    costs = {n: Cost(n, n, [], latency_ms={"ort": ms}, runtime="ort") for n, ms in (("x", 4.0), ("y", 1.0))}
    close = [Trial("x", 1, 10, 10, val_top1=0.952), Trial("y", 1, 10, 10, val_top1=0.950)]
    pick, note = recommend(close, costs, tolerance=0.3)
    assert pick.candidate == "y" and "within the 0.3-point tolerance" in note and "4.0x" in note
    pick, note = recommend(close, costs, tolerance=0.1)
    assert pick.candidate == "x" and note is None


def test_rationale_names_the_eliminated_and_each_round_s_largest_epoch_cap() -> None:
    costs = {
        n: Cost(n, n, [], latency_ms={"ort": ms}, runtime="ort", size_bytes=10**6, params=1000)
        for n, ms in (("a", 1.0), ("b", 2.0), ("c", 0.5), ("d", 3.0))
    }
    first = [
        Trial("a", 0, 5, 1, val_top1=0.8, epochs=1),
        Trial("b", 0, 5, 3, val_top1=0.7, epochs=3),
        Trial("c", 0, 5, 1, val_top1=0.6, epochs=1),
        Trial("d", 0, 5, 1, error="ValueError: bad"),
    ]
    second = [Trial("a", 1, 9, 4, val_top1=0.9, epochs=4, train_s=8), Trial("b", 1, 9, 4, val_top1=0.85, epochs=4)]
    lines = rationale(second[0], [first, second], costs, {"e": ["latency 9.00 ms > 5 ms"]}, "budget 5 ms", None)
    text = " ".join(lines)
    assert lines[0].startswith("a: 90.00% validation top-1 after 4 epochs")
    assert "It beats b by 5.00 points in the same final round; b runs at 2.00x its latency." in text
    assert "Round 1 (at most 3 epochs each) eliminated 2; the best of them, c, reached 60.00%" in text
    assert "Could not train: d (ValueError: bad)" in text and "Outside the budget, not trained (1): e (latency" in text


# --- on real data ---------------------------------------------------------------------------------


def test_infeasible_budget_names_the_closest_candidates(tmp_path: Path) -> None:
    from cnnlab.select import select_architecture

    with pytest.raises(InfeasibleBudget, match=r"no candidate fits latency <= 0.001 ms.*closest: lenet5@32"):
        select_architecture(
            "builtin:digits",
            max_latency="1us",
            candidates=["lenet5@32", "cifar_resnet20@32"],
            out=tmp_path / "sel",
            budget_s=30,
        )
    record = json.loads((tmp_path / "sel" / "select.json").read_text())
    assert record["error"] and set(record["excluded"]) == {"lenet5@32", "cifar_resnet20@32"}
    result = run_cli("select", "--data", "builtin:digits", "--max-latency", "1us", "--candidates", "lenet5@32")
    assert result.returncode == 2 and "closest: lenet5@32" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("select", "--data", "builtin:digits", "--max-latency", "fast")
    assert result.returncode == 2 and "--max-latency 'fast'" in result.stderr


def test_a_candidate_that_cannot_be_built_is_excluded_with_its_reason(tmp_path: Path) -> None:
    from cnnlab.select import select_architecture

    report = select_architecture(
        "builtin:digits", candidates=["lenet5@32", "no_such_net"], out=tmp_path / "sel", budget_s=20, max_epochs=3
    )
    assert report.recommended == "lenet5@32"
    assert "no_such_net" in report.excluded and "could not be measured" in report.excluded["no_such_net"][0]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fit") / "digits"
    result = run_cli(
        "fit",
        "--data",
        "builtin:digits",
        "--max-latency",
        "2ms",
        "--budget",
        "75s",
        "--candidates",
        DIGITS_POOL,
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads(result.stdout)


def test_fit_selects_within_the_budget_and_records_the_pareto_set(fitted: tuple[Path, dict]) -> None:
    out, _ = fitted
    selection = json.loads((out / "select" / "select.json").read_text())
    chosen = selection["recommended"]
    assert chosen["candidate"] in DIGITS_POOL.split(",")
    assert chosen["promised_ms"] <= 2.0
    assert {c["candidate"] for c in selection["candidates"]} == set(DIGITS_POOL.split(","))
    assert any(p["pareto"] for p in selection["pareto"]) and chosen["candidate"] in {
        p["candidate"] for p in selection["pareto"]
    }
    assert selection["rationale"][0].startswith(chosen["candidate"])
    assert len(selection["rounds"]) == 1 and len(selection["rounds"][0]) == 3  # three candidates: one round
    assert (out / "select" / "pareto.png").stat().st_size > 10_000


def test_fit_produces_a_verified_deployable_model_and_a_report(fitted: tuple[Path, dict]) -> None:
    out, summary = fitted
    assert summary["test_top1"] > 0.8  # digits, on a short budget, on a busy machine
    deployed = Path(summary["deployed"]["file"])
    assert deployed.is_file() and deployed.parent == out / "deploy" and (out / "deploy" / "card.json").is_file()
    parity = json.loads((out / "train" / "export" / "parity.json").read_text())
    assert parity["passed"]
    promise = summary["promise"]
    assert promise["measured_ms"] > 0 and promise["within_budget"]
    assert promise["ratio"] == pytest.approx(promise["measured_ms"] / promise["promised_ms"], rel=0.01)
    html = (out / "report.html").read_text()
    assert "Selection" in html and "selection Pareto frontier" in html and "Recommended:" in html
    assert (out / "compress" / "compression.json").is_file()  # int8 was tried and judged
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and set(record["stages_s"]) >= {"select", "train", "total"}


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (make test installs it)")
def test_fit_report_renders_in_headless_chromium(fitted: tuple[Path, dict], artifacts: Path, tmp_path: Path) -> None:
    out, _ = fitted
    dom = chromium("--dump-dom", (out / "report.html").as_uri(), profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr
    assert re.search(r'<img alt="selection Pareto frontier" src="data:image/png;base64,', dom.stdout)
    screenshot = artifacts / "fit-report.png"
    shot = chromium(
        f"--screenshot={screenshot}",
        "--window-size=1280,2400",
        (out / "report.html").as_uri(),
        profile=tmp_path / "profile",
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 50_000
