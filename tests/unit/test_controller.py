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


def _gen(texts: list[str], step: int, **_seeding) -> list[list[Sample]]:
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

    def submit(texts, step, **seeding):
        made.append(_Pending(_gen(texts, step)))
        return made[-1]

    ctl = Controller(cfg, prompts, submit, _verify, None, lambda: 0, get("grpo"))
    pending = ctl.submit(1)
    assert not made[0].waited  # submitting does not wait for the batch
    trajs, metrics = ctl.complete(pending)
    assert made[0].waited and len(trajs) == 12
    assert metrics["gen/seconds"] == pytest.approx(0.123)
    assert [t.prompt.text for t in trajs[::4]] == ["q3", "q4", "q0"]


def test_top_up_rounds_bring_new_prompts_and_new_randomness():
    """DAPO dynamic sampling: a top-up round must not replay the step's prompts with the same seeds (today it
    re-rolled them and, with unchanged weights, got byte-identical samples)."""
    cfg = load_config(
        ["trainer.prompts_per_step=3", "generator.n_samples=4", "trainer.filter_zero_advantage=true"]
    )
    prompts = [Prompt(f"q{i}", str(i), prompt_id=f"p{i}") for i in range(20)]
    calls: list[tuple[int, int, tuple[str, ...]]] = []

    def seeded_gen(texts, step, prompt_ids=None, round=0):
        calls.append((step, round, tuple(prompt_ids)))
        # A response per (step, prompt, sample, round): what a per-sample seed guarantees.
        return [
            [Sample([1], [2], f"{step}/{pid}/{k}/{round}", [-0.1], "stop", 0) for k in range(4)]
            for pid in prompt_ids
        ]

    ctl = Controller(cfg, prompts, seeded_gen, _verify, None, lambda: 0, get("grpo"))
    trained = []
    for round_ in range(4):
        trajs, _ = ctl.rollout(5, round_)
        trained += [(t.prompt.prompt_id, t.sample.response_text) for t in trajs]
    assert [r for _, r, _ in calls] == [0, 1, 2, 3]
    used = [set(ids) for _, _, ids in calls]
    assert all(not (used[i] & used[j]) for i in range(4) for j in range(i)), used  # fresh prompts each round
    assert len(trained) == len(set(trained)) == 48  # no (prompt, response) pair twice in one step
    # Deterministic in (seed, step, round): a resumed run tops up with the same prompts.
    assert [p.prompt_id for p in ctl.prompts_for_round(5, 2)] == list(calls[2][2])


def test_overlong_penalty_is_dapo_soft_punishment():
    from rlvr.pipeline.controller import overlong_rewards

    cfg = load_config(["trainer.overlong=penalty", "trainer.overlong_buffer=4", "generator.max_tokens=10"])
    lens = [3, 6, 8, 10]
    samples = [Sample([1], [2] * n, "r", [-0.1] * n, "length" if n == 10 else "stop", 0) for n in lens]
    got = overlong_rewards([1.0] * 4, samples, cfg.trainer, 10)
    # L <= 6: no penalty; inside the buffer (6, 10): -(L - 6) / 4; cut at max_tokens: -1.
    assert got == pytest.approx([1.0, 1.0, 0.5, 0.0])
    keep = load_config(["generator.max_tokens=10"])
    assert overlong_rewards([1.0] * 4, samples, keep.trainer, 10) == [1.0] * 4


def test_overlong_filter_masks_truncated_responses_out_of_the_loss():
    cfg = load_config(["trainer.prompts_per_step=1", "generator.n_samples=2", "trainer.overlong=filter"])

    def gen(texts, step, **_):
        return [
            [Sample([1], [2, 3], "a", [-0.1, -0.1], "length", 0), Sample([1], [2], "b", [-0.1], "stop", 0)]
        ]

    ctl = Controller(cfg, [Prompt("q", "1")], gen, _verify, None, lambda: 0, get("grpo"))
    trajs, metrics = ctl.rollout(0)
    assert [t.trainable for t in trajs] == [False, True]
    assert metrics["truncated_frac"] == 0.5


def test_weighted_rewards_reach_the_advantages_and_are_logged_per_component():
    """verifiers=[math,format]: the format bonus scores every row; reward = math + w * format, accuracy stays
    the math verifier's verdict."""
    cfg = load_config(
        ["trainer.prompts_per_step=1", "generator.n_samples=2", "verifiers=[math,format]"]
        + ["verifiers.specs.format.weight=0.5", "verifiers.specs.format.applies_to=all"]
    )

    def gen(texts, step, **_):
        return [[Sample([1], [2], "\\boxed{3}", [-0.1], "stop", 0), Sample([1], [2], "3", [-0.1], "stop", 0)]]

    def verify(items):
        out = []
        for name, response, _gold, _ in items:
            boxed = response.startswith("\\boxed")
            ok = boxed and name == "math"
            out.append(VerifierResult(reward=float(ok or (name == "format" and boxed)), correct=ok))
        return out

    ctl = Controller(cfg, [Prompt("q", "3")], gen, verify, None, lambda: 0, get("grpo"))
    trajs, metrics = ctl.rollout(0)
    assert [t.reward for t in trajs] == [1.5, 0.0]
    assert metrics["accuracy"] == 0.5 and metrics["reward/format"] == 0.5 and metrics["reward/math"] == 0.5
    assert trajs[0].advantage > 0 > trajs[1].advantage
