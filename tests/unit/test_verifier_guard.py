"""The hard-timeout mechanism without Ray: a hung check kills its process; the caller carries on."""

from __future__ import annotations

import os
import time

import cloudpickle
import pytest

from rlvr.types import VerifierResult
from rlvr.verifiers.guard import CheckTimeout, GuardedWorker, WorkerCrashed

pytestmark = pytest.mark.unit


class Sleeper:
    def verify(self, response: str, ground_truth: str, **metadata) -> VerifierResult:
        if response == "hang":
            while True:  # a busy loop ignores nothing but SIGKILL
                pass
        if response == "boom":
            raise RuntimeError("verifier bug")
        return VerifierResult(1.0, response == ground_truth)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_timeout_kills_and_respawns() -> None:
    cloudpickle.register_pickle_by_value(__import__(__name__))
    try:
        init = [("set_verifiers", cloudpickle.dumps({"s": Sleeper()}))]
    finally:
        cloudpickle.unregister_pickle_by_value(__import__(__name__))
    worker = GuardedWorker(init_ops=init)
    try:
        assert worker.call("verify", ("s", "a", "a", {}), 5).correct
        first = worker.pid
        start = time.monotonic()
        with pytest.raises(CheckTimeout):
            worker.call("verify", ("s", "hang", "a", {}), 1.0)
        assert time.monotonic() - start < 3
        time.sleep(0.2)
        assert first is not None and not _pid_alive(first)
        with pytest.raises(WorkerCrashed, match="verifier bug"):
            worker.call("verify", ("s", "boom", "a", {}), 5)
        assert worker.call("verify", ("s", "b", "b", {}), 5).correct  # respawned with the verifiers replayed
        assert worker.pid != first and worker.restarts == 1
    finally:
        worker.close()
