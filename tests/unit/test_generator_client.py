"""`GeneratorClient.submit` / `PendingGeneration.result` with stand-ins for the Serve handle: one wait per
request, one retry after a dead replica, no retry after an engine error, a timeout that grows with the
work and names the settings, and prompts split into one slice per replica."""

from __future__ import annotations

import pytest
import ray

from rlvr.generator.base import SamplingConfig
from rlvr.generator.deployment import GeneratorClient

pytestmark = pytest.mark.unit


class _Response:
    def __init__(self, outcome):
        self.outcome, self.calls, self.timeouts = outcome, 0, []

    def result(self, timeout_s):
        self.calls += 1
        self.timeouts.append(timeout_s)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome(self.prompts) if callable(self.outcome) else self.outcome


class _Method:
    def __init__(self, outcomes):
        self.outcomes, self.sent = list(outcomes), []

    def remote(self, prompts, sampling):
        self.sent.append(_Response(self.outcomes.pop(0)))
        self.sent[-1].prompts, self.sent[-1].sampling = prompts, sampling
        return self.sent[-1]


class _Handle:
    def __init__(self, *outcomes):
        self.generate_timed = _Method(outcomes)


def _client(*outcomes, replicas: int = 1, per_token: float = 0.0) -> GeneratorClient:
    return GeneratorClient(_Handle(*outcomes), 7.0, "gen", replicas, per_token)


def test_result_waits_once_and_reports_the_replica_time():
    client = _client(([["a"]], 0.25))
    pending = client.submit(["p"], SamplingConfig())
    assert client.handle.generate_timed.sent[0].calls == 0  # submit does not wait
    assert pending.result() == [["a"]] and pending.result() == [["a"]]
    assert pending.seconds == 0.25
    assert client.handle.generate_timed.sent[0].calls == 1


def test_a_dead_replica_is_retried_once_then_reported():
    client = _client(ray.exceptions.ActorDiedError(), ([["b"]], 0.1))
    assert client.generate(["p"], SamplingConfig()) == [["b"]]
    failing = _client(RuntimeError("dead"), RuntimeError("still dead"))
    with pytest.raises(RuntimeError, match="generator 'gen' failed twice"):
        failing.generate(["p"], SamplingConfig())


def test_an_engine_error_reaches_the_caller_at_once():
    err = ray.exceptions.RayTaskError(
        "generate_timed", "tb", RuntimeError("CPU Generator does not use offset")
    )
    client = _client(err.as_instanceof_cause(), ([["never"]], 0.1))
    with pytest.raises(RuntimeError, match="generator 'gen' failed: RuntimeError: CPU Generator"):
        client.generate(["p"], SamplingConfig())
    assert len(client.handle.generate_timed.sent) == 1  # no retry into the broken engine


def test_timeout_grows_with_the_work_and_names_the_settings():
    client = _client(TimeoutError(), per_token=0.01)
    with pytest.raises(
        TimeoutError, match=r"within 7.32s \(generator\.request_timeout_s=7s.*per_token_s=0.01s"
    ):
        client.submit(["p", "q"], SamplingConfig(n=4, max_tokens=4)).result()
    assert client.handle.generate_timed.sent[0].timeouts == [pytest.approx(7.0 + 0.01 * 2 * 4 * 4)]


def test_prompts_are_split_across_replicas_with_their_own_seeds():
    def echo(prompts):
        return [[p] for p in prompts], len(prompts) * 0.1

    client = _client(echo, echo, replicas=2)
    pending = client.submit(["a", "b", "c"], SamplingConfig(n=2, seed=1))
    sent = client.handle.generate_timed.sent
    assert [r.prompts for r in sent] == [["a"], ["b", "c"]]
    whole = SamplingConfig(n=2, seed=1).with_sample_seeds(3).seeds
    assert sent[0].sampling.seeds + sent[1].sampling.seeds == whole
    assert pending.result() == [["a"], ["b"], ["c"]]
    assert pending.seconds == pytest.approx(0.2)  # the slowest slice
