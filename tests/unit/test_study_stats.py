"""The pass@K study's intervals, verdicts and report, on synthetic evaluations (benchmarks/study_*.py)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
_BENCH = str(Path(__file__).resolve().parents[2] / "benchmarks")
sys.path.insert(0, _BENCH)
try:
    import study_report
    from study_stats import effect, pearson_ci, verdict
finally:
    while _BENCH in sys.path:  # benchmarks/real_model.py must not shadow tests/real_model.py
        sys.path.remove(_BENCH)


def _eval(p_correct: list[float], n: int, seed: int) -> tuple[int, list[int]]:
    rng = random.Random(seed)
    return n, [sum(rng.random() < p for _ in range(n)) for p in p_correct]


def test_a_clear_gain_is_reproduced_and_no_change_is_inconclusive() -> None:
    probs = [random.Random(i).uniform(0.1, 0.6) for i in range(60)]
    base = [_eval(probs, 64, 100)]
    better = [_eval([min(p + 0.2, 1.0) for p in probs], 64, s) for s in range(3)]
    same = [_eval(probs, 64, s) for s in range(3)]
    up = effect(better, base, 1)
    assert 0.15 < up["diff"] < 0.25 and up["seeds_lo"] > 0 and up["problems_lo"] > 0
    assert verdict(up, +1) == "reproduced" and verdict(up, -1) == "refuted"
    assert verdict(effect(same, base, 1), +1) == "inconclusive"
    assert verdict(effect(better[:1], base, 1), +1).startswith("inconclusive")  # one seed: no seed interval


def test_pearson_interval() -> None:
    xs = [i / 10 for i in range(12)]
    r, lo, hi = pearson_ci(xs, [-x + 0.01 * (i % 3) for i, x in enumerate(xs)])
    assert r < -0.99 and hi < 0
    assert pearson_ci(xs[:3], xs[:3])[0] != pearson_ci(xs[:3], xs[:3])[0]  # too few runs: nan


def test_pearson_within_seeds_removes_what_a_seed_shares() -> None:
    from study_stats import pearson_ci, pearson_within

    # Across seeds x and y move together (seed 1 is higher in both); within each seed they move apart.
    xs = [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 1.3]
    ys = [0.3, 0.2, 0.1, 0.0, 1.3, 1.2, 1.1, 1.0]
    seeds = [0, 0, 0, 0, 1, 1, 1, 1]
    assert pearson_ci(xs, ys)[0] > 0.8
    r, lo, hi = pearson_within(xs, ys, seeds)
    assert r < -0.99 and hi < 0
    assert pearson_within(xs[:3], ys[:3], seeds[:3])[0] != pearson_within(xs[:3], ys[:3], seeds[:3])[0]


def test_report_states_each_claim_with_its_verdict(tmp_path: Path) -> None:
    probs = [random.Random(i).uniform(0.0, 0.05) for i in range(40)]  # pass@32 not saturated

    def ev(shift: float, seed: int) -> dict:
        n, c = _eval([min(max(p + shift, 0.0), 1.0) for p in probs], 32, seed)
        from rlvr.metrics.passk import pass_at_k_curve

        curve = pass_at_k_curve([(n, x) for x in c])
        return {"n": n, "per_problem_correct": c, "pass_at_k": {str(k): v for k, v in curve.items()}}

    runs = [
        {"algo": a, "seed": s, "eval": ev(sh, s), "curves": {"lambda/rank1": {"0": 0.8, "1": lam}}}
        for a, sh, lam in (("grpo", 0.15, 0.95), ("simko", 0.1, 0.85))
        for s in range(3)
    ]
    state = {
        "budget": {"steps": 2, "seeds": [0, 1, 2], "eval_n": 32, "problems": 40},
        "lr": 1e-5,
        "commit": "abc",
        "tasks": {"arith": {"problems": 40, "base": ev(0.0, 99), "runs": runs, "ablation": []}},
    }
    study_report.write(state, tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "1. **GRPO raises pass@1 but lowers pass@32: refuted.**" in text  # it raised both here
    assert "2. **Stronger concentration goes with worse pass@32:" in text
    assert "3. **SimKO raises pass@32 over GRPO without losing pass@1:" in text
    assert all((tmp_path / f).stat().st_size > 0 for f in study_report.PLOTS)


def test_unsaturated_k_is_the_largest_k_the_base_has_room_to_move():
    assert study_report.unsaturated_k({"1": 0.7, "2": 0.88, "4": 0.97, "8": 0.996, "16": 1.0}) == 4
    assert study_report.unsaturated_k({"1": 0.5, "2": 0.6, "256": 0.9}) == 256  # unsaturated: kmax itself
    assert study_report.unsaturated_k({"1": 0.99, "2": 1.0}) is None


def test_a_resumed_study_may_add_a_task_with_its_own_pool():
    sys.path.insert(0, _BENCH)
    try:
        import passk_study as ps
    finally:
        while _BENCH in sys.path:
            sys.path.remove(_BENCH)
    both = ["arith", "countdown_short"]
    assert ps.parse_pools(["2048", "countdown_short=256"], both, 128) == {
        "arith": 2048,
        "countdown_short": 256,
    }
    assert ps.parse_pools([], both, {"arith": 2048}) == {"arith": 2048, "countdown_short": ps.POOL}
    for bad in (["knights=3"], ["many"], ["arith=0"]):
        with pytest.raises(SystemExit, match="--pool"):
            ps.parse_pools(bad, both, 128)
    # An arith-only study recorded with a bare pool gains countdown_short with another pool.
    prev = {
        "budget": {**ps.budget(False), "tasks": ["arith"], "pool": 2048},
        "lr": 1e-4,
        "extra": [],
        "model": "m",
    }
    new = {**ps.budget(False), "tasks": ["countdown_short"], "pool": {"countdown_short": 256}}
    merged = ps.merge_budget(prev, new, 1e-4, [], "m")
    assert merged["tasks"] == both and merged["pool"] == {"arith": 2048, "countdown_short": 256}
    with pytest.raises(SystemExit, match="--pool for arith"):
        ps.merge_budget(prev, {**new, "tasks": ["arith"], "pool": {"arith": 512}}, 1e-4, [], "m")
    with pytest.raises(SystemExit, match="another budget"):
        ps.merge_budget(prev, {**new, "steps": 7}, 1e-4, [], "m")
    assert ps.budget(False, "tiny4n")["pool"] == {"arith": 2048, "countdown_short": 256}


def test_every_k_describes_both_gaps_at_each_k():
    probs = [random.Random(i).uniform(0.0, 0.3) for i in range(20)]

    def run(shift: float, seed: int) -> dict:
        n, c = _eval([min(p + shift, 1.0) for p in probs], 16, seed)
        return {"seed": seed, "eval": {"n": n, "per_problem_correct": c}}

    base = study_report._arm([run(0.0, 99)])
    lines = study_report.every_k(
        ["2", "4"], [run(0.2, s) for s in range(3)], [run(0.2, s) for s in range(3)], base
    )
    rows = [row for row in lines if row.startswith("| 2 |") or row.startswith("| 4 |")]
    assert len(rows) == 2 and all(row.count("seeds [") == 2 for row in rows)
    assert study_report.every_k(["2"], [], [run(0.0, 0)], base) == []
