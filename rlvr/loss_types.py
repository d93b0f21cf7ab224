"""The records that cross the learner/strategy boundary: `TokenStats`, `LossInput`, `LossOutput`.

In: the common policy actor (`rlvr.policy_stats`) fills `TokenStats`; the learner fills `LossInput`.
Out: a policy loss returns `LossOutput`. These are plain tensor records: no model, optimizer or config here.
Shapes: B responses in this micro-batch, T response tokens (padded), K top-k candidates.

Aggregation contract: `LossOutput.loss` is this micro-batch's *contribution* to the mini-batch mean, i.e. a sum
over this micro-batch divided by a mini-batch-wide normaliser (`global_tokens`, `global_seqs`,
`max_response_len`). Summed over micro-batches and data-parallel ranks it is exactly the mini-batch loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class TokenStats:
    """Per-token statistics from the common policy actor."""

    logprobs: Tensor  # [B, T] log pi(y_t), differentiable
    topk_logprobs: Tensor  # [B, T, K] log pi of current rank-1..K, differentiable
    topk_ids: Tensor  # [B, T, K] long
    entropy: Tensor  # [B, T] full-vocabulary entropy; carries grad for the entropy bonus, detach to log
    is_rank1: Tensor  # [B, T] bool: sampled token is the current rank-1
    ref_logprobs: Tensor | None = None  # [B, T] frozen reference policy, detached


@dataclass
class LossInput:
    stats: TokenStats
    old_logprobs: Tensor  # [B, T] proximal policy pi_old (recomputed, or current detached), detached
    advantages: Tensor  # [B] per-response advantage (from the advantage estimator)
    rewards: Tensor  # [B]
    correct: Tensor  # [B] bool
    mask: Tensor  # [B, T] float, 1 on valid response tokens
    behaviour_logprobs: Tensor | None = None  # [B, T] sampler (vLLM) log-probs, detached
    is_weight: Tensor | None = None  # [B, T] detached off-policy importance weight per token; None = 1
    # valid tokens in the WHOLE mini-batch (all micro-batches, all ranks); None = mask.sum()
    global_tokens: float | None = None
    global_seqs: float | None = None  # responses in the whole mini-batch (all ranks); None = B
    # generation budget L_max (generator.max_tokens), Dr.GRPO's B*L_max; None = T
    max_response_len: int | None = None


@dataclass
class LossOutput:
    """`loss`: this micro-batch's contribution (see the module docstring), as are `metrics["loss"]` and
    `metrics["pg_loss"]`; every other metric is a mean over this micro-batch's valid tokens."""

    loss: Tensor  # scalar
    metrics: dict[str, float] = field(default_factory=dict)
