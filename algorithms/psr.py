"""PSR (positive-sample reinforcement, Zhu et al. 2025 "The Surprising Effectiveness of Negative
Reinforcement"): the `psr` advantage estimator and the `psr` preset (+ ppo loss).

In: correct flags [N]. Out: A_i = +1 for a correct response, 0 otherwise. The incorrect responses stay in
the batch with advantage 0: the loss normalises by ALL valid tokens of the mini-batch, as the paper's
objective, so loss(psr) + loss(nsr) = the +/-1 REINFORCE loss on the same batch.
"""

from __future__ import annotations

from torch import Tensor

from rlvr.algorithms import ppo as _ppo  # noqa: F401  (registers the ppo loss the preset names)
from rlvr.algorithms.base import register_algorithm
from rlvr.algorithms.common import float_dtype
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import AdvantageParams, register_advantage


@register_advantage("psr", params=AdvantageParams)
def psr_advantages(rewards: Tensor, correct: Tensor, group_index: Tensor, params: AdvantageParams) -> Tensor:
    return correct.bool().to(float_dtype(rewards))


@register_algorithm("psr")
class PSR(Composed):
    advantage_name = "psr"
    loss_name = "ppo"
