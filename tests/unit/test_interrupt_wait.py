"""The wait after Ctrl-C: bounded by trainer.step_timeout_s, with a progress line naming what is outstanding."""

from __future__ import annotations

import time

import pytest

from rlvr.pipeline.interrupt import outstanding, wait_after_interrupt

pytestmark = pytest.mark.unit


class _Learners:
    """Finishes after `finish_after_s` (never when None); `wait` blocks as Thread.join would."""

    def __init__(self, finish_after_s: float | None) -> None:
        self.t0 = time.monotonic()
        self.finish_after_s = finish_after_s

    def wait(self, timeout: float) -> bool:
        if self.finish_after_s is None:
            time.sleep(timeout)
            return False
        left = self.t0 + self.finish_after_s - time.monotonic()
        time.sleep(max(0.0, min(timeout, left)))
        return left <= timeout


def test_outstanding_names_the_ranks_still_in_a_step():
    assert outstanding({"stops": {0: {"step": 3}}}, 2) == (
        "1 of 2 learner ranks stopped; ranks [1] are still in a step"
    )
    assert outstanding({"stops": {0: {}, 1: {}}}, 2).startswith("all 2 learner ranks stopped; waiting for")


def test_returns_when_the_learners_finish_and_says_nothing_if_quick():
    said: list[str] = []
    assert wait_after_interrupt(_Learners(0.05), lambda: {"stops": {}}, 1, 5.0, said.append, every_s=1.0)
    assert said == []


def test_progress_lines_then_gives_up_at_the_limit():
    said: list[str] = []
    t0 = time.monotonic()
    ok = wait_after_interrupt(_Learners(None), lambda: {"stops": {0: {}}}, 2, 0.35, said.append, every_s=0.1)
    assert not ok
    assert time.monotonic() - t0 < 2.0  # bounded: the limit, not the learners, ends the wait
    assert all(s.startswith("still waiting for the learners after") for s in said[:-1]) and len(said) >= 3
    assert "ranks [1] are still in a step" in said[0]
    assert said[-1].startswith("learners did not stop within trainer.step_timeout_s=0.35s after Ctrl-C")
    assert said[-1].endswith("quitting without a final checkpoint")


def test_a_silent_buffer_still_gives_a_line():
    def broken() -> dict:
        raise TimeoutError("no answer")

    said: list[str] = []
    assert not wait_after_interrupt(_Learners(None), broken, 1, 0.1, said.append, every_s=0.05)
    assert "the buffer did not answer (TimeoutError)" in said[-1]


def test_sigusr1_prints_the_stacks_and_the_process_lives_on():
    import subprocess
    import sys

    code = (
        "import os, signal; from rlvr.cli import _stacks_on_sigusr1; _stacks_on_sigusr1(); "
        "os.kill(os.getpid(), signal.SIGUSR1); print('alive')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "alive", r.stderr
    assert "most recent call first" in r.stderr
