"""`benchmarks/passk_study.py --quick`, the study's CI mode: real runs, evaluations and the report it writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
_BENCH = str(Path(__file__).resolve().parents[2] / "benchmarks")


def test_quick_study_trains_evaluates_and_reports(ray_cluster, tmp_path, monkeypatch) -> None:
    sys.path.insert(0, _BENCH)
    try:
        import passk_study
    finally:
        while _BENCH in sys.path:  # benchmarks/real_model.py must not shadow tests/real_model.py
            sys.path.remove(_BENCH)
    monkeypatch.setenv("RLVR_STUDY_DIR", str(tmp_path / "work"))
    # tiny2: the main job's warm start (cached by the other e2e tests), not the study's 3.5M-parameter one.
    passk_study.main(["--quick", "--model", "tiny2", "--steps", "2", "--out", str(tmp_path / "out")])
    state = json.loads((tmp_path / "out" / "results.json").read_text())
    assert state["model"] == "tiny2" and state["budget"]["steps"] == 2
    assert state["planned_runs"] == 2 and state["warm_start"]["arith"]["sha256"]
    for name in ("arith/held_out", "arith/seen"):
        t = state["tasks"][name]
        assert {r["algo"] for r in t["runs"]} == {"grpo", "simko"}
        for ev in [t["base"], *(r["eval"] for r in t["runs"])]:
            assert ev["n"] == 16 and len(ev["per_problem_correct"]) == t["problems"] > 0
            assert 0.0 <= ev["pass_at_k"]["1"] <= ev["pass_at_k"]["16"] <= 1.0
    assert all(len(r["curves"]["reward"]) == 2 for r in state["tasks"]["arith/held_out"]["runs"])
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "Training runs completed: 2 of 2 planned." in report and "tiny2" in report
    assert "GRPO raises pass@1 but lowers" in report
    for plot in ("passk_curves.png", "passk_vs_lambda1.png", "lambda1_training.png"):
        assert (tmp_path / "out" / plot).stat().st_size > 0
