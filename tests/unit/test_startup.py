"""The start-up timeline: seconds since the process began, first mark wins, fixed order."""

from __future__ import annotations

import time

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
