"""CISPO (MiniMax-M1, arXiv 2506.13585): the `cispo` policy loss and preset (= grpo advantages + cispo).

In: a `LossInput`. Out: a `LossOutput`. Per token, with r = exp(logp - old_logp):
    l = -sg(clip(r, 1 - clip_eps, 1 + clip_eps_high)) A log pi(y_t)
The importance weight is clipped and detached, so no token's gradient is dropped (PPO's clip zeroes it);
aggregated by `loss_agg` (token_mean = the paper's 1 / sum_i |o_i|). The paper sets no lower bound
(clip_eps = 1.0 here: weight >= 0) and tunes only the upper one.
"""

from __future__ import annotations

import torch
from pydantic import Field

from rlvr.algorithms import grpo as _grpo  # noqa: F401  (registers the grpo estimator the preset names)
from rlvr.algorithms.aggregation import aggregate
from rlvr.algorithms.base import AlgorithmParams, register_algorithm
from rlvr.algorithms.common import finish_loss
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import register_policy_loss
from rlvr.loss_types import LossInput, LossOutput


class CISPOParams(AlgorithmParams):
    clip_eps: float = Field(
        1.0, ge=0.0, le=1.0, description="IS weight >= 1 - clip_eps; 1.0 = no lower bound"
    )
    clip_eps_high: float | None = Field(
        0.28, ge=0.0, le=10.0, description="IS weight <= 1 + clip_eps_high; None = clip_eps"
    )


@register_policy_loss("cispo", params=CISPOParams)
def cispo_loss(inp: LossInput, params: CISPOParams) -> LossOutput:
    logp = inp.stats.logprobs
    old = inp.old_logprobs.detach().to(logp.dtype)
    eps_hi = params.clip_eps if params.clip_eps_high is None else params.clip_eps_high
    r = torch.exp(logp.detach() - old)
    weight = torch.clamp(r, 1.0 - params.clip_eps, 1.0 + eps_hi)
    adv = inp.advantages.detach().to(logp.dtype)[:, None]
    pg_tok = -weight * adv * logp
    if inp.is_weight is not None:
        pg_tok = pg_tok * inp.is_weight.detach().to(logp.dtype)
    pg_loss = aggregate(pg_tok, inp, params.loss_agg)
    return finish_loss(inp, params, pg_loss, clipped=weight != r)


@register_algorithm("cispo")
class CISPO(Composed):
    advantage_name = "grpo"
    loss_name = "cispo"
