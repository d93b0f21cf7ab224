"""SimKO (arXiv 2510.14807): the `simko` policy loss and the `simko` preset (= grpo advantages + simko loss).

In: a `LossInput` whose stats carry >= top_k candidates. Out: a `LossOutput`.
Only on high-entropy tokens (w_t = 1, see rlvr.metrics.exploration):
- A > 0: ratio = (1 - a w) r + (a w / K) sum_k sg(r / g_k) g_k with r = pi/pi_old, g_k = exp(lp_k - sg(lp_k)).
  Its value is r; its gradient spreads a fraction a of the update over the current top-K candidates.
- A < 0 and the sampled token is rank-1: advantage scaled by lam.
PPO clipping applies to the mixed ratio (no dual clip, as the official code). tau = 1.0 in quantile mode
selects no token (GRPO). Aggregated by `loss_agg` like every loss.
"""

from __future__ import annotations

import warnings

import torch
from pydantic import Field
from torch import Tensor

from rlvr.algorithms import grpo as _grpo  # noqa: F401  (registers the grpo estimator the preset names)
from rlvr.algorithms.base import AlgorithmParams, register_algorithm
from rlvr.algorithms.common import ppo_loss
from rlvr.algorithms.composed import Composed
from rlvr.algorithms.registries import register_policy_loss
from rlvr.loss_types import LossInput, LossOutput
from rlvr.metrics.exploration import high_entropy_mask, masked_mean

_warned_tau1 = False


class SimKOLossParams(AlgorithmParams):
    top_k: int = Field(3, ge=1, le=64, description="K candidates that share the positive update")
    alpha: float = Field(0.01, ge=0.0, le=1.0, description="share of the update spread over the top-K")
    lam: float = Field(
        1.1, ge=0.0, description="advantage multiplier on rank-1 tokens of incorrect responses"
    )
    tau: float = Field(0.8, ge=0.0, description="entropy quantile (quantile mode) or threshold (absolute)")
    tau_mode: str = Field("quantile", pattern="^(quantile|absolute)$")


def simko_ratio(r: Tensor, topk_logprobs: Tensor, smooth: Tensor, alpha: float) -> Tensor:
    """Mixed ratio; `smooth` [B, T] is 1 where top-K smoothing applies (A > 0 and w = 1)."""
    k = topk_logprobs.shape[-1]
    gamma = torch.exp(topk_logprobs - topk_logprobs.detach())
    spread = ((r.detach()[..., None] / gamma.detach()) * gamma).sum(-1)
    aw = alpha * smooth
    return (1.0 - aw) * r + (aw / k) * spread


def _simko_top_k(params: SimKOLossParams) -> int:
    return max(params.metrics_top_k, params.top_k)


@register_policy_loss("simko", params=SimKOLossParams, top_k=_simko_top_k)
def simko_loss(inp: LossInput, params: SimKOLossParams) -> LossOutput:
    global _warned_tau1
    if params.tau_mode == "quantile" and params.tau >= 1.0 and not _warned_tau1:
        warnings.warn("SimKO with tau=1.0 (quantile) selects no token: it reduces to GRPO", stacklevel=2)
        _warned_tau1 = True
    st = inp.stats
    if st.topk_logprobs.shape[-1] < params.top_k:
        raise ValueError(
            f"SimKO needs {params.top_k} top-k candidates; stats carry {st.topk_logprobs.shape[-1]}"
        )
    logp = st.logprobs
    mask = inp.mask.to(logp.dtype)
    w = high_entropy_mask(st.entropy, mask, params.tau, params.tau_mode)
    adv = inp.advantages.detach().to(logp.dtype)[:, None].expand_as(logp)
    smooth = (adv > 0).to(logp.dtype) * w
    r = torch.exp(logp - inp.old_logprobs.detach().to(logp.dtype))
    ratio = simko_ratio(r, st.topk_logprobs[..., : params.top_k], smooth, params.alpha)
    penal = (adv < 0) & st.is_rank1.bool() & (w > 0)
    adv_tok = torch.where(penal, adv * params.lam, adv)
    extra = {
        "simko/smooth_frac": masked_mean(smooth, mask).item(),
        "simko/penalty_frac": masked_mean(penal.to(logp.dtype), mask).item(),
    }
    return ppo_loss(inp, params, ratio=ratio, adv_tok=adv_tok, high_entropy=w, extra=extra)


@register_algorithm("simko")
class SimKO(Composed):
    advantage_name = "grpo"
    loss_name = "simko"


SimKOParams = SimKO.Params
