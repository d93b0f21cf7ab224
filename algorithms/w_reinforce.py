"""W-REINFORCE: correct responses get +w, incorrect -1, every valid token trains.

In: rewards/correct flags; a `LossInput`. Out: advantages [N]; a `LossOutput`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from rlvr.algorithms.base import Algorithm, AlgorithmParams, LossInput, LossOutput, register_algorithm
from rlvr.algorithms.common import float_dtype, ppo_loss


class WReinforceParams(AlgorithmParams):
    w: float = Field(0.1, ge=0.0, description="weight of the positive (correct) samples")


def signed_weights(correct: Tensor, w: float, dtype: torch.dtype) -> Tensor:
    c = correct.bool()
    return torch.where(
        c,
        torch.full(c.shape, w, dtype=dtype, device=c.device),
        -torch.ones(c.shape, dtype=dtype, device=c.device),
    )


@register_algorithm("w_reinforce")
class WReinforce(Algorithm):
    Params = WReinforceParams

    def advantages(
        self, rewards: Tensor, correct: Tensor, group_index: Tensor, params: WReinforceParams
    ) -> Tensor:
        return signed_weights(correct, params.w, float_dtype(rewards))

    def loss(self, inp: LossInput, params: WReinforceParams) -> LossOutput:
        return ppo_loss(inp, params)  # inp.advantages come from `advantages` (+w / -1)
