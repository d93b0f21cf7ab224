"""The controller's rollout bookkeeping with plain functions standing in for the remote components."""

from __future__ import annotations

import pytest
import torch

from rlvr.algorithms import get
from rlvr.config import load_config
from rlvr.errors import RlvrUserError
from rlvr.pipeline.controller import Controller
from rlvr.types import Prompt, Sample, VerifierResult

pytestmark = pytest.mark.unit


def _gen(texts: list[str], step: int) -> list[list[Sample]]:
    return [
        [Sample([1, 2], [3, 4 + j], f"{t} {j}", [-0.5, -0.7], "stop", step) for j in range(4)] for t in texts
    ]


def _verify(items):  # every other response is correct
    return [VerifierResult(reward=float(i % 2), correct=bool(i % 2)) for i, _ in enumerate(items)]


def _controller(*overrides: str) -> Controller:
    cfg = load_config(["trainer.prompts_per_step=3", "generator.n_samples=4", *overrides])
    prompts = [Prompt(f"q{i}", str(i)) for i in range(5)]
    return Controller(
        cfg, prompts, _gen, _verify, buffer=None, weight_version=lambda: 0, algorithm=get("grpo")
    )


def test_rollout_groups_and_advantages():
    ctl = _controller()
    trajs, metrics = ctl.rollout(step=2)
    assert len(trajs) == 12
    groups = [t.group_id for t in trajs]
    assert len(set(groups)) == 3 and all(groups.count(g) == 4 for g in set(groups))
    # Each group has rewards 0,1,0,1: the group-normalised advantages are +-1/std, never all zero.
    adv = torch.tensor([t.advantage for t in trajs])
    assert adv.abs().min() > 0.5
    assert abs(float(adv.sum())) < 1e-5
    assert metrics["reward"] == pytest.approx(0.5)
    assert metrics["gen/staleness"] == 0.0
    assert len({t.traj_id for t in trajs}) == 12


def test_prompts_for_step_are_deterministic_and_cycle():
    ctl = _controller()
    assert [p.text for p in ctl.prompts_for_step(1)] == ["q3", "q4", "q0"]
    assert [p.text for p in ctl.prompts_for_step(1)] == [p.text for p in ctl.prompts_for_step(1)]


def test_filter_zero_advantage_groups():
    ctl = _controller("trainer.filter_zero_advantage=true")
    trajs, _ = ctl.rollout(0)
    for t in trajs[:4]:
        t.result = VerifierResult(reward=1.0, correct=True)
    keep, drop = ctl.filter_groups(trajs)
    assert len(drop) == 4 and len(keep) == 8


def test_rows_needing_unselected_verifier_fail_fast():
    cfg = load_config([])
    with pytest.raises(RlvrUserError, match="logic"):
        Controller(cfg, [Prompt("q", "a", data_source="logic")], _gen, _verify, None, lambda: 0, get("grpo"))


class _Pending:
    """Stands in for a generate request in flight (GeneratorClient.submit)."""

    def __init__(self, groups):
        self.groups, self.seconds, self.waited = groups, 0.0, False

    def result(self):
        self.waited, self.seconds = True, 0.123
        return self.groups


def test_submit_then_complete_uses_the_generators_own_time():
    cfg = load_config(["trainer.prompts_per_step=3", "generator.n_samples=4"])
    prompts = [Prompt(f"q{i}", str(i)) for i in range(5)]
    made: list[_Pending] = []

    def submit(texts, step):
        made.append(_Pending(_gen(texts, step)))
        return made[-1]

    ctl = Controller(cfg, prompts, submit, _verify, None, lambda: 0, get("grpo"))
    pending = ctl.submit(1)
    assert not made[0].waited  # submitting does not wait for the batch
    trajs, metrics = ctl.complete(pending)
    assert made[0].waited and len(trajs) == 12
    assert metrics["gen/seconds"] == pytest.approx(0.123)
    assert [t.prompt.text for t in trajs[::4]] == ["q3", "q4", "q0"]
