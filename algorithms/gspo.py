"""GSPO (Zheng et al. 2025, arXiv 2507.18071): the `gspo` policy loss and preset (= grpo advantages + gspo).

In: a `LossInput`. Out: a `LossOutput`. The importance ratio is per sequence,
    s_i = exp( mean_t (logp_it - old_it) )  over response i's valid tokens,
and the clipped surrogate -min(s_i A_i, clip(s_i, 1 - clip_eps, 1 + clip_eps_high) A_i) is applied per
sequence. It is written in the paper's GSPO-token form s_it = sg(s_i) pi(y_t) / sg(pi(y_t)): every token of
response i has the value s_i (so all are clipped together) and gradient s_i grad log pi(y_t), which under
seq_mean_token_mean (the default here, the paper's 1/G sum_i) equals the sequence-level gradient.
Defaults follow the paper: clip range 3e-4 / 4e-4. No dual clip.
"""

from __future__ import annotations

import torch
from pydantic import Field

from rlvr.algorithms import grpo as _grpo  # noqa: F401  (registers the grpo estimator the preset names)
from rlvr.algorithms.base import AlgorithmParams, register_algorithm
from rlvr.algorithms.common import ppo_loss
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import register_policy_loss
from rlvr.loss_types import LossInput, LossOutput

# exp() of the mean log-ratio overflows only far outside the clip range; verl caps it the same way.
_MAX_LOG_RATIO = 10.0


class GSPOParams(AlgorithmParams):
    clip_eps: float = Field(3e-4, ge=0.0, le=1.0, description="lower clip range of the sequence ratio")
    clip_eps_high: float | None = Field(
        4e-4, ge=0.0, le=10.0, description="upper clip range of the sequence ratio; None = clip_eps"
    )
    loss_agg: str = Field(
        "seq_mean_token_mean",
        pattern="^(token_mean|seq_mean_token_mean|seq_sum)$",
        description="seq_mean_token_mean = the paper's mean over sequences",
    )


def sequence_log_ratio(logp: torch.Tensor, old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B] mean over valid tokens of logp - old (0 for a response with no valid token)."""
    return ((logp - old) * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


@register_policy_loss("gspo", params=GSPOParams)
def gspo_loss(inp: LossInput, params: GSPOParams) -> LossOutput:
    logp = inp.stats.logprobs
    mask = inp.mask.to(logp.dtype)
    old = inp.old_logprobs.detach().to(logp.dtype)
    log_s = sequence_log_ratio(logp.detach(), old, mask).clamp(max=_MAX_LOG_RATIO)
    ratio = torch.exp(log_s[:, None] + logp - logp.detach())
    extra = {"gspo/seq_ratio_mean": torch.exp(log_s).mean().item()}
    return ppo_loss(inp, params, ratio=ratio, extra=extra)


@register_algorithm("gspo")
class GSPO(Composed):
    advantage_name = "grpo"
    loss_name = "gspo"
