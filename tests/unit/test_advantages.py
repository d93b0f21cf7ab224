"""Advantage estimators against their formulas written out per group in plain torch, and the registry."""

from __future__ import annotations

import pytest
import torch

import rlvr.algorithms as algos
from rlvr.algorithms import ADVANTAGES, AdvantageParams, register_advantage
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit

REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.0, 2.0, 0.3, 0.9], dtype=torch.float64)
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 3, 3])
CORRECT = REWARDS > 0.4


def estimate(name: str, **kw: object) -> torch.Tensor:
    est = ADVANTAGES.get(name)
    return est.fn(REWARDS, CORRECT, GROUPS, est.Params.model_validate(kw))


def test_rloo_is_leave_one_out():
    want = torch.zeros_like(REWARDS)
    for i in range(len(REWARDS)):
        others = (GROUPS == GROUPS[i]) & (torch.arange(len(REWARDS)) != i)
        if others.any():  # a one-response group (group 2) has no baseline
            want[i] = REWARDS[i] - REWARDS[others].mean()
    torch.testing.assert_close(estimate("rloo"), want)
    assert estimate("rloo")[7] == 0.0


def test_reinforce_pp_centres_by_group_and_scales_by_batch_std():
    centred = torch.empty_like(REWARDS)
    for g in GROUPS.unique():
        sel = GROUPS == g
        centred[sel] = REWARDS[sel] - REWARDS[sel].mean()
    want = centred / (centred.std(unbiased=True) + 1e-4)
    torch.testing.assert_close(estimate("reinforce_pp", eps=1e-4), want)
    # Unlike GRPO, one group's scale depends on the other groups (a batch-wide std).
    a = estimate("reinforce_pp")
    ratio = a[GROUPS == 0] / centred[GROUPS == 0]
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio[0].item()))


def test_sign_estimators():
    c = CORRECT.double()
    torch.testing.assert_close(estimate("psr"), c)
    torch.testing.assert_close(estimate("nsr"), c - 1.0)
    torch.testing.assert_close(estimate("w_reinforce", w=0.3), torch.where(CORRECT, 0.3, -1.0).double())


def test_grpo_estimator_matches_preset():
    preset = algos.get("grpo")
    p = preset.Params.model_validate({"norm_std": False})
    torch.testing.assert_close(
        preset.advantages(REWARDS, CORRECT, GROUPS, p), estimate("grpo", norm_std=False)
    )


def test_unknown_and_registered_estimator():
    with pytest.raises(
        RlvrUserError, match=r"unknown advantage estimator 'rlo'; registered: .*rloo.*did you mean"
    ):
        ADVANTAGES.get("rlo")

    class HalfParams(AdvantageParams):
        scale: float = 0.5

    @register_advantage("test_half", params=HalfParams)
    def half(rewards, correct, group_index, params):
        return params.scale * rewards

    try:
        torch.testing.assert_close(estimate("test_half"), 0.5 * REWARDS)
        with pytest.raises(ValueError, match="already registered"):
            register_advantage("test_half")(half)
    finally:
        ADVANTAGES._items.pop("test_half", None)
