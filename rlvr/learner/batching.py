"""Trajectories -> padded training tensors.

In: a list of `Trajectory` (prompt ids, response ids, behaviour log-probs, advantage, reward).
Out: a `TrainBatch` of right-padded tensors whose token-level fields are aligned with the
targets `input_ids[:, 1:]` (shape [B, L-1]), and its micro-batch split. It must never touch a
model or compute advantages (the controller did that).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from rlvr.types import Trajectory


@dataclass
class TrainBatch:
    input_ids: torch.Tensor  # [B, L] long, prompt + response, right padded
    attention_mask: torch.Tensor  # [B, L] long
    loss_mask: torch.Tensor  # [B, L] long, 1 on response tokens of trainable trajectories
    behaviour_logprobs: torch.Tensor  # [B, L-1] float, sampler's log-prob of target t+1 at index t
    old_logprobs: torch.Tensor  # [B, L-1] proximal policy log-probs (the learner fills them)
    ref_logprobs: torch.Tensor  # [B, L-1] reference policy log-probs (zeros unless the learner computes them)
    advantages: torch.Tensor  # [B] float
    rewards: torch.Tensor  # [B] float
    correct: torch.Tensor  # [B] bool
    group_index: torch.Tensor  # [B] long, dense index of the group id in this batch
    weight_versions: torch.Tensor  # [B] long, generator weight version of each response

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, idx: slice | torch.Tensor) -> TrainBatch:
        """Rows `idx` (a slice or a LongTensor of row indices)."""
        return TrainBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device: torch.device | str) -> TrainBatch:
        return TrainBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def collate(trajs: list[Trajectory], pad_id: int = 0) -> TrainBatch:
    """Pack trajectories into right-padded tensors; the response of row i starts at len(prompt_i)."""
    if not trajs:
        raise ValueError("collate needs at least one trajectory")
    lengths = [len(t.sample.prompt_ids) + len(t.sample.response_ids) for t in trajs]
    b, seq = len(trajs), max(lengths)
    input_ids = torch.full((b, seq), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((b, seq), dtype=torch.long)
    loss_mask = torch.zeros((b, seq), dtype=torch.long)
    old_logprobs = torch.zeros((b, max(seq - 1, 1)), dtype=torch.float32)
    groups: dict[str, int] = {}
    for i, t in enumerate(trajs):
        p, r = t.sample.prompt_ids, t.sample.response_ids
        if len(t.sample.behaviour_logprobs) != len(r):
            raise ValueError(
                f"trajectory {t.traj_id}: {len(t.sample.behaviour_logprobs)} behaviour log-probs "
                f"for {len(r)} response tokens"
            )
        if not p:
            raise ValueError(
                f"trajectory {t.traj_id}: empty prompt (the first response token has no context)"
            )
        input_ids[i, : len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
        attention_mask[i, : len(p) + len(r)] = 1
        loss_mask[i, len(p) : len(p) + len(r)] = 1
        # Target at position len(p)+j is predicted from index len(p)+j-1.
        if r:
            old_logprobs[i, len(p) - 1 : len(p) - 1 + len(r)] = torch.tensor(
                t.sample.behaviour_logprobs, dtype=torch.float32
            )
        if not t.trainable:
            loss_mask[i] = 0
        groups.setdefault(t.group_id, len(groups))
    return TrainBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        loss_mask=loss_mask,
        behaviour_logprobs=old_logprobs,
        old_logprobs=old_logprobs.clone(),
        ref_logprobs=torch.zeros_like(old_logprobs),
        advantages=torch.tensor([t.advantage for t in trajs], dtype=torch.float32),
        rewards=torch.tensor([t.reward for t in trajs], dtype=torch.float32),
        correct=torch.tensor([bool(t.result.correct) for t in trajs], dtype=torch.bool),
        group_index=torch.tensor([groups[t.group_id] for t in trajs], dtype=torch.long),
        weight_versions=torch.tensor([t.weight_version for t in trajs], dtype=torch.long),
    )


def micro_batches(batch: TrainBatch, micro_batch_size: int) -> list[TrainBatch]:
    """Consecutive slices of at most `micro_batch_size` rows, each trimmed to its own longest row."""
    return [
        trim(batch.select(slice(start, start + micro_batch_size)))
        for start in range(0, batch.size, micro_batch_size)
    ]


def trim(batch: TrainBatch) -> TrainBatch:
    """Drop trailing all-padding columns (saves compute on short micro-batches)."""
    seq = int(batch.attention_mask.sum(dim=1).max().item())
    seq = max(seq, 2)
    if seq >= batch.input_ids.shape[1]:
        return batch
    cut = {f.name: getattr(batch, f.name) for f in fields(batch)}
    for name in ("input_ids", "attention_mask", "loss_mask"):
        cut[name] = cut[name][:, :seq]
    for name in ("behaviour_logprobs", "old_logprobs", "ref_logprobs"):
        cut[name] = cut[name][:, : seq - 1]
    return TrainBatch(**cut)
