"""REINFORCE++ with baseline: the `reinforce_pp` advantage estimator and preset (+ ppo loss).

In: rewards [N] and group ids [N] for one step's batch. Out: c_i = r_i - mean_g (group-mean baseline),
then A_i = c_i / (std_batch(c) + eps), std the unbiased std over the N responses of the batch
(Hu et al., REINFORCE++, "baseline" variant). The centred c has batch mean 0, so this is also the whitening
verl applies; verl whitens over tokens (length-weighted), rlvr over responses (one advantage per response).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from rlvr.algorithms import ppo as _ppo  # noqa: F401  (registers the ppo loss the preset names)
from rlvr.algorithms.base import register_algorithm
from rlvr.algorithms.common import float_dtype, group_advantages
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import AdvantageParams, register_advantage


class ReinforcePPParams(AdvantageParams):
    eps: float = Field(1e-6, gt=0.0, description="added to the batch std")


@register_advantage("reinforce_pp", params=ReinforcePPParams)
def reinforce_pp_advantages(
    rewards: Tensor, correct: Tensor, group_index: Tensor, params: ReinforcePPParams
) -> Tensor:
    centred = group_advantages(rewards.to(torch.float64), group_index, norm_std=False, eps=0.0)
    std = centred.std() if centred.numel() > 1 else torch.zeros((), dtype=centred.dtype)
    return (centred / (std + params.eps)).to(float_dtype(rewards))


@register_algorithm("reinforce_pp")
class ReinforcePP(Composed):
    advantage_name = "reinforce_pp"
    loss_name = "ppo"
