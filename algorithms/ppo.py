"""The `ppo` policy loss: clipped surrogate with clip-higher and dual clip, k3 KL to the reference, entropy bonus.

In: a `LossInput`. Out: a `LossOutput`. Per token, with r = exp(logp - old_logp) and the response's A:
    l = -min(r A, clip(r, 1 - clip_eps, 1 + clip_eps_high) A);  for A < 0: l = min(l, -clip_ratio_c A)
(dual clip, as verl), times `is_weight` when the learner gives one, aggregated by `loss_agg`.
"""

from __future__ import annotations

from pydantic import Field

from rlvr.algorithms.base import AlgorithmParams
from rlvr.algorithms.common import ppo_loss
from rlvr.algorithms.registries import register_policy_loss
from rlvr.loss_types import LossInput, LossOutput


class PPOParams(AlgorithmParams):
    clip_ratio_c: float | None = Field(
        3.0, gt=1.0, description="dual clip: caps -r A at -c A for A < 0 (verl's clip_ratio_c); null = off"
    )


@register_policy_loss("ppo", params=PPOParams)
def ppo(inp: LossInput, params: PPOParams) -> LossOutput:
    return ppo_loss(inp, params, clip_ratio_c=params.clip_ratio_c)
