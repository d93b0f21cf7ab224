"""Trajectories -> padded tensors, alignment of behaviour log-probs, micro-batching, batch plans."""

from __future__ import annotations

import pytest
import torch

from rlvr.config.schema import LearnerConfig
from rlvr.errors import RlvrUserError
from rlvr.learner.batching import collate, micro_batches
from rlvr.learner.ds_config import WarmUp, deepspeed_config, plan_batches
from rlvr.types import Prompt, Sample, Trajectory, VerifierResult

pytestmark = pytest.mark.unit


def traj(
    prompt: list[int], resp: list[int], lps: list[float], group: str = "g", adv: float = 0.5
) -> Trajectory:
    return Trajectory(
        prompt=Prompt(text="q", ground_truth="a"),
        sample=Sample(prompt, resp, "r", lps, "stop", weight_version=3),
        group_id=group,
        result=VerifierResult(reward=1.0, correct=True),
        advantage=adv,
    )


def test_collate_pads_right_and_aligns_old_logprobs_with_targets() -> None:
    b = collate([traj([5, 6, 7], [8, 9], [-0.1, -0.2], "a"), traj([5], [4, 3, 2], [-1, -2, -3], "b", -1.0)])
    assert b.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 4, 3, 2, 0]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert b.loss_mask.tolist() == [[0, 0, 0, 1, 1], [0, 1, 1, 1, 0]]
    assert b.old_logprobs.shape == (2, 4)
    # old_logprobs[:, t] is the behaviour log-prob of target input_ids[:, t+1].
    torch.testing.assert_close(b.old_logprobs[0], torch.tensor([0.0, 0.0, -0.1, -0.2]))
    torch.testing.assert_close(b.old_logprobs[1], torch.tensor([-1.0, -2.0, -3.0, 0.0]))
    # The target mask used by losses marks exactly the response targets.
    assert (b.loss_mask[:, 1:].bool() == (b.old_logprobs != 0)).all()
    assert b.advantages.tolist() == [0.5, -1.0]
    assert b.group_index.tolist() == [0, 1]
    assert b.correct.dtype == torch.bool and b.weight_versions.tolist() == [3, 3]


def test_collate_rejects_mismatched_logprobs_and_empty_prompt() -> None:
    with pytest.raises(ValueError, match="behaviour log-probs"):
        collate([traj([1], [2, 3], [-1.0])])
    with pytest.raises(ValueError, match="empty prompt"):
        collate([traj([], [2], [-1.0])])


def test_group_index_is_dense_in_first_seen_order() -> None:
    b = collate([traj([1], [2], [-1], g) for g in ["x", "y", "x", "z"]])
    assert b.group_index.tolist() == [0, 1, 0, 2]


def test_micro_batches_split_and_trim() -> None:
    ts = [traj([1, 2], [3] * n, [-1.0] * n) for n in (1, 1, 5, 2, 1)]
    b = collate(ts)
    mbs = micro_batches(b, 2)
    assert [m.size for m in mbs] == [2, 2, 1]
    assert mbs[0].input_ids.shape == (2, 3)  # trimmed to its longest row
    assert mbs[0].old_logprobs.shape == (2, 2)
    assert mbs[1].input_ids.shape == (2, 7)
    assert sum(int(m.loss_mask.sum()) for m in mbs) == int(b.loss_mask.sum())


def test_plan_and_deepspeed_config() -> None:
    lc = LearnerConfig(mini_batch_size=8, micro_batch_size=2)
    plan = plan_batches(lc, world_size=2, step_batch=16)
    assert (plan.per_rank, plan.micro, plan.grad_accum, plan.optimizer_steps) == (8, 2, 2, 2)
    ds = deepspeed_config(lc, plan, 2, on_gpu=False)
    assert ds["train_batch_size"] == 8 and ds["gradient_accumulation_steps"] == 2
    assert ds["bf16"]["enabled"] is False
    with pytest.raises(RlvrUserError, match="learner.num_workers"):
        plan_batches(lc, world_size=3, step_batch=16)
    with pytest.raises(RlvrUserError, match="learner.micro_batch_size"):
        plan_batches(LearnerConfig(mini_batch_size=8, micro_batch_size=3), 2, 16)


def test_warmup_schedule() -> None:
    w = WarmUp(4)
    assert [w(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert WarmUp(0)(0) == 1.0


def test_lr_schedule_decays_after_warmup() -> None:
    from rlvr.learner.ds_config import LrSchedule

    lin = LrSchedule(2, "linear", total=6, min_ratio=0.0)
    assert [round(lin(s), 3) for s in range(7)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    cos = LrSchedule(0, "cosine", total=4, min_ratio=0.1)
    assert cos(0) == 1.0 and abs(cos(2) - 0.55) < 1e-9 and abs(cos(4) - 0.1) < 1e-9
    assert LrSchedule(0, "constant", total=10)(9) == 1.0


def test_untrainable_trajectory_is_masked_out_of_the_loss() -> None:
    t = traj([1, 2], [3, 4], [-1.0, -1.0])
    t.trainable = False
    b = collate([t, traj([1], [2], [-1.0])])
    assert int(b.loss_mask[0].sum()) == 0 and int(b.loss_mask[1].sum()) == 1
