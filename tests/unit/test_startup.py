"""The start-up timeline: seconds since the process began, first mark wins, fixed order; the model and
prompts are prepared while Ray starts, and a problem in them is still the error a run fails with."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from rlvr.pipeline.buffer import BufferCore
from rlvr.pipeline.startup import ORDER, Startup, process_start
from rlvr.types import Prompt, Sample, Trajectory, VerifierResult

pytestmark = pytest.mark.unit


def trajs(n: int) -> list[Trajectory]:
    return [
        Trajectory(Prompt(text="q", ground_truth="a"), Sample([1], [2], "r", [-1.0], "stop", 0), f"g{i}",
                   VerifierResult(reward=0.0, correct=False))
        for i in range(n)
    ]  # fmt: skip


def test_marks_are_seconds_since_t0_in_a_fixed_order_and_the_first_wins():
    s = Startup(t0=1000.0)
    s.mark("first_step", at=1012.5)
    s.mark("config", at=1001.0)
    s.mark("config", at=1009.0)  # a later mark of the same phase never moves it
    assert s.as_dict() == {"config": 1.0, "first_step": 12.5}
    assert (
        s.line() == "start-up, seconds since the process began: imports+config 1.0s, first learner step 12.5s"
    )


def test_the_clock_starts_when_the_process_did():
    t0 = process_start()
    assert t0 <= time.time() and time.time() - t0 < 24 * 3600  # this test process began before now
    s = Startup()
    s.mark("ray")
    assert 0 <= s.as_dict()["ray"] == s.marks["ray"]
    assert set(ORDER) >= set(s.as_dict())


def test_a_fresh_process_is_its_own_age_old_not_off_by_the_boot_times_lost_fraction():
    """psutil's creation time rests on /proc/stat's whole-second boot time: up to 1 s early."""
    code = (
        "import time; from rlvr.pipeline.startup import process_start; print(time.time() - process_start())"
    )
    t = time.time()
    age = float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert 0.0 <= age <= time.time() - t + 0.02  # at most the child's whole life (10 ms ticks)


def test_the_buffer_records_a_learners_first_ask_and_first_batch():
    core = BufferCore()
    assert core.counters()["first_ask_at"] is None
    assert core.try_take(0, 0, 1, 1, current_version=0, max_staleness=1) is None  # asked: nothing queued
    asked = core.counters()["first_ask_at"]
    assert asked is not None and core.counters()["first_take_at"] is None
    core.put(trajs(2))
    assert core.try_take(0, 0, 1, 2, current_version=0, max_staleness=1) is not None
    c = core.counters()
    assert c["first_ask_at"] == asked and c["first_take_at"] >= asked


CFG = SimpleNamespace(cluster=None)  # what prepare_while_connecting reads itself


def _overlap(monkeypatch, prepare_fn, connect_fn):
    import rlvr.pipeline.boot as boot

    shut: list[bool] = []
    monkeypatch.setattr(boot, "prepare", prepare_fn)
    monkeypatch.setattr(boot, "connect", connect_fn)
    monkeypatch.setattr(boot.ray, "shutdown", lambda: shut.append(True))
    return boot, shut


def test_prepare_runs_while_ray_starts_and_marks_both(monkeypatch):
    import threading

    both = threading.Barrier(2, timeout=10)  # passes only if prepare and connect run at the same time

    def prepare(cfg):
        both.wait()
        return "prepared"

    def connect(cluster):
        both.wait()
        return {"started": True, "message": "m"}

    run, shut = _overlap(monkeypatch, prepare, connect)
    s = Startup(t0=0.0)
    prepared, info = run.prepare_while_connecting(CFG, s)  # type: ignore[arg-type]
    assert (prepared, info["started"], shut) == ("prepared", True, [])
    assert {"prepared", "ray"} <= set(s.marks)


@pytest.mark.parametrize("started", [True, False])
def test_a_config_problem_stops_only_a_cluster_started_here_and_is_the_error_raised(monkeypatch, started):
    from rlvr.errors import RlvrUserError

    def prepare(cfg):
        raise RlvrUserError("data.question_key: no column 'q'")

    run, shut = _overlap(monkeypatch, prepare, lambda cluster: {"started": started, "message": "m"})
    with pytest.raises(RlvrUserError, match="data.question_key"):
        run.prepare_while_connecting(CFG, Startup())  # type: ignore[arg-type]
    assert shut == ([True] if started else [])


def test_when_both_fail_the_config_problem_is_reported(monkeypatch):
    from rlvr.errors import RlvrUserError

    def prepare(cfg):
        raise RlvrUserError("model.path: not found")

    def connect(cluster):
        raise ConnectionError("cluster.address unreachable")

    run, _ = _overlap(monkeypatch, prepare, connect)
    with pytest.raises(RlvrUserError, match="model.path"):
        run.prepare_while_connecting(CFG, Startup())  # type: ignore[arg-type]
    monkeypatch.setattr(run, "prepare", lambda cfg: "ok")
    with pytest.raises(ConnectionError):  # prepare fine: the cluster's own error
        run.prepare_while_connecting(CFG, Startup())  # type: ignore[arg-type]


def test_imports_and_checks_run_beside_connect_and_their_errors_stop_the_cluster(monkeypatch):
    import threading

    from rlvr.errors import RlvrUserError

    both = threading.Barrier(2, timeout=10)  # `before` (the pipeline's imports) overlaps Ray's start
    order: list[str] = []

    def before():
        both.wait()
        order.append("before")

    def prepare(cfg):
        order.append("prepare")
        return "prepared"

    def connect(cluster):
        both.wait()
        return {"started": True, "message": "m"}

    boot, shut = _overlap(monkeypatch, prepare, connect)
    assert boot.prepare_while_connecting(CFG, Startup(), before=before)[0] == "prepared"  # type: ignore[arg-type]
    assert order == ["before", "prepare"] and shut == []

    def bad_algorithm():
        raise RlvrUserError("algorithm.params.alpha: must be >= 0")

    _, shut = _overlap(monkeypatch, prepare, lambda cluster: {"started": True, "message": "m"})
    with pytest.raises(RlvrUserError, match="algorithm.params.alpha"):
        boot.prepare_while_connecting(CFG, Startup(), before=bad_algorithm)  # type: ignore[arg-type]
    assert shut == [True]


def test_the_pipeline_is_imported_off_the_main_thread_and_handed_over(monkeypatch):
    """`boot.run` hands run_training the clock, the prepared model and prompts, and the cluster."""
    import rlvr.pipeline.boot as boot
    import rlvr.pipeline.run as run

    seen: dict = {}
    monkeypatch.setattr(run, "check_config", lambda cfg: (seen.setdefault("checked", cfg), "ckpt"))
    monkeypatch.setattr(boot, "prepare", lambda cfg: "prepared")
    monkeypatch.setattr(boot, "connect", lambda cluster: {"started": False, "message": "m"})
    monkeypatch.setattr(run, "run_training", lambda cfg, early=None: {"early": early})
    out = boot.run(CFG)  # type: ignore[arg-type]
    early = out["early"]
    assert seen["checked"] is CFG
    assert (early.prepared, early.cluster["message"]) == ("prepared", "m")
    assert (early.algo, early.resume) == (CFG, "ckpt")  # checked once, in boot: run_training reuses them
    assert {"config", "ray", "prepared"} <= set(early.startup.marks)
