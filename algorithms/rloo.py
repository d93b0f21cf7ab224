"""RLOO: the `rloo` advantage estimator (leave-one-out baseline) and the `rloo` preset (+ ppo loss).

In: rewards [N] and group ids [N]. Out: A_i = r_i - mean_{j in g, j != i} r_j = n/(n-1) (r_i - mean_g)
for a group of n > 1 responses (Kool et al. 2019; Ahmadian et al. 2024). A one-response group has no
leave-one-out baseline, so its advantage is 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algorithms import ppo as _ppo  # noqa: F401  (registers the ppo loss the preset names)
from rlvr.algorithms.base import register_algorithm
from rlvr.algorithms.common import float_dtype, group_stats
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import AdvantageParams, register_advantage


@register_advantage("rloo", params=AdvantageParams)
def rloo_advantages(rewards: Tensor, correct: Tensor, group_index: Tensor, params: AdvantageParams) -> Tensor:
    r = rewards.to(torch.float64)
    count, total, _ = group_stats(rewards, group_index)
    others = (count - 1).clamp_min(1.0)
    adv = torch.where(count > 1, r - (total - r) / others, torch.zeros_like(r))
    return adv.to(float_dtype(rewards))


@register_algorithm("rloo")
class RLOO(Composed):
    advantage_name = "rloo"
    loss_name = "ppo"
