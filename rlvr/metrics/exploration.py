"""Exploration metrics over per-token policy statistics (shared by the loss strategies and the eval path).

In: plain tensors from `TokenStats` ([B, T] / [B, T, K]) and a [B, T] float validity mask.
Out: float metrics and the per-response high-entropy token mask. Never touches a model or needs grads.

Definitions (all averages are over valid tokens, i.e. mask == 1):
- `lambda/rank{i}`: mean probability pi(c_i | s_t) of the current rank-i candidate c_i (the top-K
  concentration Lambda^(i) of SimKO); i = 1..K.
- `entropy`: mean full-vocabulary entropy H_t.
- `high_entropy_frac`: fraction of tokens with w_t = 1, see `high_entropy_mask`.
- `rank1_frac`: fraction of tokens whose sampled token is the policy's current rank-1 candidate.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x over mask == 1 entries (0 when the mask is empty)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def high_entropy_mask(entropy: Tensor, mask: Tensor, tau: float, mode: str = "quantile") -> Tensor:
    """w [B, T] float in {0, 1}: 1 where H_t > threshold (strict), 0 on invalid tokens.

    quantile: per response, threshold = tau-quantile (linear interpolation, as numpy) of H over that
    response's valid tokens. absolute: threshold = tau.
    """
    ent = entropy.detach()
    valid = mask > 0
    if mode == "absolute":
        thr = torch.full_like(ent[:, :1], float(tau))
    elif mode == "quantile":
        # nanquantile ignores the invalid tokens; an all-invalid row yields NaN and compares False.
        thr = torch.nanquantile(ent.masked_fill(~valid, float("nan")), float(tau), dim=-1, keepdim=True)
    else:
        raise ValueError(f"tau_mode must be 'quantile' or 'absolute'; got {mode!r}")
    return ((ent > thr) & valid).to(ent.dtype)


def exploration_metrics(
    topk_logprobs: Tensor,
    entropy: Tensor,
    is_rank1: Tensor,
    mask: Tensor,
    top_k: int,
    high_entropy: Tensor | None = None,
    tau: float = 0.8,
) -> dict[str, float]:
    """The metrics above as floats. `high_entropy` defaults to the tau=0.8 per-response quantile mask."""
    with torch.no_grad():
        ent = entropy.detach()
        w = high_entropy if high_entropy is not None else high_entropy_mask(ent, mask, tau)
        out = {
            "entropy": masked_mean(ent, mask).item(),
            "high_entropy_frac": masked_mean(w.to(ent.dtype), mask).item(),
            "rank1_frac": masked_mean(is_rank1.to(ent.dtype), mask).item(),
        }
        probs = topk_logprobs.detach().exp()
        for i in range(min(top_k, probs.shape[-1])):
            out[f"lambda/rank{i + 1}"] = masked_mean(probs[..., i], mask).item()
    return out
