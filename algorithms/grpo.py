"""GRPO: group-normalised advantage, PPO clipped surrogate (Dr.GRPO with norm_std=false, loss_agg=seq_sum).

In: rewards/groups for advantages; a `LossInput` for the loss. Out: advantages [N]; a `LossOutput`.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from rlvr.algorithms.base import Algorithm, AlgorithmParams, LossInput, LossOutput, register_algorithm
from rlvr.algorithms.common import group_advantages, ppo_loss


class GRPOParams(AlgorithmParams):
    norm_std: bool = Field(True, description="divide by the group std; false = Dr.GRPO")
    eps: float = Field(1e-6, gt=0.0)


@register_algorithm("grpo")
class GRPO(Algorithm):
    Params = GRPOParams

    def advantages(self, rewards: Tensor, correct: Tensor, group_index: Tensor, params: GRPOParams) -> Tensor:
        return group_advantages(rewards, group_index, params.norm_std, params.eps)

    def loss(self, inp: LossInput, params: GRPOParams) -> LossOutput:
        return ppo_loss(inp, params)
