"""Building blocks shared by every strategy: advantages, clipped surrogate, KL, entropy, aggregation, metrics.

In: tensors from a `LossInput` plus the strategy's per-token ratio/advantage/mask choices.
Out: a `LossOutput`. Pure tensor code: never touches a model, optimizer or config object.

Aggregation (`loss_agg`), for a per-token quantity x and mask m over B responses:
- token_mean: sum_{i,t} m_it x_it / max(sum_{i,t} m_it, 1)
- seq_sum (Dr.GRPO): sum_{i,t} m_it x_it / B — sum over tokens, mean over the B responses of the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algorithms.base import AlgorithmParams, LossInput, LossOutput
from rlvr.errors import RlvrUserError
from rlvr.metrics.exploration import exploration_metrics, masked_mean


def float_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float32


def group_advantages(rewards: Tensor, group_index: Tensor, norm_std: bool, eps: float) -> Tensor:
    """(r - mean_group) / (std_group + eps); std is the unbiased sample std (0 for a one-response group).
    norm_std=False gives Dr.GRPO's r - mean_group."""
    r = rewards.to(torch.float64)
    g = group_index.long()
    n_groups = int(g.max().item()) + 1 if g.numel() else 0
    count = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, g, torch.ones_like(r))
    mean = torch.zeros_like(count).index_add_(0, g, r) / count.clamp_min(1.0)
    centred = r - mean[g]
    if not norm_std:
        return centred.to(float_dtype(rewards))
    ss = torch.zeros_like(count).index_add_(0, g, centred**2)
    std = (ss / (count - 1).clamp_min(1.0)).sqrt()
    out = centred / (std[g] + eps)
    return out.to(float_dtype(rewards))


def aggregate(x: Tensor, mask: Tensor, loss_agg: str) -> Tensor:
    m = mask.to(x.dtype)
    if loss_agg == "token_mean":
        return (x * m).sum() / m.sum().clamp_min(1.0)
    if loss_agg == "seq_sum":
        return (x * m).sum() / max(x.shape[0], 1)
    raise ValueError(f"loss_agg must be 'token_mean' or 'seq_sum'; got {loss_agg!r}")


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
) -> LossOutput:
    """PPO clipped surrogate (+ k3 KL to the reference, - entropy bonus), aggregated by params.loss_agg.

    ratio defaults to exp(logp - old_logp); adv_tok to the per-response advantage broadcast over tokens;
    pg_mask (tokens that enter the policy-gradient term) to inp.mask. KL, entropy and metrics use inp.mask.
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
    pg_loss = aggregate(-torch.minimum(surr, surr_clip), pg_mask, params.loss_agg)
    loss = pg_loss

    metrics: dict[str, float] = {}
    if st.ref_logprobs is not None:
        kl = aggregate(k3(st.ref_logprobs.detach().to(logp.dtype) - logp), mask, params.loss_agg)
        metrics["kl"] = kl.item()
        if params.kl_coef > 0:
            loss = loss + params.kl_coef * kl
    elif params.kl_coef > 0:
        raise RlvrUserError(
            "algorithm.params.kl_coef > 0 needs a reference model (learner.reference_model=true)"
        )
    if params.entropy_coef > 0:
        loss = loss - params.entropy_coef * aggregate(st.entropy, mask, params.loss_agg)

    with torch.no_grad():
        metrics["loss"] = loss.item()
        metrics["pg_loss"] = pg_loss.item()
        metrics["clip_frac"] = masked_mean((surr_clip < surr).to(logp.dtype), pg_mask).item()
        metrics["approx_kl"] = masked_mean(k3(logp.detach() - old), mask).item()
        metrics.update(
            exploration_metrics(
                st.topk_logprobs, st.entropy, st.is_rank1, mask, params.metrics_top_k, high_entropy
            )
        )
    metrics.update(extra or {})
    return LossOutput(loss=loss, metrics=metrics)
