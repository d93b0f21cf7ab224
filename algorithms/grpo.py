"""GRPO: the `grpo` advantage estimator (group mean/std) and the `grpo` preset (= grpo advantages + ppo loss).

In: rewards [N] and group ids [N]. Out: A_i = (r_i - mean_g) / (std_g + eps), std the unbiased group std
(0 for a one-response group); `norm_std=false` gives Dr.GRPO's r_i - mean_g (pair it with loss_agg=seq_sum).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from rlvr.algorithms import ppo as _ppo  # noqa: F401  (registers the ppo loss the preset names)
from rlvr.algorithms.base import register_algorithm
from rlvr.algorithms.common import group_advantages
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import AdvantageParams, register_advantage


class GroupNormParams(AdvantageParams):
    norm_std: bool = Field(True, description="divide by the group std; false = Dr.GRPO")
    eps: float = Field(1e-6, gt=0.0, description="added to the group std")


@register_advantage("grpo", params=GroupNormParams)
def grpo_advantages(rewards: Tensor, correct: Tensor, group_index: Tensor, params: GroupNormParams) -> Tensor:
    return group_advantages(rewards, group_index, params.norm_std, params.eps)


@register_algorithm("grpo")
class GRPO(Composed):
    advantage_name = "grpo"
    loss_name = "ppo"


GRPOParams = GRPO.Params
