"""PSR: positive-sample reinforcement — only correct responses train, with advantage +1.

In: rewards/correct flags; a `LossInput`. Out: advantages [N] (1 correct, 0 otherwise); a `LossOutput`.
The policy-gradient term is averaged over the correct responses' tokens only (incorrect ones are masked
out, not merely zero-weighted); KL/entropy/metrics still cover every valid token.
"""

from __future__ import annotations

from torch import Tensor

from rlvr.algorithms.base import Algorithm, AlgorithmParams, LossInput, LossOutput, register_algorithm
from rlvr.algorithms.common import float_dtype as _float
from rlvr.algorithms.common import ppo_loss


@register_algorithm("psr")
class PSR(Algorithm):
    Params = AlgorithmParams

    def advantages(
        self, rewards: Tensor, correct: Tensor, group_index: Tensor, params: AlgorithmParams
    ) -> Tensor:
        return (correct.bool()).to(_float(rewards))

    def loss(self, inp: LossInput, params: AlgorithmParams) -> LossOutput:
        # inp.advantages come from `advantages`; the selection mask keeps the other responses out of the mean.
        return ppo_loss(inp, params, pg_mask=inp.mask * (inp.correct.bool())[:, None])
