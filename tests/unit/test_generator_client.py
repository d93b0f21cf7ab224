"""`GeneratorClient.submit` / `PendingGeneration.result` with stand-ins for the Serve handle: one wait per
request, one retry after a failed replica, and a timeout that names the setting."""

from __future__ import annotations

import pytest

from rlvr.generator.base import SamplingConfig
from rlvr.generator.deployment import GeneratorClient

pytestmark = pytest.mark.unit


class _Response:
    def __init__(self, outcome):
        self.outcome, self.calls = outcome, 0

    def result(self, timeout_s):
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _Method:
    def __init__(self, outcomes):
        self.outcomes, self.sent = list(outcomes), []

    def remote(self, prompts, sampling):
        self.sent.append(_Response(self.outcomes.pop(0)))
        return self.sent[-1]


class _Handle:
    def __init__(self, *outcomes):
        self.generate_timed = _Method(outcomes)


def _client(*outcomes) -> GeneratorClient:
    return GeneratorClient(_Handle(*outcomes), request_timeout_s=7.0, app_name="gen")


def test_result_waits_once_and_reports_the_replica_time():
    client = _client(([["a"]], 0.25))
    pending = client.submit(["p"], SamplingConfig())
    assert client.handle.generate_timed.sent[0].calls == 0  # submit does not wait
    assert pending.result() == [["a"]] and pending.result() == [["a"]]
    assert pending.seconds == 0.25
    assert client.handle.generate_timed.sent[0].calls == 1


def test_a_failed_replica_is_retried_once_then_reported():
    client = _client(RuntimeError("replica died"), ([["b"]], 0.1))
    assert client.generate(["p"], SamplingConfig()) == [["b"]]
    failing = _client(RuntimeError("dead"), RuntimeError("still dead"))
    with pytest.raises(RuntimeError, match="generator 'gen' failed twice"):
        failing.generate(["p"], SamplingConfig())


def test_timeout_names_the_setting():
    client = _client(TimeoutError())
    with pytest.raises(TimeoutError, match=r"generator\.request_timeout_s=7s"):
        client.submit(["p"], SamplingConfig(n=4)).result()
