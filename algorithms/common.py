"""Building blocks shared by the estimators and losses: group statistics, the clipped surrogate with its
KL and entropy terms, and the metrics every loss reports.

In: tensors from a `LossInput` plus a loss's per-token ratio/advantage choices.
Out: a `LossOutput`. Pure tensor code: never touches a model, optimizer or config object.
Aggregation is `rlvr.algorithms.aggregation.aggregate` (mini-batch-wide normalisers).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algorithms.aggregation import aggregate
from rlvr.algorithms.base import AlgorithmParams
from rlvr.errors import RlvrUserError
from rlvr.loss_types import LossInput, LossOutput
from rlvr.metrics.exploration import exploration_metrics, masked_mean


def float_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float32


def group_stats(rewards: Tensor, group_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per response, in float64: its group's size, sum of rewards and mean (index_add over group ids)."""
    r = rewards.to(torch.float64)
    g = group_index.long()
    n_groups = int(g.max().item()) + 1 if g.numel() else 0
    count = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, g, torch.ones_like(r))
    total = torch.zeros_like(count).index_add_(0, g, r)
    return count[g], total[g], total[g] / count[g].clamp_min(1.0)


def group_advantages(rewards: Tensor, group_index: Tensor, norm_std: bool, eps: float) -> Tensor:
    """(r - mean_group) / (std_group + eps); std is the unbiased sample std (0 for a one-response group).
    norm_std=False gives Dr.GRPO's r - mean_group."""
    r = rewards.to(torch.float64)
    g = group_index.long()
    count, _, mean = group_stats(rewards, group_index)
    centred = r - mean
    if not norm_std:
        return centred.to(float_dtype(rewards))
    n_groups = int(g.max().item()) + 1 if g.numel() else 0
    ss = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, g, centred**2)[g]
    std = (ss / (count - 1).clamp_min(1.0)).sqrt()
    return (centred / (std + eps)).to(float_dtype(rewards))


def k3(log_ratio: Tensor) -> Tensor:
    """Schulman's k3 estimator of KL(q||p) from samples of q, with log_ratio = log p - log q (>= 0)."""
    return torch.exp(log_ratio) - 1.0 - log_ratio


def ppo_loss(
    inp: LossInput,
    params: AlgorithmParams,
    *,
    ratio: Tensor | None = None,
    adv_tok: Tensor | None = None,
    pg_mask: Tensor | None = None,
    high_entropy: Tensor | None = None,
    extra: dict[str, float] | None = None,
    clip_ratio_c: float | None = None,
) -> LossOutput:
    """PPO clipped surrogate (+ k3 KL to the reference, - entropy bonus), aggregated by params.loss_agg.

    ratio defaults to exp(logp - old_logp); adv_tok to the per-response advantage broadcast over tokens;
    pg_mask (tokens that enter the policy-gradient term) to inp.mask — the normaliser stays the mini-batch's
    (see aggregation). clip_ratio_c enables verl's dual clip for A < 0. inp.is_weight multiplies the
    policy-gradient term per token (never KL/entropy). KL, entropy and metrics use inp.mask.
    """
    st = inp.stats
    logp = st.logprobs
    mask = inp.mask.to(logp.dtype)
    pg_mask = mask if pg_mask is None else pg_mask.to(logp.dtype)
    old = inp.old_logprobs.detach().to(logp.dtype)
    if ratio is None:
        ratio = torch.exp(logp - old)
    if adv_tok is None:
        adv_tok = inp.advantages.detach().to(logp.dtype)[:, None].expand_as(logp)
    eps_lo = params.clip_eps
    eps_hi = params.clip_eps if params.clip_eps_high is None else params.clip_eps_high
    surr = ratio * adv_tok
    surr_clip = torch.clamp(ratio, 1.0 - eps_lo, 1.0 + eps_hi) * adv_tok
    pg_tok = -torch.minimum(surr, surr_clip)
    dual = None
    if clip_ratio_c is not None:
        # Dual clip (Ye et al. 2020, as verl): for A < 0, -r A grows without bound in r; cap it at -c A.
        dual = (adv_tok < 0) & (pg_tok > -clip_ratio_c * adv_tok)
        pg_tok = torch.where(dual, -clip_ratio_c * adv_tok, pg_tok)
    if inp.is_weight is not None:
        pg_tok = pg_tok * inp.is_weight.detach().to(logp.dtype)
    pg_loss = aggregate(pg_tok, inp, params.loss_agg, weight=pg_mask)
    extra = dict(extra or {})
    if dual is not None:
        extra["dual_clip_frac"] = masked_mean(dual.to(logp.dtype), pg_mask).item()
    return finish_loss(
        inp,
        params,
        pg_loss,
        clipped=surr_clip < surr,
        pg_mask=pg_mask,
        high_entropy=high_entropy,
        extra=extra,
    )


def finish_loss(
    inp: LossInput,
    params: AlgorithmParams,
    pg_loss: Tensor,
    *,
    clipped: Tensor,
    pg_mask: Tensor | None = None,
    high_entropy: Tensor | None = None,
    extra: dict[str, float] | None = None,
) -> LossOutput:
    """pg_loss (already aggregated) + kl_coef * agg(k3 to the reference) - entropy_coef * agg(H), and the
    metrics every loss reports; `clipped` [B, T] bool marks tokens whose update the loss clipped."""
    st = inp.stats
    logp = st.logprobs
    mask = inp.mask.to(logp.dtype)
    pg_mask = mask if pg_mask is None else pg_mask.to(logp.dtype)
    loss = pg_loss
    metrics: dict[str, float] = {}
    if st.ref_logprobs is not None:
        k3_tok = k3(st.ref_logprobs.detach().to(logp.dtype) - logp)
        metrics["kl"] = masked_mean(k3_tok.detach(), mask).item()
        if params.kl_coef > 0:
            loss = loss + params.kl_coef * aggregate(k3_tok, inp, params.loss_agg)
    elif params.kl_coef > 0:
        raise RlvrUserError(
            "algorithm.params.kl_coef > 0 needs a reference model (learner.reference_model=true)"
        )
    if params.entropy_coef > 0:
        loss = loss - params.entropy_coef * aggregate(st.entropy, inp, params.loss_agg)

    with torch.no_grad():
        old = inp.old_logprobs.detach().to(logp.dtype)
        metrics["loss"] = loss.item()
        metrics["pg_loss"] = pg_loss.item()
        metrics["clip_frac"] = masked_mean(clipped.to(logp.dtype), pg_mask).item()
        metrics["approx_kl"] = masked_mean(k3(logp.detach() - old), mask).item()
        metrics.update(
            exploration_metrics(
                st.topk_logprobs, st.entropy, st.is_rank1, mask, params.metrics_top_k, high_entropy
            )
        )
    metrics.update(extra or {})
    return LossOutput(loss=loss, metrics=metrics)
