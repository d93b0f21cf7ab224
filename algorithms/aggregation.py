"""`loss_agg`: how a per-token quantity becomes this micro-batch's contribution to the mini-batch loss.

In: x [B, T] (per-token loss term), the `LossInput` (mask and the mini-batch-wide normalisers), and
optionally a [B, T] `weight` that replaces the mask in the numerator (tokens that enter this term).
Out: a scalar. Summed over all micro-batches and data-parallel ranks of a mini-batch it equals the
mini-batch aggregate, because every normaliser is mini-batch-wide (the learner fills them). With the
optional fields None the micro-batch's own counts are used, so a direct call aggregates over itself.

With mask m, N_tok = global_tokens, N_seq = global_seqs, L = max_response_len, len_i = sum_t m_it:
- token_mean:          sum_{i,t} m_it x_it / N_tok
- seq_mean_token_mean: sum_i (sum_t m_it x_it / len_i) / N_seq   (per-response mean, then mean over responses)
- seq_sum (Dr.GRPO):   sum_{i,t} m_it x_it / (N_seq * L)         (a constant normaliser: no length bias)
"""

from __future__ import annotations

from torch import Tensor

from rlvr.loss_types import LossInput

LOSS_AGGS = ("token_mean", "seq_mean_token_mean", "seq_sum")


def aggregate(x: Tensor, inp: LossInput, loss_agg: str, weight: Tensor | None = None) -> Tensor:
    mask = inp.mask.to(x.dtype)
    num = x * (mask if weight is None else weight.to(x.dtype))
    n_seq = float(inp.global_seqs) if inp.global_seqs is not None else float(x.shape[0])
    if loss_agg == "token_mean":
        if inp.global_tokens is not None:
            return num.sum() / max(float(inp.global_tokens), 1.0)
        return num.sum() / mask.sum().clamp_min(1.0)
    if loss_agg == "seq_mean_token_mean":
        per_seq = num.sum(-1) / mask.sum(-1).clamp_min(1.0)
        return per_seq.sum() / max(n_seq, 1.0)
    if loss_agg == "seq_sum":
        max_len = inp.max_response_len if inp.max_response_len is not None else x.shape[-1]
        return num.sum() / max(n_seq * float(max_len), 1.0)
    raise ValueError(f"loss_agg must be one of {', '.join(LOSS_AGGS)}; got {loss_agg!r}")
