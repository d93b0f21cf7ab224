"""Off-policy correction between the policy that sampled (behaviour) and the one the learner clips against.

In: per-token log-probs [B, T] of the proximal policy pi_old (recomputed by the learner, or its current
weights detached) and of the behaviour policy pi_b (what the sampler, e.g. vLLM, reported), a [B, T]
validity mask, the mode and the cap. Out: a detached per-token weight for the policy-gradient term
(`LossInput.is_weight`, None for no correction) and the mismatch metrics logged every step.
It never touches a model; the strategies only multiply by the weight.

With w_t = pi_old(y_t) / pi_b(y_t):
- none: no weight. Batches sampled by older weights (async) or by a slightly different engine are
  treated as on-policy.
- tis (truncated importance sampling): min(w_t, cap).
- decoupled (AReaL's decoupled PPO objective): the surrogate clips pi / pi_old (the proximal policy) and each
  token is weighted by w_t; tokens with w_t > cap are masked out (weight 0) instead of truncated.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("none", "tis", "decoupled")


def importance_weights(
    old_logprobs: Tensor, behaviour_logprobs: Tensor, mask: Tensor, mode: str, cap: float
) -> tuple[Tensor | None, dict[str, float]]:
    if mode not in MODES:
        raise ValueError(f"learner.off_policy must be one of {', '.join(MODES)}; got {mode!r}")
    with torch.no_grad():
        m = mask.to(old_logprobs.dtype)
        n = m.sum().clamp_min(1.0)
        diff = (old_logprobs - behaviour_logprobs.to(old_logprobs.dtype)) * m
        w = torch.exp(diff) * m  # exp(0) = 1 off the mask, zeroed by m
        metrics = {
            "offpolicy/abs_logprob_diff": float(diff.abs().sum() / n),
            "offpolicy/is_weight_mean": float(w.sum() / n),
            "offpolicy/is_weight_max": float(w.max()) if w.numel() else 0.0,
            "offpolicy/above_cap_frac": float(((w > cap) & (m > 0)).to(m.dtype).sum() / n),
        }
        if mode == "none":
            return None, metrics
        if mode == "tis":
            return w.clamp(max=cap), metrics
        return torch.where(w > cap, torch.zeros_like(w), w), metrics
