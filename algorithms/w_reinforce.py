"""W-REINFORCE (Zhu et al. 2025): the `w_reinforce` advantage estimator and preset (+ ppo loss).

In: correct flags [N]. Out: A_i = +w for a correct response, -1 for an incorrect one (w = 0.1 by default:
mostly negative-sample reinforcement, a little positive).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from rlvr.algorithms import ppo as _ppo  # noqa: F401  (registers the ppo loss the preset names)
from rlvr.algorithms.base import register_algorithm
from rlvr.algorithms.common import float_dtype
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import AdvantageParams, register_advantage


class WReinforceParams(AdvantageParams):
    w: float = Field(0.1, ge=0.0, description="weight of the positive (correct) samples")


def signed_weights(correct: Tensor, w: float, dtype: torch.dtype) -> Tensor:
    c = correct.bool()
    return torch.where(
        c,
        torch.full(c.shape, w, dtype=dtype, device=c.device),
        -torch.ones(c.shape, dtype=dtype, device=c.device),
    )


@register_advantage("w_reinforce", params=WReinforceParams)
def w_reinforce_advantages(
    rewards: Tensor, correct: Tensor, group_index: Tensor, params: WReinforceParams
) -> Tensor:
    return signed_weights(correct, params.w, float_dtype(rewards))


@register_algorithm("w_reinforce")
class WReinforce(Composed):
    advantage_name = "w_reinforce"
    loss_name = "ppo"
