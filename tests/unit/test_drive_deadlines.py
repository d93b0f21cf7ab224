"""The driver's stall deadlines: learner.start_timeout_s until a learner first asks for data, then
trainer.step_timeout_s. Fakes stand in for the controller, buffer and learners (no Ray)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rlvr.config import load_config
from rlvr.pipeline import run as run_mod
from rlvr.pipeline.startup import Startup

pytestmark = pytest.mark.unit


class _Remote:
    def __init__(self, fn: Any) -> None:
        self.remote = fn


class _Buffer:
    def __init__(self, first_ask_at: float | None) -> None:
        counters = {"replayed_steps": 0, "waiting": 0, "queued": 0, "first_ask_at": first_ask_at}
        self.counters = _Remote(lambda: counters)
        self.pop_metrics = _Remote(lambda: [])


class _Controller:
    """Weights stay at version 0 and the next step is out of the gate's reach: nothing to do but wait."""

    def staleness_bound(self) -> int:
        return 0

    def weight_version(self) -> int:
        return 0

    def weight_epoch(self) -> int:
        return 0

    def wait_for_weights(self, version: int, timeout: float) -> None:
        time.sleep(0.05)


class _Learners:
    done = False


def _stall(
    first_ask_at: float | None, monkeypatch: pytest.MonkeyPatch, **timeouts: float
) -> tuple[str, float]:
    """The driver's TimeoutError message, and how long it took to give up."""
    monkeypatch.setattr(run_mod.ray, "get", lambda obj, timeout=None: obj)
    cfg = load_config([f"{k.replace('__', '.')}={v}" for k, v in timeouts.items()])
    args = (
        cfg,
        _Controller(),
        _Buffer(first_ask_at),
        _Learners(),
        None,
        5,
        lambda step: None,
        None,
        Startup(),
    )
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        run_mod._drive(*args)  # type: ignore[arg-type]
    return str(info.value), time.monotonic() - start


def test_learners_still_starting_get_start_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    msg, waited = _stall(None, monkeypatch, trainer__step_timeout_s=0.2, learner__start_timeout_s=1.0)
    assert msg.startswith("no progress for learner.start_timeout_s=1s"), msg
    assert waited >= 1.0


def test_a_longer_step_timeout_also_covers_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    msg, waited = _stall(None, monkeypatch, trainer__step_timeout_s=0.5, learner__start_timeout_s=0.2)
    assert msg.startswith("no progress for trainer.step_timeout_s=0.5s"), msg
    assert waited >= 0.5


def test_started_learners_get_step_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    msg, waited = _stall(time.time(), monkeypatch, trainer__step_timeout_s=0.2, learner__start_timeout_s=30.0)
    assert msg.startswith("no progress for trainer.step_timeout_s=0.2s"), msg
    assert waited < 5.0
