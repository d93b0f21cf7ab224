"""The common policy actor: per-token statistics of a causal LM without building [N, V] logits.

In: a HF causal LM (or its last hidden states and LM-head weight), token ids and masks.
Out: `TokenStats` — sampled-token log-prob, top-K log-probs/ids, full-vocabulary entropy, rank-1 flag.
Must never: materialise more than `chunk_size x V` logits at once, or know which loss strategy runs.

The LM head is fused into a custom autograd Function: forward walks the rows in chunks and keeps only
the per-row log-sum-exp; backward recomputes each chunk's logits. For one row with logits z, p = softmax(z),
upstream grads scattered into g (sampled token and top-K ids) and entropy grad g_H:
    dL/dz = g - (sum g) p - g_H p (log p + H)
With a sampling temperature T the statistics are those of softmax(z / T), as the sampler drew them; the
chain rule adds a 1/T on the way back to hidden, weight and bias.

`policy_token_stats` runs the fused call as the LM-head module's forward (see `_as_head_forward`): ZeRO-3's
module hooks then gather the head for forward and again for backward, exactly as for any layer.

Imports stay light (torch only at module level) so `benchmarks/gpu_check.py` can load this file alone.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from rlvr.loss_types import TokenStats


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # bf16/fp16 logits are upcast: log-softmax over 150k entries needs fp32 accumulation.
    return torch.promote_types(dtype, torch.float32)


def _chunk_logits(
    h: Tensor, weight: Tensor, bias: Tensor | None, dtype: torch.dtype, temperature: float
) -> Tensor:
    z = h @ weight.t()
    if bias is not None:
        z = z + bias
    z = z.to(dtype)
    # Divide in the compute dtype (fp32 for bf16 inputs), the same way in forward and backward.
    return z if temperature == 1.0 else z.div_(temperature)


class _FusedHeadStats(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        k: int,
        chunk_size: int,
        temperature: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        n = hidden.shape[0]
        dt = _compute_dtype(hidden.dtype)
        dev = hidden.device
        logp = torch.empty(n, dtype=dt, device=dev)
        topk_lp = torch.empty(n, k, dtype=dt, device=dev)
        topk_ids = torch.empty(n, k, dtype=torch.long, device=dev)
        entropy = torch.empty(n, dtype=dt, device=dev)
        is_rank1 = torch.empty(n, dtype=torch.bool, device=dev)
        lse = torch.empty(n, dtype=dt, device=dev)
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            z = _chunk_logits(hidden[s:e], weight, bias, dt, temperature)
            c_lse = torch.logsumexp(z, dim=-1)
            z_t = z.gather(1, targets[s:e, None]).squeeze(1)
            tv, ti = z.topk(k, dim=-1)
            lse[s:e] = c_lse
            logp[s:e] = z_t - c_lse
            topk_lp[s:e] = tv - c_lse[:, None]
            topk_ids[s:e] = ti
            # Compare values, not ids: a tie with the top logit still counts as rank-1.
            is_rank1[s:e] = z_t >= tv[:, 0]
            # In place: at most two [chunk, V] buffers live at once.
            p = torch.exp(z.sub_(c_lse[:, None]))
            entropy[s:e] = -p.mul_(z).sum(-1)
            del z, p
        ctx.save_for_backward(hidden, weight, bias, targets, topk_ids, lse, entropy)
        ctx.chunk_size, ctx.temperature = chunk_size, temperature
        ctx.mark_non_differentiable(topk_ids, is_rank1)
        ctx.set_materialize_grads(False)
        return logp, topk_lp, topk_ids, entropy, is_rank1

    @staticmethod
    def backward(
        ctx: Any, g_logp: Tensor | None, g_topk: Tensor | None, _gi: Any, g_ent: Tensor | None, _gr: Any
    ):  # type: ignore[override]
        hidden, weight, bias, targets, topk_ids, lse, entropy = ctx.saved_tensors
        n, chunk, temp = hidden.shape[0], ctx.chunk_size, ctx.temperature
        dt = lse.dtype
        need_h, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=dt, device=weight.device) if need_w else None
        grad_b = (
            torch.zeros(bias.shape, dtype=dt, device=bias.device) if (need_b and bias is not None) else None
        )
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            logp_all = _chunk_logits(hidden[s:e], weight, bias, dt, temp).sub_(lse[s:e, None])
            p = torch.exp(logp_all)
            # g scatters the upstream grads; sum(g) per row needs no [chunk, V] buffer.
            g_sum = torch.zeros(e - s, dtype=dt, device=p.device)
            if g_logp is not None:
                g_sum += g_logp[s:e].to(dt)
            if g_topk is not None:
                g_sum += g_topk[s:e].to(dt).sum(-1)
            if g_ent is not None:  # dH/dz = -p (log p + H)
                ent_term = logp_all.add_(entropy[s:e, None]).mul_(p).mul_(-g_ent[s:e, None].to(dt))
            gz = p.mul_(-g_sum[:, None])  # reuses p's buffer
            if g_ent is not None:
                gz.add_(ent_term)
            del logp_all
            if g_logp is not None:
                gz.scatter_add_(1, targets[s:e, None], g_logp[s:e, None].to(dt))
            if g_topk is not None:
                gz.scatter_add_(1, topk_ids[s:e], g_topk[s:e].to(dt))
            if temp != 1.0:  # d(z/T)/dz
                gz.div_(temp)
            gz_c = gz.to(weight.dtype)
            if grad_h is not None:
                grad_h[s:e] = (gz_c @ weight).to(hidden.dtype)
            if grad_w is not None:
                grad_w.addmm_(gz.t(), hidden[s:e].to(dt))
            if grad_b is not None:
                grad_b += gz.sum(0)
            del gz, gz_c, p
        gw = grad_w.to(weight.dtype) if grad_w is not None else None
        gb = grad_b.to(bias.dtype) if grad_b is not None else None
        return grad_h, gw, gb, None, None, None, None


def _check(
    hidden: Tensor, weight: Tensor, targets: Tensor, k: int, chunk_size: int, temperature: float
) -> None:
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"hidden must be [N, H] and targets [N]; got {tuple(hidden.shape)}, {tuple(targets.shape)}"
        )
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[1]:
        # A ZeRO-3 parameter outside its module's forward keeps only an empty placeholder (shape (0,)).
        hint = (
            ": it is a ZeRO-3 partitioned parameter, gather it first (policy_token_stats does)"
            if hasattr(weight, "ds_id")
            else ""
        )
        raise ValueError(f"lm_head_weight must be [V, {hidden.shape[1]}]; got {tuple(weight.shape)}{hint}")
    if not 1 <= k <= weight.shape[0]:
        raise ValueError(f"k must be in [1, vocab={weight.shape[0]}]; got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature}")


def fused_token_stats(
    hidden: Tensor,
    lm_head_weight: Tensor,
    targets: Tensor,
    k: int,
    chunk_size: int = 1024,
    lm_head_bias: Tensor | None = None,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """hidden [N, H] (rows that predict targets [N]) -> (logprobs [N], topk_logprobs [N, k], topk_ids [N, k],
    entropy [N], is_rank1 [N] bool), all of softmax(logits / temperature). Peak extra memory is
    O(chunk_size * V).

    logprobs and topk_logprobs are differentiable w.r.t. hidden, weight and bias. The entropy carries a
    gradient too (only the entropy bonus uses it; callers that log it should `.detach()`).
    Outputs are float32 for bf16/fp16 inputs, else the input dtype. The weight must be whole (not a
    ZeRO-3 partition) here and in backward; `policy_token_stats` takes care of that.
    """
    _check(hidden, lm_head_weight, targets, k, chunk_size, temperature)
    return _FusedHeadStats.apply(
        hidden, lm_head_weight, lm_head_bias, targets.long(), k, chunk_size, float(temperature)
    )


def _last_hidden(model: Any, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    body = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    out = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def _as_head_forward(head: torch.nn.Module, fn: Any, hidden: Tensor) -> Any:
    """Call `fn(hidden)` as `head`'s forward, so the hooks on the head module wrap it.

    Why: under ZeRO-3 the head weight (the embedding too when tied: one Parameter) is partitioned outside a
    module forward. DeepSpeed's hooks on the head gather it before this call, wrap the outputs so it is
    gathered again before their backward, and release it only after the gradient w.r.t. the head's input
    (by then autograd has accumulated and reduced the weight's gradient). Gathering by hand around the call
    does not: the weight would be released before its gradient is accumulated into it.
    On a plain module this is just `fn(hidden)`.
    """
    own = head.__dict__.get("forward")  # an instance-level forward (another library's patch) is restored
    head.forward = fn
    try:
        return head(hidden)
    finally:
        if own is None:
            del head.forward
        else:
            head.forward = own


def _masked_stats(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    sel: Tensor,
    k: int,
    chunk_size: int,
    temperature: float,
) -> tuple[Tensor, ...]:
    """Fused stats on the selected [B, L-1] positions only, scattered back to [B, L-1] (zeros elsewhere)."""
    hidden = _last_hidden(model, input_ids, attention_mask)[:, :-1]
    targets = input_ids[:, 1:][sel]
    head = model.get_output_embeddings()

    def stats(h: Tensor) -> tuple[Tensor, ...]:
        # Read the weight here, after the module's pre-forward hooks ran (ZeRO-3 has gathered it by now).
        return fused_token_stats(
            h, head.weight, targets, k, chunk_size, getattr(head, "bias", None), temperature
        )

    lp, tlp, tid, ent, r1 = _as_head_forward(head, stats, hidden[sel])
    b, t = sel.shape

    def scatter(x: Tensor) -> Tensor:
        full = x.new_zeros((b, t) + tuple(x.shape[1:]))
        full[sel] = x  # index_put keeps the autograd graph to the gathered rows
        return full

    return scatter(lp), scatter(tlp), scatter(tid), scatter(ent), scatter(r1)


def policy_token_stats(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    loss_mask: Tensor,
    k: int,
    chunk_size: int = 1024,
    ref_model: Any = None,
    temperature: float = 1.0,
) -> TokenStats:
    """Token statistics for a HF causal LM; every tensor is [B, L-1], aligned with targets input_ids[:, 1:].

    Only positions with loss_mask[:, 1:] != 0 are scored; the rest are zeros (is_rank1 False).
    Uses the model body's last hidden states and `get_output_embeddings()` (weight and bias), with the
    logits divided by `temperature` (pass the generator's, so log-probs match the sampler's; the reference
    model gets the same). No other logit scaling or soft-capping is applied: models that need it are not
    supported. Works on plain models and on a DeepSpeed ZeRO-0..3 `engine.module`.
    """
    from rlvr.loss_types import TokenStats

    sel = loss_mask[:, 1:].bool()
    lp, tlp, tid, ent, r1 = _masked_stats(model, input_ids, attention_mask, sel, k, chunk_size, temperature)
    ref_lp = None
    if ref_model is not None:
        with torch.no_grad():
            ref_lp = _masked_stats(ref_model, input_ids, attention_mask, sel, 1, chunk_size, temperature)[0]
    return TokenStats(
        logprobs=lp, topk_logprobs=tlp, topk_ids=tid, entropy=ent, is_rank1=r1, ref_logprobs=ref_lp
    )
